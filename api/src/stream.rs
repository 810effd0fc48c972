//! Streaming a torrent's files over HTTP while they download, with
//! ranges, so that a browser's `<video>`, VLC or mpv can play and seek
//! (RFC 9110 §14, range requests):
//!
//! - `GET|HEAD /api/v1/torrents/{hash}/files/{index}/stream`
//! - `GET|HEAD /api/v1/torrents/{hash}/stream/{path}`: the same file by
//!   its path in the torrent (as the torrent's details list it), a URL a
//!   person can read and that stays the same across sessions;
//! - `GET /api/v1/torrents/{hash}/playlist.m3u`: its audio and video
//!   files as an M3U playlist of absolute stream URLs.
//!
//! The bytes come from a session [`FileStream`], which waits for pieces
//! as they arrive and moves the picker's time-critical window to where
//! the client reads; a client that goes away drops the body, and with it
//! the stream and its window.
//!
//! [`FileStream`]: bittide_driver::session::FileStream

mod media;
mod range;

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bittide_core::InfoHash;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::stream::MAX_READ;
use bittide_driver::session::views::FileView;
use bittide_driver::session::FileStream;

use crate::error::ApiError;
use crate::extract::parse_hash;
use crate::guard;
use crate::App;
use range::Ranged;

/// `GET|HEAD /api/v1/torrents/{hash}/files/{index}/stream`.
pub(crate) async fn by_index<R: Runtime>(
    State(app): State<App<R>>,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((hash, index)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let hash = parse_hash(&hash)?;
    let index: usize = index.parse().map_err(|_| {
        ApiError::BadRequest("file index: expected a number (see the torrent's files)".into())
    })?;
    refuse_other_sites(&headers)?;
    let details = app.session.torrent(hash).await?;
    let file = details
        .files
        .into_iter()
        .find(|f| f.index == index)
        .ok_or_else(|| ApiError::BadRequest(format!("the torrent has no file {index}")))?;
    serve(&app, hash, file, &method, &headers).await
}

/// `GET|HEAD /api/v1/torrents/{hash}/stream/{path}`.
pub(crate) async fn by_path<R: Runtime>(
    State(app): State<App<R>>,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((hash, wanted)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let hash = parse_hash(&hash)?;
    refuse_other_sites(&headers)?;
    let details = app.session.torrent(hash).await?;
    let file = details
        .files
        .into_iter()
        .find(|f| same_path(&f.path, &wanted))
        .ok_or_else(|| ApiError::BadRequest(format!("the torrent has no file {wanted:?}")))?;
    serve(&app, hash, file, &method, &headers).await
}

/// `GET /api/v1/torrents/{hash}/playlist.m3u`: every audio and video
/// file, in torrent order, by its path URL on the `Host` the client used
/// (the guard has checked it names this server). A request that logged
/// in with Basic auth gets its credentials in the URLs, so a player that
/// was given `http://user:pass@host/…/playlist.m3u` can open the entries.
pub(crate) async fn playlist<R: Runtime>(
    State(app): State<App<R>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(hash) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let hash = parse_hash(&hash)?;
    let details = app.session.torrent(hash).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::ForeignHost)?;
    let login = match guard::basic_credentials(&headers) {
        Some((user, pass)) if app.guard.basic_ok(&headers) => {
            format!("{}:{}@", userinfo(&user), userinfo(&pass))
        }
        _ => String::new(),
    };
    let entries: Vec<(String, String)> = details
        .files
        .iter()
        .filter(|f| media::is_playable(&f.path))
        .map(|f| {
            let url = format!(
                "http://{login}{host}/api/v1/torrents/{hash}/stream/{}",
                media::url_path(&f.path)
            );
            (media::file_name(&f.path).to_owned(), url)
        })
        .collect();
    let name = format!("{}.m3u", details.torrent.name);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "audio/x-mpegurl; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                media::content_disposition(&name),
            ),
        ],
        media::m3u(&entries),
    )
        .into_response())
}

/// A stream is a GET, which the guard lets through from anywhere; but
/// it spends bandwidth and fetches pieces of skipped files, so a page of
/// another site (a `<video>` there, which needs no CORS) may not open
/// one. Players (VLC, mpv) send no `Origin` or `Sec-Fetch-Site`.
fn refuse_other_sites(headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::ForeignHost)?;
    if guard::cross_origin(headers, host) {
        return Err(ApiError::CrossOrigin);
    }
    Ok(())
}

