//! Typed input with this API's errors: axum's own extractors answer a bad
//! path, query or body in plain text; these answer `{"error": …}` with a
//! message that says which part was wrong, and cap bodies before reading
//! them whole.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};
use bittide_core::InfoHash;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The `{hash}` of a path: 40 hex digits.
pub(crate) struct Hash(pub(crate) InfoHash);

impl<S: Send + Sync> FromRequestParts<S> for Hash {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Hash, ApiError> {
        let segment = parts
            .uri
            .path()
            .strip_prefix("/api/v1/torrents/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        parse_hash(segment).map(Hash)
    }
}

/// An info-hash given by a client, with the message the API sends when it
/// is not one.
pub(crate) fn parse_hash(text: &str) -> Result<InfoHash, ApiError> {
    InfoHash::from_hex(text.as_bytes()).ok_or_else(|| {
        ApiError::BadRequest(
            "malformed info-hash: expected 40 hexadecimal digits (a v1 info-hash)".into(),
        )
    })
}

/// The query string as `T`; no query is `T::default()`.
pub(crate) fn query<T: DeserializeOwned + Default>(uri: &Uri) -> Result<T, ApiError> {
    match uri.query() {
        None | Some("") => Ok(T::default()),
        Some(_) => axum::extract::Query::try_from_uri(uri)
            .map(|axum::extract::Query(t)| t)
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {}", e.body_text()))),
    }
}

/// The body, refused with 413 once it is over `limit` (by its
/// `Content-Length` before reading, or while reading a chunked one).
pub(crate) async fn body_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    // The only other failure is a connection that broke mid-body, whose
    // answer nobody reads.
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))
}

/// A JSON body as `T`, at most `limit` bytes.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = body_bytes(headers, body, limit).await?;
    parse_json(&bytes)
}

/// `T` from JSON bytes, with serde's message (which names the field).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
}
