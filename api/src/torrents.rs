//! `/api/v1/torrents…`: each handler turns typed input into one session
//! request (or a few, for bulk and multi-field changes) and the answer
//! into JSON.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine as _;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{AddOptions, AddSource, PriorityChanges};
use serde_json::{json, Value};

use crate::config::JSON_BODY_LIMIT;
use crate::error::ApiError;
use crate::extract::{body_bytes, json_body, parse_hash, query, Hash};
use crate::json::{
    AddJson, AddQuery, BulkJson, DetailsJson, LimitsJson, ListFilter, MoveJson, OptionsJson,
    PrioritiesJson, RemoveQuery, RenameJson, TorrentJson,
};
use crate::App;

/// What an action without a result answers.
type Done = Result<StatusCode, ApiError>;

/// `GET /api/v1/torrents`.
pub(crate) async fn list<R: Runtime>(
    State(app): State<App<R>>,
    uri: Uri,
) -> Result<axum::response::Response, ApiError> {
    let filter: ListFilter = query(&uri)?;
    filter.validate().map_err(ApiError::BadRequest)?;
    let torrents = app.session.list().await?;
    let rows: Vec<TorrentJson> = torrents
        .iter()
        .filter(|t| filter.keeps(t))
        .map(TorrentJson::from)
        .collect();
    // Written once into a buffer of about the right size: a list of a
    // thousand torrents is half a megabyte, and growing a buffer by
    // doubling copies it over and over.
    let mut body = Vec::with_capacity(64 + rows.len() * 512);
    serde_json::to_writer(&mut body, &rows)
        .map_err(|_| ApiError::Internal("the torrent list could not be written as JSON"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/v1/torrents`: a raw .torrent (options in the query string)
/// or a JSON body naming a magnet, a URL or base64 .torrent bytes.
pub(crate) async fn add<R: Runtime>(
    State(app): State<App<R>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let (source, options) = match content_type.as_deref() {
        Some("application/x-bittorrent") => {
            let options = query::<AddQuery>(&uri)?
                .into_json()
                .map_err(ApiError::BadRequest)?;
            let bytes = body_bytes(&headers, body, app.max_body).await?;
            (AddSource::TorrentFile(bytes.to_vec()), add_options(options))
        }
        None | Some("application/json") => {
            if uri.query().is_some_and(|q| !q.is_empty()) {
                return Err(ApiError::BadRequest(
                    "with a JSON body, options go in the body, not the query string".into(),
                ));
            }
            // base64 makes a .torrent a third larger.
            let limit = app.max_body / 3 * 4 + JSON_BODY_LIMIT;
            let request: AddJson = json_body(&headers, body, limit).await?;
            source_of(request, app.max_body)?
        }
        Some(_) => return Err(ApiError::UnsupportedMediaType),
    };
    let hash = app.session.add(source, options).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "info_hash": hash.to_string() })),
    ))
}

/// The one source a JSON add names, and its options.
fn source_of(mut request: AddJson, max_body: usize) -> Result<(AddSource, AddOptions), ApiError> {
    let source = match (
        request.magnet.take(),
        request.url.take(),
        request.torrent_base64.take(),
    ) {
        (Some(magnet), None, None) => {
            if !magnet.starts_with("magnet:?") {
                return Err(ApiError::BadRequest(
                    "magnet: expected a link starting with magnet:?".into(),
                ));
            }
            AddSource::Magnet(magnet)
        }
        (None, Some(url), None) => {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ApiError::BadRequest(
                    "url: expected an http:// or https:// URL of a .torrent file".into(),
                ));
            }
            AddSource::Url(url)
        }
        (None, None, Some(encoded)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| ApiError::BadRequest("torrent_base64: not valid base64".into()))?;
            if bytes.len() > max_body {
                return Err(ApiError::TooLarge(max_body));
            }
            AddSource::TorrentFile(bytes)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of magnet, url or torrent_base64 (or upload the .torrent \
                 with Content-Type: application/x-bittorrent)"
                    .into(),
            ))
        }
    };
    Ok((source, add_options(request)))
}

fn add_options(request: AddJson) -> AddOptions {
    AddOptions {
        save_path: request.save_path,
        paused: request.paused,
        only: request.only,
        category: request.category,
        tags: request.tags,
        sequential: request.sequential,
        first_last_piece: request.first_last_piece,
        peers: request.peers,
        content_layout: None,
    }
}

/// `GET /api/v1/torrents/{hash}`.
pub(crate) async fn details<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
) -> Result<Json<DetailsJson>, ApiError> {
    let details = app.session.torrent(hash).await?;
    Ok(Json(DetailsJson::from(&details)))
}

/// `POST /api/v1/torrents/{hash}/pause`.
pub(crate) async fn pause<R: Runtime>(State(app): State<App<R>>, Hash(hash): Hash) -> Done {
    app.session.pause(hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/resume`.
pub(crate) async fn resume<R: Runtime>(State(app): State<App<R>>, Hash(hash): Hash) -> Done {
    app.session.resume(hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/recheck`.
pub(crate) async fn recheck<R: Runtime>(State(app): State<App<R>>, Hash(hash): Hash) -> Done {
    app.session.recheck(hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/reannounce`.
pub(crate) async fn reannounce<R: Runtime>(State(app): State<App<R>>, Hash(hash): Hash) -> Done {
    app.session.reannounce(hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/torrents/{hash}?delete_data=true`.
pub(crate) async fn remove<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    uri: Uri,
) -> Done {
    let RemoveQuery { delete_data } = query(&uri)?;
    app.session.remove(hash, delete_data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/files`.
pub(crate) async fn files<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    headers: HeaderMap,
    body: Body,
) -> Done {
    let request: PrioritiesJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    let changes: PriorityChanges = request
        .priorities
        .iter()
        .map(|p| (p.index, p.priority.into()))
        .collect();
    app.session.set_file_priorities(hash, changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/limits`: a field left out keeps its
/// value.
pub(crate) async fn limits<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    headers: HeaderMap,
    body: Body,
) -> Done {
    let request: LimitsJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    let (upload, download) = match (request.upload, request.download) {
        (Some(up), Some(down)) => (up, down),
        (up, down) => {
            let current = app.session.torrent(hash).await?.torrent;
            (
                up.unwrap_or(current.upload_limit),
                down.unwrap_or(current.download_limit),
            )
        }
    };
    app.session
        .set_torrent_limits(hash, upload, download)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/options`: each field given is applied,
/// in the order listed in `docs/api.md`.
pub(crate) async fn options<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    headers: HeaderMap,
    body: Body,
) -> Done {
    let request: OptionsJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    if let Some(on) = request.sequential {
        app.session.set_sequential(hash, on).await?;
    }
    if let Some(on) = request.first_last_piece {
        app.session.set_first_last_piece(hash, on).await?;
    }
    if let Some(category) = request.category {
        app.session.set_category(hash, category).await?;
    }
    if let Some(tags) = request.tags {
        app.session.set_tags(hash, tags).await?;
    }
    if let Some(position) = request.queue_position {
        app.session.set_queue_position(hash, position).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/move`: its files go to another folder
/// while it runs.
pub(crate) async fn move_storage<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    headers: HeaderMap,
    body: Body,
) -> Done {
    let request: MoveJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    app.session.move_storage(hash, request.save_path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{hash}/rename`: its top folder (or single
/// file) gets a new name.
pub(crate) async fn rename<R: Runtime>(
    State(app): State<App<R>>,
    Hash(hash): Hash,
    headers: HeaderMap,
    body: Body,
) -> Done {
    let request: RenameJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    app.session.rename(hash, request.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which way a bulk request goes.
#[derive(Clone, Copy)]
pub(crate) enum Bulk {
    Pause,
    Resume,
}

/// `POST /api/v1/torrents/pause|resume` with `{"hashes": [...]}` or
/// `{"all": true}`: every torrent named is tried; the answer lists those
/// done, or is the first failure.
pub(crate) async fn bulk<R: Runtime>(
    app: App<R>,
    which: Bulk,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: BulkJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    let hashes = match (request.all, request.hashes.is_empty()) {
        (true, true) => app
            .session
            .list()
            .await?
            .iter()
            .map(|t| t.info_hash)
            .collect(),
        (false, false) => request
            .hashes
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(ApiError::BadRequest(
                "give either \"hashes\": [...] or \"all\": true".into(),
            ))
        }
    };
    let mut done = Vec::with_capacity(hashes.len());
    let mut first_error = None;
    for hash in hashes {
        let result = match which {
            Bulk::Pause => app.session.pause(hash).await,
            Bulk::Resume => app.session.resume(hash).await,
        };
        match result {
            Ok(()) => done.push(hash.to_string()),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err.into()),
        None => Ok(Json(json!({ "info_hashes": done }))),
    }
}