/// Whether a path from the session (which may use `\`) is the one a
/// URL named.
fn same_path(stored: &str, wanted: &str) -> bool {
    let stored = stored.split(['/', '\\']);
    let wanted = wanted.trim_matches('/').split('/');
    stored.eq(wanted)
}

/// A user name or password in a URL's userinfo (RFC 3986 §3.2.1).
fn userinfo(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The answer for one file: its headers, the status the `Range` header
/// asks for, and (for GET) the bytes from a session stream.
async fn serve<R: Runtime>(
    app: &App<R>,
    hash: InfoHash,
    file: FileView,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let len = file.size;
    // A torrent's content never changes: the info-hash and index name
    // these bytes for good.
    let etag = format!("\"{hash}-{}\"", file.index);
    let ranged = match headers.get(header::RANGE) {
        Some(value) if if_range_holds(headers, &etag) => value
            .to_str()
            .map_or(Ranged::Whole, |v| range::parse(v, len)),
        _ => Ranged::Whole,
    };
    let (status, bytes) = match ranged {
        Ranged::Whole => (StatusCode::OK, 0..len),
        Ranged::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Ranged::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, 0..0),
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let h = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::ETAG, etag);
    set(header::CONTENT_TYPE, media::media_type(&file.path).into());
    set(
        header::CONTENT_DISPOSITION,
        media::content_disposition(&file.path),
    );
    // No `Content-Security-Policy: sandbox` here: opened in a tab (the web
    // UI's "Play"), a media document is then of an opaque origin and its
    // own request for the video is refused as cross-origin. What could
    // run script (HTML, SVG) is never served as such (`media_type`), and
    // the guard adds `X-Content-Type-Options: nosniff`.
    set(
        header::CONTENT_LENGTH,
        (bytes.end - bytes.start).to_string(),
    );
    match status {
        StatusCode::PARTIAL_CONTENT => set(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{len}", bytes.start, bytes.end - 1),
        ),
        StatusCode::RANGE_NOT_SATISFIABLE => set(header::CONTENT_RANGE, format!("bytes */{len}")),
        _ => {}
    }
    if *method == Method::HEAD || bytes.is_empty() {
        return Ok(response);
    }
    let stream = app.session.open_stream(hash, file.index).await?;
    *response.body_mut() = Body::from_stream(body(stream, bytes.start, bytes.end));
    Ok(response)
}

/// `If-Range` (RFC 9110 §13.1.5): the range is served only if the
/// validator is our entity tag; a date (or another tag) gets the whole
/// file, as for a changed resource.
fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => v.as_bytes() == etag.as_bytes(),
    }
}

/// Bytes `start..end` of the stream's file, in reads of at most
/// [`MAX_READ`]; a read that fails ends the body with an error (the
/// connection is cut, so the client sees a short body, never a wrong one).
fn body<R: Runtime>(
    stream: FileStream<R>,
    start: u64,
    end: u64,
) -> impl futures_lite::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_lite::stream::unfold((Some(stream), start), move |(stream, at)| async move {
        let mut stream = stream?;
        if at >= end {
            return None;
        }
        let want = usize::try_from(end - at).unwrap_or(MAX_READ).min(MAX_READ);
        match stream.read_at(at, want).await {
            Ok(bytes) if !bytes.is_empty() => {
                let next = at + bytes.len() as u64;
                Some((Ok(Bytes::from(bytes)), (Some(stream), next)))
            }
            Ok(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended early",
                )),
                (None, at),
            )),
            Err(e) => Some((Err(io::Error::other(e)), (None, at))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_by_component() {
        assert!(same_path("Show/a b.mkv", "Show/a b.mkv"));
        assert!(same_path("Show\\a.mkv", "/Show/a.mkv"));
        assert!(!same_path("Show/a.mkv", "Show/a.mkv/x"));
        assert!(!same_path("Show/a.mkv", "Show"));
    }

    #[test]
    fn if_range_needs_our_entity_tag() {
        let mut h = HeaderMap::new();
        assert!(if_range_holds(&h, "\"x-0\""));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"x-0\""));
        assert!(if_range_holds(&h, "\"x-0\""));
        h.insert(
            header::IF_RANGE,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert!(!if_range_holds(&h, "\"x-0\""));
    }

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(userinfo("a:b@c d"), "a%3Ab%40c%20d");
    }
}
