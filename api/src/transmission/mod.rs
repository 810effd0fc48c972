//! Transmission's RPC at `/transmission/rpc`, in the legacy dialect that
//! Sonarr/Radarr and the `transmission-rpc` library speak
//! (`{"method", "arguments", "tag"}` → `{"result", "arguments", "tag"}`),
//! over the same session as bittide's own API. The words, numbers and
//! units are Transmission's (`docs/rpc-spec.md` in its repository); what
//! differs is listed in `docs/compat.md`.
//!
//! Before a method runs: HTTP Basic auth when the daemon has credentials
//! (401 otherwise), then Transmission's CSRF handshake: a request without
//! this server's `X-Transmission-Session-Id` gets 409 and the header, and
//! the client retries with it. A web page on another site can neither read
//! the 409's header nor set a custom one, so it cannot make a request
//! through.

mod fields;
mod session;
mod torrents;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bittide_core::InfoHash;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{RequestError, TorrentView};
use serde_json::{Map, Value};

use crate::config::JSON_BODY_LIMIT;
use crate::extract::body_bytes;
use crate::App;

/// The CSRF header of Transmission's RPC.
pub(crate) const SESSION_ID_HEADER: &str = "x-transmission-session-id";

/// The path clients post to.
const RPC_PATH: &str = "/transmission/rpc";

/// How long a removed torrent's id is reported under `removed` to a
/// `recently-active` poll, and how long "recently" is (Transmission's
/// `RecentlyActiveSeconds`).
pub(super) const RECENT: Duration = Duration::from_secs(60);

/// The protocol's state: its CSRF token. Torrents' numeric ids are the
/// daemon's ([`crate::ids::TorrentIds`]).
pub(crate) struct Transmission {
    session_id: String,
    remembered: Mutex<session::Remembered>,
}

impl Transmission {
    /// A new protocol state with a random session id; `None` if the
    /// system's random generator fails.
    pub(crate) fn new() -> Option<Transmission> {
        let mut bytes = [0u8; 24];
        getrandom::getrandom(&mut bytes).ok()?;
        Some(Transmission {
            session_id: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            remembered: Mutex::new(session::Remembered::default()),
        })
    }
}

/// The route, for `lib.rs` to merge.
pub(crate) fn routes<R: Runtime>() -> Router<App<R>> {
    Router::new()
        .route(RPC_PATH, any(rpc::<R>))
        .route("/transmission/rpc/", any(rpc::<R>))
}

/// Why a method failed: `Display` is the `result` text, in
/// Transmission's words.
#[derive(Debug)]
pub(crate) enum RpcError {
    /// No method, an unknown one, or a body that is not a JSON object.
    NoMethod,
    /// An argument missing or of the wrong kind, with what Transmission
    /// says about it.
    Params(String),
    /// A path argument that is not absolute.
    NotAbsolute(&'static str),
    /// A .torrent that does not parse.
    Corrupt,
    /// A file index past the torrent's files.
    FileIndex,
    /// What the session answered otherwise.
    Session(RequestError),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::NoMethod => f.write_str("no method name"),
            RpcError::Params(why) => f.write_str(why),
            RpcError::NotAbsolute(what) => f.write_str(what),
            RpcError::Corrupt => f.write_str("invalid or corrupt torrent file"),
            RpcError::FileIndex => f.write_str("file index out of range"),
            RpcError::Session(err) => err.fmt(f),
        }
    }
}

impl From<RequestError> for RpcError {
    fn from(err: RequestError) -> RpcError {
        match err {
            RequestError::BadTorrent(_) => RpcError::Corrupt,
            other => RpcError::Session(other),
        }
    }
}

/// What a method answers: its `arguments`.
type Answer = Result<Map<String, Value>, RpcError>;

