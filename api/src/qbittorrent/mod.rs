//! qBittorrent's WebAPI v2 at `/api/v2/`, the subset Sonarr, Radarr,
//! Lidarr, Prowlarr, autobrr and the `qbittorrent-api` library call
//! (issue 16; `docs/compat.md`). It claims to be qBittorrent 5.0 (WebAPI
//! 2.11.2): the state strings are `stoppedDL`/`stoppedUP`, and clients
//! pick `torrents/stop`/`start` (the older `pause`/`resume` work too).
//!
//! qBittorrent's own rules, which these tools rely on to the letter:
//! every call but `auth/login` answers 403 `Forbidden` without the `SID`
//! cookie (the tools log in again on any 403); `auth/login` answers 200
//! `Ok.` or `Fails.`; parameters come as a query string, a form, or a
//! multipart body, merged; errors are plain text with qBittorrent's
//! status codes (400 bad parameters, 404 unknown torrent, 409 conflict,
//! 415 an invalid .torrent). The guard in front has already checked `Host`
//! and refused cross-origin writes.

mod add;
mod app;
mod form;
mod labels;
mod shares;
mod states;
mod sync;
mod torrents;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bittide_core::InfoHash;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::RequestError;

use crate::config::JSON_BODY_LIMIT;
use crate::extract::body_bytes;
use crate::App;
pub(crate) use form::Params;

/// The login cookie qBittorrent hands out and its clients look for.
const SID: &str = "SID";

/// What this module remembers between requests: the snapshots
/// `sync/maindata` sends deltas against (categories and tags are the
/// session's).
#[derive(Default)]
pub(crate) struct QbtState {
    sync: sync::Snapshots,
}

/// Shared by every request.
pub(crate) type Shared = Arc<Mutex<QbtState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, QbtState> {
    // Every change is one short call; a poisoned lock holds a usable state.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A failure, answered as qBittorrent does: a status and a plain-text
/// message.
#[derive(Debug)]
pub(crate) enum QbtError {
    /// 400.
    BadParams(String),
    /// 403 `Forbidden`: not logged in.
    Forbidden,
    /// 404: an unknown torrent (or endpoint).
    NotFound(String),
    /// 405: a read-only method on an action.
    MethodNotAllowed,
    /// 409: the request cannot be done in this state.
    Conflict(String),
    /// 413: a body over its cap.
    TooLarge,
    /// 415: an invalid .torrent (qBittorrent's `BadData`).
    UnsupportedMediaType(String),
    /// 500: a disk or session failure.
    Internal(String),
    /// 503: the session is shutting down.
    Unavailable,
}

impl std::fmt::Display for QbtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            QbtError::BadParams(m)
            | QbtError::NotFound(m)
            | QbtError::Conflict(m)
            | QbtError::UnsupportedMediaType(m)
            | QbtError::Internal(m)
                if !m.is_empty() =>
            {
                m.as_str()
            }
            QbtError::BadParams(_) => "Bad Request",
            QbtError::Forbidden => "Forbidden",
            QbtError::NotFound(_) => "Not Found",
            QbtError::MethodNotAllowed => "Method Not Allowed",
            QbtError::Conflict(_) => "Conflict",
            QbtError::TooLarge => "Payload Too Large",
            QbtError::UnsupportedMediaType(_) => "Unsupported Media Type",
            QbtError::Internal(_) => "Internal Server Error",
            QbtError::Unavailable => "Service Unavailable",
        };
        f.write_str(text)
    }
}

