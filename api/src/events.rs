//! `GET /api/v1/events`: the session's events as server-sent events, one
//! JSON object with a `type` field per `data:` line, and a keep-alive
//! comment every 15 s so proxies keep the connection open.
//!
//! The stream ends when the session drops a reader that fell too far
//! behind (the client reconnects and lists again), when the session stops,
//! or when the server shuts down (an open stream would otherwise hold a
//! graceful shutdown forever).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use bittide_driver::runtime::Runtime;
use futures_lite::Stream;

use crate::json::EventJson;
use crate::App;

/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) async fn events<R: Runtime>(
    State(app): State<App<R>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = app.session.subscribe();
    let stop = app.stop.clone();
    let stream = futures_lite::stream::unfold((events, stop), |(events, mut stop)| async move {
        if *stop.borrow() {
            return None;
        }
        let next = futures_lite::future::or(async { events.recv().await.ok() }, async {
            // Either the flag flipped or the server is gone: both end it.
            let _ = stop.changed().await;
            None
        })
        .await?;
        let json = EventJson::from(&next);
        let event = Event::default()
            .json_data(&json)
            .unwrap_or_else(|_| Event::default().comment("unencodable event"));
        Some((Ok(event), (events, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}
