//! Every failure the API answers, as one enum that knows its HTTP status;
//! the body is always `{"error": "message"}`.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bittide_driver::session::views::RequestError;
use bittide_index::IndexError;

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Input the API cannot use (400).
    BadRequest(String),
    /// No login, or a wrong one (401).
    Unauthorized,
    /// Wrong username or password at `/login` (401, no Basic challenge).
    BadLogin,
    /// Too many wrong passwords in a row: logins are refused for this
    /// many more seconds (429, with `Retry-After`).
    TooManyAttempts(u64),
    /// A state-changing request with neither Basic auth nor the CSRF
    /// header (403).
    CsrfRequired,
    /// A state-changing request a browser sent from another origin (403).
    CrossOrigin,
    /// A `Host` that is not this server (403): DNS rebinding protection.
    ForeignHost,
    /// No route (404).
    NoRoute,
    /// A torrent named by something other than its info-hash (a protocol's
    /// numeric id) that is not there (404), with which.
    UnknownTorrent(String),
    /// The route exists, not for this method (405).
    MethodNotAllowed,
    /// A body over its cap (413).
    TooLarge(usize),
    /// A content type the route does not take (415).
    UnsupportedMediaType,
    /// The server itself failed (500), with static context.
    Internal(&'static str),
    /// What the session answered.
    Session(RequestError),
    /// The DHT index could not answer: no index (404), a query without
    /// words (400), or its store failed (503).
    Index(IndexError),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadLogin => StatusCode::UNAUTHORIZED,
            ApiError::CsrfRequired | ApiError::CrossOrigin | ApiError::ForeignHost => {
                StatusCode::FORBIDDEN
            }
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NoRoute | ApiError::UnknownTorrent(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Index(err) => match err {
                IndexError::Query(_) => StatusCode::BAD_REQUEST,
                IndexError::Location(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Session(err) => match err {
                RequestError::NotFound(_) => StatusCode::NOT_FOUND,
                RequestError::Duplicate(_) => StatusCode::CONFLICT,
                RequestError::BadTorrent(_) | RequestError::BadRequest(_) => {
                    StatusCode::BAD_REQUEST
                }
                RequestError::Fetch(_) => StatusCode::BAD_GATEWAY,
                RequestError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
                RequestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest(why) => f.write_str(why),
            ApiError::Unauthorized => f.write_str(
                "authentication required: HTTP Basic auth, or the cookie from POST /api/v1/login",
            ),
            ApiError::BadLogin => f.write_str("wrong username or password"),
            ApiError::TooManyAttempts(secs) => write!(
                f,
                "too many wrong passwords in a row: logins are refused for {secs} s more"
            ),
            ApiError::CsrfRequired => f.write_str(
                "a state-changing request needs HTTP Basic auth or the header X-Bittide-Csrf: 1",
            ),
            ApiError::CrossOrigin => {
                f.write_str("cross-origin request refused: its Origin is not this server")
            }
            ApiError::ForeignHost => f.write_str(
                "the Host header does not name this server (DNS rebinding protection); \
                 use the address the daemon is bound to, or add the name to allowed_hosts",
            ),
            ApiError::NoRoute => f.write_str("no such endpoint (see docs/api.md)"),
            ApiError::UnknownTorrent(why) => f.write_str(why),
            ApiError::MethodNotAllowed => f.write_str("method not allowed on this endpoint"),
            ApiError::TooLarge(limit) => {
                write!(f, "request body too large: the limit is {limit} bytes")
            }
            ApiError::UnsupportedMediaType => f.write_str(
                "unsupported Content-Type: send application/json, or application/x-bittorrent \
                 for a raw .torrent",
            ),
            ApiError::Internal(what) => f.write_str(what),
            ApiError::Session(err) => err.fmt(f),
            ApiError::Index(err) => err.fmt(f),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> ApiError {
        ApiError::Session(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyAttempts(secs) = self {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"bittide\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