/// The endpoint: auth, the handshake, then one method.
async fn rpc<R: Runtime>(State(app): State<App<R>>, headers: HeaderMap, body: Body) -> Response {
    let tr = &app.transmission;
    let given = headers.get(SESSION_ID_HEADER).and_then(|v| v.to_str().ok());
    let refused = if app.guard.requires_login() && !app.guard.basic_ok(&headers) {
        Some(unauthorized())
    } else if given != Some(tr.session_id.as_str()) {
        Some(conflict(&tr.session_id))
    } else {
        None
    };
    if let Some(response) = refused {
        // A body left unread makes the server close the connection after
        // the answer, and a client that reuses it for its retry (the 409
        // handshake is one request in two) finds it closed: read a
        // JSON-sized body first.
        let _ = body_bytes(&headers, body, JSON_BODY_LIMIT).await;
        return response;
    }
    // A base64 .torrent is a third larger than the file.
    let limit = app.max_body / 3 * 4 + JSON_BODY_LIMIT;
    let bytes = match body_bytes(&headers, body, limit).await {
        Ok(b) => b,
        Err(err) => return err.into_response(),
    };
    let request: Option<Map<String, Value>> = serde_json::from_slice(&bytes).ok();
    let (answer, tag) = match request {
        None => (Err(RpcError::NoMethod), None),
        Some(mut request) => {
            let tag = request.remove("tag");
            let arguments = match request.remove("arguments") {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m),
                Some(_) => Err(RpcError::Params("arguments must be an object".into())),
            };
            let method = request.get("method").and_then(Value::as_str).unwrap_or("");
            let answer = match arguments {
                Ok(args) => dispatch(&app, method, &args).await,
                Err(e) => Err(e),
            };
            (answer, tag)
        }
    };
    let mut out = Map::new();
    match answer {
        Ok(arguments) => {
            out.insert("result".into(), "success".into());
            out.insert("arguments".into(), Value::Object(arguments));
        }
        Err(err) => {
            out.insert("result".into(), err.to_string().into());
            out.insert("arguments".into(), Value::Object(Map::new()));
        }
    }
    if let Some(tag) = tag {
        out.insert("tag".into(), tag);
    }
    let mut response = axum::Json(Value::Object(out)).into_response();
    if let Ok(id) = HeaderValue::from_str(&tr.session_id) {
        response.headers_mut().insert(SESSION_ID_HEADER, id);
    }
    response
}

async fn dispatch<R: Runtime>(app: &App<R>, method: &str, args: &Map<String, Value>) -> Answer {
    use torrents::Action;
    match method {
        "session-get" => session::get(app, args).await,
        "session-set" => session::set(app, args).await,
        "session-stats" => session::stats(app).await,
        "session-close" => Ok(Map::new()),
        "torrent-get" => fields::get(app, args).await,
        "torrent-add" => torrents::add(app, args).await,
        "torrent-start" | "torrent-start-now" => torrents::act(app, args, Action::Start).await,
        "torrent-stop" => torrents::act(app, args, Action::Stop).await,
        "torrent-verify" => torrents::act(app, args, Action::Verify).await,
        "torrent-reannounce" => torrents::act(app, args, Action::Reannounce).await,
        "torrent-set" => torrents::set(app, args).await,
        "torrent-remove" => torrents::remove(app, args).await,
        "torrent-set-location" => torrents::set_location(app, args).await,
        "queue-move-top" => torrents::queue(app, args, torrents::Move::Top).await,
        "queue-move-bottom" => torrents::queue(app, args, torrents::Move::Bottom).await,
        "queue-move-up" => torrents::queue(app, args, torrents::Move::Up).await,
        "queue-move-down" => torrents::queue(app, args, torrents::Move::Down).await,
        _ => Err(RpcError::NoMethod),
    }
}

/// Which torrents an `ids` argument names.
enum Selection {
    /// These, in the order given (unknown ones left out, as Transmission
    /// does).
    Some(Vec<TorrentView>),
    /// `recently-active`: those active within [`RECENT`].
    Recent(Vec<TorrentView>),
}