impl QbtError {
    fn status(&self) -> StatusCode {
        match self {
            QbtError::BadParams(_) => StatusCode::BAD_REQUEST,
            QbtError::Forbidden => StatusCode::FORBIDDEN,
            QbtError::NotFound(_) => StatusCode::NOT_FOUND,
            QbtError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            QbtError::Conflict(_) => StatusCode::CONFLICT,
            QbtError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            QbtError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            QbtError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            QbtError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<RequestError> for QbtError {
    fn from(err: RequestError) -> QbtError {
        match err {
            RequestError::NotFound(_) => QbtError::NotFound(String::new()),
            RequestError::Duplicate(_) => QbtError::Conflict(String::new()),
            RequestError::BadTorrent(m) => QbtError::UnsupportedMediaType(m),
            RequestError::BadRequest(m) => QbtError::BadParams(m),
            RequestError::Fetch(m) | RequestError::Io(m) => QbtError::Internal(m),
            RequestError::ShuttingDown => QbtError::Unavailable,
        }
    }
}

impl IntoResponse for QbtError {
    fn into_response(self) -> Response {
        text(self.status(), self.to_string())
    }
}

/// A plain-text answer, as qBittorrent sends.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

/// A JSON answer.
pub(crate) fn json(value: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// 200 with an empty body: what qBittorrent's actions answer.
pub(crate) fn ok() -> Response {
    text(StatusCode::OK, "")
}

/// What a handler gets.
pub(crate) struct Call<R: Runtime> {
    pub(crate) app: App<R>,
    pub(crate) params: Params,
}

impl<R: Runtime> Call<R> {
    /// The torrents a `hashes` parameter names (`a|b|…`, or `all`), those
    /// in the session only: qBittorrent skips the others silently.
    pub(crate) async fn hashes(&self) -> Result<Vec<InfoHash>, QbtError> {
        let given = self.params.require("hashes")?;
        let known: Vec<InfoHash> = self
            .app
            .session
            .list()
            .await?
            .iter()
            .map(|t| t.info_hash)
            .collect();
        if given.trim().eq_ignore_ascii_case("all") {
            return Ok(known);
        }
        Ok(given
            .split('|')
            .filter_map(|h| InfoHash::from_hex(h.trim().as_bytes()))
            .filter(|h| known.contains(h))
            .collect())
    }

    /// The one torrent a `hash` parameter names, or 404.
    pub(crate) fn hash(&self) -> Result<InfoHash, QbtError> {
        let given = self.params.require("hash")?;
        InfoHash::from_hex(given.trim().as_bytes()).ok_or(QbtError::NotFound(String::new()))
    }
}

/// The router for `/api/v2/…`: one route, dispatched on `area/method`
/// as qBittorrent's own web application does.
pub(crate) fn routes<R: Runtime>() -> Router<App<R>> {
    Router::new().route("/api/v2/{area}/{method}", any(dispatch::<R>))
}

/// Bodies other than an add are small forms.
const FORM_LIMIT: usize = JSON_BODY_LIMIT;

async fn dispatch<R: Runtime>(
    State(app): State<App<R>>,
    Path((area, method)): Path<(String, String)>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(app, &area, &method, http_method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle<R: Runtime>(
    app: App<R>,
    area: &str,
    method: &str,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, QbtError> {
    let login = area == "auth" && method == "login";
    if !login && !logged_in(&app, &headers) {
        return Err(QbtError::Forbidden);
    }
    // A .torrent is capped like bittide's own upload; a multipart add may
    // carry a few of them.
    let limit = if (area, method) == ("torrents", "add") {
        app.max_body.saturating_mul(4).saturating_add(FORM_LIMIT)
    } else {
        FORM_LIMIT
    };
    let bytes = body_bytes(&headers, body, limit)
        .await
        .map_err(|_| QbtError::TooLarge)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = form::parse(uri.query(), content_type, &bytes)?;
    let call = Call { app, params };
    let read = matches!(http_method, Method::GET | Method::HEAD);
    if read && !readable(area, method) {
        return Err(QbtError::MethodNotAllowed);
    }
    match area {
        "auth" => auth(call, method, &headers),
        "app" => app::handle(call, method).await,
        "transfer" => app::transfer(call, method).await,
        "sync" if method == "maindata" => sync::maindata(call).await,
        "torrents" => torrents::handle(call, method).await,
        _ => Err(QbtError::NotFound(String::new())),
    }
}

/// Whether a call only reads (and so may be a GET); qBittorrent 5 answers
/// 405 to an action sent as GET.
fn readable(area: &str, method: &str) -> bool {
    match area {
        "app" => matches!(
            method,
            "version" | "webapiVersion" | "buildInfo" | "preferences" | "defaultSavePath"
        ),
        "transfer" | "sync" => true,
        "torrents" => matches!(
            method,
            "info"
                | "properties"
                | "files"
                | "trackers"
                | "pieceStates"
                | "pieceHashes"
                | "categories"
                | "tags"
                | "count"
        ),
        _ => false,
    }
}

fn logged_in<R: Runtime>(app: &App<R>, headers: &HeaderMap) -> bool {
    !app.guard.requires_login()
        || app.guard.basic_ok(headers)
        || sid(headers).is_some_and(|token| app.guard.token_ok(&token))
}

/// The `SID` cookie's value.
fn sid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SID)
        .map(|(_, value)| value.to_owned())
}

/// `auth/login` and `auth/logout`.
fn auth<R: Runtime>(
    call: Call<R>,
    method: &str,
    headers: &HeaderMap,
) -> Result<Response, QbtError> {
    match method {
        "login" => {
            let user = call.params.get("username").unwrap_or("");
            let pass = call.params.get("password").unwrap_or("");
            match call.app.guard.login(user, pass) {
                Ok(Some(token)) => {
                    let cookie = format!("{SID}={token}; HttpOnly; SameSite=Strict; path=/");
                    let mut r = text(StatusCode::OK, "Ok.");
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        r.headers_mut().insert(header::SET_COOKIE, v);
                    }
                    Ok(r)
                }
                // No credentials configured: nothing to log in to.
                Ok(None) => Ok(text(StatusCode::OK, "Ok.")),
                Err(_) => Ok(text(StatusCode::OK, "Fails.")),
            }
        }
        "logout" => {
            if let Some(token) = sid(headers) {
                call.app.guard.forget(&token);
            }
            let mut r = ok();
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static("SID=; HttpOnly; SameSite=Strict; path=/; Max-Age=0"),
            );
            Ok(r)
        }
        _ => Err(QbtError::NotFound(String::new())),
    }
}
