//! The bittide daemon's HTTP JSON API (issue 14): bittide's own API under
//! `/api/v1/`, over a running session's [`SessionHandle`]. Every endpoint,
//! its JSON and its errors are documented with examples in `docs/api.md`.
//!
//! Handlers are thin translations (typed input → one session request →
//! typed JSON); what makes the API safe to leave running is the guard in
//! front of them: the `Host` check against DNS rebinding, the login, and
//! the CSRF rule for state-changing requests (see the `guard` module).
//!
//! ```no_run
//! # async fn run(session: bittide_driver::session::SessionHandle<bittide_tokio::runtime::TokioRuntime>) -> std::io::Result<()> {
//! let config = bittide_api::ApiConfig::default();
//! config.check().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
//! let listener = tokio::net::TcpListener::bind(config.bind).await?;
//! bittide_api::serve(listener, session, config, std::future::pending()).await
//! # }
//! ```

mod config;
mod daemon;
mod error;
mod events;
mod extract;
mod guard;
mod ids;
mod index;
mod json;
mod listener;
mod qbittorrent;
mod rqbit;
mod stream;
mod torrents;
mod transmission;
mod web;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::SessionHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{ApiConfig, ConfigError, DEFAULT_BIND, DEFAULT_MAX_BODY, JSON_BODY_LIMIT};
use error::ApiError;
use guard::{Guard, LOGIN_PATH};
pub use guard::{CSRF_HEADER, SESSION_COOKIE};
use torrents::Bulk;

/// What every handler shares.
struct App<R: Runtime> {
    session: SessionHandle<R>,
    guard: Arc<Guard>,
    /// The cap on a .torrent upload.
    max_body: usize,
    /// Flips to `true` when the server shuts down (ends event streams).
    stop: watch::Receiver<bool>,
    /// Transmission RPC's session id.
    transmission: Arc<transmission::Transmission>,
    /// The numeric torrent ids of Transmission's and rqbit's protocols.
    ids: Arc<ids::TorrentIds>,
    /// qBittorrent WebAPI state: tags made before use, sync snapshots.
    qbt: qbittorrent::Shared,
    /// The DHT index searched by `/api/v1/index/…`.
    index: Arc<index::IndexAccess>,
}

impl<R: Runtime> Clone for App<R> {
    fn clone(&self) -> App<R> {
        App {
            session: self.session.clone(),
            guard: self.guard.clone(),
            max_body: self.max_body,
            stop: self.stop.clone(),
            transmission: self.transmission.clone(),
            ids: self.ids.clone(),
            qbt: self.qbt.clone(),
            index: self.index.clone(),
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (event streams end at once).
///
/// The configuration is checked again against the address the listener
/// really has: a non-loopback listener without credentials is refused
/// with `InvalidInput` (the daemon should have called
/// [`ApiConfig::check`] before binding). `Host` headers are checked
/// against the listener's address too, so binding port 0 works.
pub async fn serve<R: Runtime>(
    listener: TcpListener,
    session: SessionHandle<R>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let bound = listener.local_addr()?;
    let config = ApiConfig {
        bind: bound,
        ..config
    };
    config
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = App {
        session,
        guard: Arc::new(Guard::new(&config, bound)),
        max_body: config.max_body,
        stop: stop_rx,
        transmission: Arc::new(
            transmission::Transmission::new()
                .ok_or_else(|| io::Error::other("the system random generator failed"))?,
        ),
        ids: Arc::default(),
        qbt: qbittorrent::Shared::default(),
        index: Arc::new(index::IndexAccess::new(config.index.clone())),
    };
    axum::serve(listener::GuardedListener::new(listener), router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}

fn router<R: Runtime>(app: App<R>) -> Router {
    let api = Router::new()
        .route(
            "/api/v1/torrents",
            get(torrents::list::<R>).post(torrents::add::<R>),
        )
        .route("/api/v1/torrents/pause", post(bulk_pause::<R>))
        .route("/api/v1/torrents/resume", post(bulk_resume::<R>))
        .route(
            "/api/v1/torrents/{hash}",
            get(torrents::details::<R>).delete(torrents::remove::<R>),
        )
        .route("/api/v1/torrents/{hash}/pause", post(torrents::pause::<R>))
        .route(
            "/api/v1/torrents/{hash}/resume",
            post(torrents::resume::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/recheck",
            post(torrents::recheck::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/reannounce",
            post(torrents::reannounce::<R>),
        )
        .route("/api/v1/torrents/{hash}/files", post(torrents::files::<R>))
        .route(
            "/api/v1/torrents/{hash}/limits",
            post(torrents::limits::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/options",
            post(torrents::options::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/move",
            post(torrents::move_storage::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/rename",
            post(torrents::rename::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/files/{index}/stream",
            get(stream::by_index::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/stream/{*path}",
            get(stream::by_path::<R>),
        )
        .route(
            "/api/v1/torrents/{hash}/playlist.m3u",
            get(stream::playlist::<R>),
        )
        .route("/api/v1/stats", get(daemon::stats::<R>))
        .route(
            "/api/v1/settings",
            get(daemon::settings::<R>).patch(daemon::patch_settings::<R>),
        )
        .route("/api/v1/events", get(events::events::<R>))
        .route("/api/v1/index/search", get(index::search::<R>))
        .route("/api/v1/index/torrents/{hash}", get(index::show::<R>))
        .route("/api/v1/index/stats", get(index::stats::<R>))
        .route(
            LOGIN_PATH,
            get(daemon::login_status::<R>).post(daemon::login::<R>),
        )
        .route("/api/v1/logout", post(daemon::logout::<R>))
        .merge(transmission::routes())
        .merge(qbittorrent::routes())
        .merge(rqbit::routes())
        .merge(web::routes())
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let guard = app.guard.clone();
    api.layer(axum::middleware::from_fn_with_state(guard, guard::check))
        .with_state(app)
}

async fn bulk_pause<R: Runtime>(
    State(app): State<App<R>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    torrents::bulk(app, Bulk::Pause, headers, body).await
}

async fn bulk_resume<R: Runtime>(
    State(app): State<App<R>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    torrents::bulk(app, Bulk::Resume, headers, body).await
}