/// Resolves `ids` against the session's list: absent means every
/// torrent; a number is an id, a string an info-hash (or
/// `recently-active`), an array any mix. Unknown ones are skipped, as
/// Transmission skips them; an `ids` of another kind is refused rather
/// than taken as "all", which is what Transmission would do with it.
async fn select<R: Runtime>(
    app: &App<R>,
    args: &Map<String, Value>,
) -> Result<Selection, RpcError> {
    let list = app.session.list().await?;
    let tr = &app.ids;
    tr.learn(&list);
    let find = |hash: InfoHash| list.iter().find(|t| t.info_hash == hash).cloned();
    let one = |v: &Value| -> Result<Option<TorrentView>, RpcError> {
        match v {
            Value::Number(n) => Ok(n.as_i64().and_then(|id| tr.hash_of(id)).and_then(find)),
            Value::String(s) => Ok(InfoHash::from_hex(s.as_bytes()).and_then(find)),
            _ => Err(RpcError::Params("Invalid params: ids".into())),
        }
    };
    match args.get("ids") {
        None | Some(Value::Null) => Ok(Selection::Some(list)),
        Some(Value::String(s)) if s == "recently-active" => {
            let recent = list.into_iter().filter(recently_active).collect();
            Ok(Selection::Recent(recent))
        }
        Some(Value::Array(items)) => {
            let mut out: Vec<TorrentView> = Vec::new();
            for item in items {
                if let Some(t) = one(item)? {
                    if !out.iter().any(|o| o.info_hash == t.info_hash) {
                        out.push(t);
                    }
                }
            }
            Ok(Selection::Some(out))
        }
        Some(v) => Ok(Selection::Some(one(v)?.into_iter().collect())),
    }
}

/// Moving bytes, or changed state within [`RECENT`].
fn recently_active(t: &TorrentView) -> bool {
    use bittide_driver::session::views::TorrentStatus as S;
    let now = fields::unix_now();
    let recent = |at: u64| now.saturating_sub(at) <= RECENT.as_secs();
    t.download_rate > 0
        || t.upload_rate > 0
        || matches!(t.state, S::Checking | S::Metadata | S::Downloading)
        || recent(t.added_at)
        || t.completed_at.is_some_and(recent)
}

impl Selection {
    fn into_list(self) -> Vec<TorrentView> {
        match self {
            Selection::Some(l) | Selection::Recent(l) => l,
        }
    }
}

fn unauthorized() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/html; charset=ISO-8859-1")],
        "<h1>401: Unauthorized</h1>Unauthorized User",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Transmission\""),
    );
    response
}

fn conflict(session_id: &str) -> Response {
    let body = format!(
        "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>\
         <p>To fix this, follow these steps:<ol><li> When reading a response, get its \
         X-Transmission-Session-Id header and remember it<li> Add the updated header to your \
         outgoing requests<li> When you get this 409 error message, resend your request with \
         the updated header</ol></p><p>This requirement has been added to help prevent \
         <a href=\"https://en.wikipedia.org/wiki/Cross-site_request_forgery\">CSRF</a> \
         attacks.</p><p><code>X-Transmission-Session-Id: {session_id}</code></p>"
    );
    let mut response = (
        StatusCode::CONFLICT,
        [(header::CONTENT_TYPE, "text/html; charset=ISO-8859-1")],
        body,
    )
        .into_response();
    if let Ok(id) = HeaderValue::from_str(session_id) {
        response.headers_mut().insert(SESSION_ID_HEADER, id);
    }
    response
}

/// An optional argument as `T`; present but of the wrong kind is an error
/// naming it.
fn arg<T: serde::de::DeserializeOwned>(
    args: &Map<String, Value>,
    key: &str,
) -> Result<Option<T>, RpcError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|_| RpcError::Params(format!("Invalid params: {key}"))),
    }
}

/// A boolean argument; Transmission takes numbers (0/1) for booleans too.
fn flag(args: &Map<String, Value>, key: &str) -> Result<Option<bool>, RpcError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().is_some_and(|x| x != 0.0))),
        Some(_) => Err(RpcError::Params(format!("Invalid params: {key}"))),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change is one call: a poisoned lock holds consistent data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
