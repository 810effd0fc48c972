//! rqbit's HTTP API, the five calls Sonarr's and Radarr's "RQBit" download
//! client makes (`RQbitProxy.cs`), under `/rqbit` so that they sit beside
//! bittide's own API without bending it: rqbit serves them at the root,
//! where bittide serves its web UI. Sonarr's client has a "URL Base"
//! setting; set it to `/rqbit` (`docs/compat.md`).
//!
//! - `GET /rqbit/`: who is answering; Sonarr wants `version` ≥ 8.0.0.
//! - `GET /rqbit/torrents[?with_stats=true]`: the list, with each
//!   torrent's `stats` (state, bytes, speeds) when asked.
//! - `POST /rqbit/torrents[?overwrite=true&…]`: the body is a magnet link,
//!   an http(s) URL or the bytes of a .torrent (told apart as rqbit does);
//!   a torrent already in the session answers as if just added.
//! - `GET /rqbit/torrents/{id or hash}`: one torrent with its files.
//! - `POST /rqbit/torrents/{id or hash}/pause|start|forget|delete`
//!   (`forget` keeps the data, `delete` removes it).
//!
//! The words and shapes are rqbit's (`librqbit`'s `http_api`); the
//! numeric ids are the daemon's own ([`crate::ids`]). Sonarr's client
//! sends no credentials, so it works with a daemon that needs no login
//! (a loopback bind); with a login, any client that sends Basic auth
//! works. The guard lets a write through without the CSRF header only
//! when it carries no browser's `Origin` or `Sec-Fetch-Site`
//! (`guard.rs`).

use std::path::{Path as FsPath, MAIN_SEPARATOR};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bittide_core::picker::Priority;
use bittide_core::InfoHash;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{
    AddOptions, AddSource, RequestError, TorrentDetails, TorrentStatus, TorrentView,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{body_bytes, query};
use crate::App;

/// Where the dialect lives (Sonarr's "URL Base").
pub(crate) const PREFIX: &str = "/rqbit";

/// The rqbit version whose API this answers as (the shapes of
/// `TorrentStats` and `ApiAddTorrentResponse` since rqbit 8; Sonarr
/// refuses anything older than 8.0.0).
const RQBIT_API_VERSION: &str = "8.1.1";

/// The routes, for `lib.rs` to merge.
pub(crate) fn routes<R: Runtime>() -> Router<App<R>> {
    Router::new()
        .route(PREFIX, get(root))
        .route("/rqbit/", get(root))
        .route("/rqbit/torrents", get(list::<R>).post(add::<R>))
        .route("/rqbit/torrents/{id}", get(details::<R>))
        .route("/rqbit/torrents/{id}/stats/v1", get(stats::<R>))
        .route("/rqbit/torrents/{id}/{action}", post(action::<R>))
}

/// An error in rqbit's shape (`human_readable`, `status`), with the HTTP
/// status bittide's own API would give it.
struct RqbitError(ApiError);

impl<E: Into<ApiError>> From<E> for RqbitError {
    fn from(e: E) -> RqbitError {
        RqbitError(e.into())
    }
}

impl IntoResponse for RqbitError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = json!({
            "human_readable": self.0.to_string(),
            "status": status.as_u16(),
            "status_text": status.canonical_reason().unwrap_or(""),
        });
        (status, Json(body)).into_response()
    }
}

type Answer = Result<Json<Value>, RqbitError>;

/// `GET /rqbit/`.
async fn root() -> Json<Value> {
    Json(json!({
        "server": "bittide (rqbit-compatible API)",
        "version": RQBIT_API_VERSION,
        "bittide_version": env!("CARGO_PKG_VERSION"),
        "apis": {
            "GET /rqbit/torrents": "List torrents (?with_stats=true for their stats)",
            "POST /rqbit/torrents": "Add a torrent: a magnet link, an http(s) URL or .torrent bytes as the body",
            "GET /rqbit/torrents/{id_or_infohash}": "One torrent and its files",
            "GET /rqbit/torrents/{id_or_infohash}/stats/v1": "One torrent's stats",
            "POST /rqbit/torrents/{id_or_infohash}/pause": "Pause",
            "POST /rqbit/torrents/{id_or_infohash}/start": "Resume",
            "POST /rqbit/torrents/{id_or_infohash}/forget": "Remove, keeping the data",
            "POST /rqbit/torrents/{id_or_infohash}/delete": "Remove with its data",
        },
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    with_stats: bool,
}

/// `GET /rqbit/torrents`: rqbit lists torrents without their files.
async fn list<R: Runtime>(State(app): State<App<R>>, uri: Uri) -> Answer {
    let q: ListQuery = query(&uri)?;
    let views = app.session.list().await?;
    app.ids.learn(&views);
    let mut torrents = Vec::with_capacity(views.len());
    for t in &views {
        // A torrent removed between the list and this call is left out.
        let d = match app.session.torrent(t.info_hash).await {
            Ok(d) => d,
            Err(RequestError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut row = details_json(&app, &d);
        if let Some(map) = row.as_object_mut() {
            map.remove("files");
            if q.with_stats {
                map.insert("stats".into(), torrent_stats(&d));
            }
        }
        torrents.push(row);
    }
    Ok(Json(json!({ "torrents": torrents })))
}

/// `GET /rqbit/torrents/{id}`.
async fn details<R: Runtime>(State(app): State<App<R>>, Path(id): Path<String>) -> Answer {
    let hash = resolve(&app, &id).await?;
    let d = app.session.torrent(hash).await?;
    Ok(Json(details_json(&app, &d)))
}

/// `GET /rqbit/torrents/{id}/stats/v1`.
async fn stats<R: Runtime>(State(app): State<App<R>>, Path(id): Path<String>) -> Answer {
    let hash = resolve(&app, &id).await?;
    let d = app.session.torrent(hash).await?;
    Ok(Json(torrent_stats(&d)))
}

/// `POST /rqbit/torrents/{id}/{action}`: rqbit answers `{}`.
async fn action<R: Runtime>(
    State(app): State<App<R>>,
    Path((id, action)): Path<(String, String)>,
) -> Answer {
    let hash = resolve(&app, &id).await?;
    match action.as_str() {
        "pause" => app.session.pause(hash).await?,
        "start" => app.session.resume(hash).await?,
        "forget" | "delete" => {
            app.session.remove(hash, action == "delete").await?;
            app.ids.removed(hash);
        }
        _ => return Err(ApiError::NoRoute.into()),
    }
    Ok(Json(json!({})))
}

/// What `POST /rqbit/torrents` takes in its query string (rqbit's
/// `TorrentAddQueryParams`; the ones bittide has no use for are ignored,
/// among them Sonarr's `overwrite=true`: rqbit's "write over files
/// already there", which bittide always does after keeping the pieces
/// that verify).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AddQuery {
    /// The body is a URL (`true`) or .torrent bytes (`false`); guessed
    /// when absent.
    is_url: Option<bool>,
    output_folder: Option<String>,
    paused: bool,
    /// Comma-separated file indices to download.
    only_files: Option<String>,
}

/// `POST /rqbit/torrents`.
async fn add<R: Runtime>(
    State(app): State<App<R>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let q: AddQuery = query(&uri)?;
    let bytes = body_bytes(&headers, body, app.max_body).await?;
    let source = add_source(&bytes, q.is_url)?;
    let only = match &q.only_files {
        None => None,
        Some(list) => Some(parse_indices(list)?),
    };
    let options = AddOptions {
        save_path: q.output_folder.map(Into::into),
        paused: q.paused,
        only,
        ..AddOptions::default()
    };
    let hash = match app.session.add(source, options).await {
        Ok(hash) | Err(RequestError::Duplicate(hash)) => hash,
        Err(e) => return Err(e.into()),
    };
    let d = app.session.torrent(hash).await?;
    let mut details = details_json(&app, &d);
    let output_folder = details["output_folder"].clone();
    let id = details["id"].clone();
    if let Some(map) = details.as_object_mut() {
        map.remove("id");
    }
    Ok(Json(json!({
        "id": id,
        "details": details,
        "output_folder": output_folder,
        "seen_peers": null,
    })))
}

/// What the body of an add is, told apart as rqbit does when `is_url` is
/// not given: text that starts with a URL scheme it fetches, or a magnet
/// link, is a link; anything else is .torrent bytes.
fn add_source(bytes: &[u8], is_url: Option<bool>) -> Result<AddSource, RqbitError> {
    let text = || {
        std::str::from_utf8(bytes)
            .map(|s| s.trim().to_owned())
            .map_err(|_| ApiError::BadRequest("the URL is not valid UTF-8".into()))
    };
    let link = |s: String| {
        if s.starts_with("magnet:") {
            AddSource::Magnet(s)
        } else {
            AddSource::Url(s)
        }
    };
    let looks_like_link = |b: &[u8]| {
        ["magnet:", "http://", "https://"]
            .iter()
            .any(|scheme| b.starts_with(scheme.as_bytes()))
    };
    match is_url {
        Some(true) => Ok(link(text()?)),
        Some(false) => Ok(AddSource::TorrentFile(bytes.to_vec())),
        None if looks_like_link(bytes.trim_ascii_start()) => Ok(link(text()?)),
        None if bytes.is_empty() => Err(ApiError::BadRequest(
            "the body is empty: send a magnet link, an http(s) URL or a .torrent file".into(),
        )
        .into()),
        None => Ok(AddSource::TorrentFile(bytes.to_vec())),
    }
}

fn parse_indices(list: &str) -> Result<Vec<usize>, RqbitError> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim().parse().map_err(|_| {
                ApiError::BadRequest(format!("only_files: {s:?} is not a file index")).into()
            })
        })
        .collect()
}

/// The torrent named by a path segment: the daemon's numeric id or a
/// 40-digit info-hash (rqbit's `TorrentIdOrHash`).
async fn resolve<R: Runtime>(app: &App<R>, id: &str) -> Result<InfoHash, RqbitError> {
    if let Some(hash) = InfoHash::from_hex(id.as_bytes()) {
        return Ok(hash);
    }
    let number: i64 = id.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "{id:?} is neither a torrent id nor a 40-digit info-hash"
        ))
    })?;
    // Ids are given out as torrents are listed; one added through another
    // API may not have one yet.
    app.ids.learn(&app.session.list().await?);
    app.ids
        .hash_of(number)
        .ok_or_else(|| ApiError::UnknownTorrent(format!("no torrent with id {number}")).into())
}

/// The folder rqbit writes a torrent's files into: the torrent's own
/// folder for a multi-file torrent, the save path for a single file. The
/// latter ends with a separator, because Sonarr joins this and the name by
/// plain concatenation when the folder does not end with the name.
fn output_folder(t: &TorrentView, files: usize) -> String {
    if files > 1 {
        t.save_path.join(&t.name).display().to_string()
    } else {
        let mut s = t.save_path.display().to_string();
        if !s.ends_with(MAIN_SEPARATOR) {
            s.push(MAIN_SEPARATOR);
        }
        s
    }
}

/// One torrent with its files (rqbit's `TorrentDetailsResponse`).
fn details_json<R: Runtime>(app: &App<R>, d: &TorrentDetails) -> Value {
    let t = &d.torrent;
    let multi = d.files.len() > 1;
    let files: Vec<Value> = d
        .files
        .iter()
        .map(|f| {
            // rqbit names a file by its path inside `output_folder`.
            let inside = if multi {
                FsPath::new(&f.path)
                    .strip_prefix(&t.name)
                    .unwrap_or(FsPath::new(&f.path))
            } else {
                FsPath::new(&f.path)
            };
            let components: Vec<String> = inside
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            json!({
                "name": components.join("/"),
                "components": components,
                "length": f.size,
                "included": f.priority != Priority::Skip,
                "attributes": {
                    "symlink": false,
                    "hidden": false,
                    "padding": false,
                    "executable": false,
                },
            })
        })
        .collect();
    let has_metadata = t.state != TorrentStatus::Metadata;
    json!({
        "id": app.ids.id_of(t.info_hash),
        "info_hash": t.info_hash.to_string(),
        "name": has_metadata.then(|| t.name.clone()),
        "output_folder": output_folder(t, d.files.len()),
        "total_pieces": d.piece_count,
        "files": files,
    })
}

/// rqbit's `TorrentStats`: its state word, byte counts over the wanted
/// files, and live speeds while it runs.
fn torrent_stats(d: &TorrentDetails) -> Value {
    let t = &d.torrent;
    let state = match t.state {
        // Moving its data: busy, back to live by itself.
        TorrentStatus::Metadata | TorrentStatus::Checking | TorrentStatus::Moving => "initializing",
        TorrentStatus::Downloading | TorrentStatus::Seeding => "live",
        // Queued torrents are not running: rqbit has no word for waiting.
        TorrentStatus::Queued | TorrentStatus::Paused => "paused",
        TorrentStatus::Error | TorrentStatus::MissingFiles => "error",
    };
    let progress_bytes = (t.progress * t.wanted as f64).round() as u64;
    let finished = t.wanted > 0 && progress_bytes >= t.wanted;
    let file_progress: Vec<u64> = d
        .files
        .iter()
        .map(|f| (f.progress * f.size as f64).round() as u64)
        .collect();
    let live = (state == "live").then(|| {
        let time_remaining = t.eta.filter(|_| !finished).map(|secs| {
            json!({
                "duration": { "secs": secs, "nanos": 0 },
                "human_readable": human_duration(secs),
            })
        });
        json!({
            "snapshot": {
                "downloaded_and_checked_bytes": progress_bytes,
                "fetched_bytes": t.downloaded,
                "uploaded_bytes": t.uploaded,
                "peer_stats": {
                    "queued": 0,
                    "connecting": 0,
                    "live": t.peers,
                    "seen": t.peers,
                    "dead": 0,
                    "not_needed": 0,
                    "steals": 0,
                },
            },
            "average_piece_download_time": null,
            "download_speed": speed(t.download_rate),
            "upload_speed": speed(t.upload_rate),
            "time_remaining": time_remaining,
        })
    });
    json!({
        "state": state,
        "file_progress": file_progress,
        "error": t.error,
        "progress_bytes": progress_bytes,
        "uploaded_bytes": t.uploaded,
        "total_bytes": t.wanted,
        "finished": finished,
        "live": live,
    })
}

/// rqbit's `Speed`: MiB/s (its field says `mbps`).
fn speed(bytes_per_second: u64) -> Value {
    let mib = bytes_per_second as f64 / (1024.0 * 1024.0);
    json!({ "mbps": mib, "human_readable": format!("{mib:.2} MiB/s") })
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        _ => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_bodies_are_told_apart_as_rqbit_does() {
        let magnet = b"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
        assert!(matches!(add_source(magnet, None), Ok(AddSource::Magnet(_))));
        assert!(matches!(
            add_source(b"  https://example.test/a.torrent\n", None),
            Ok(AddSource::Url(u)) if u == "https://example.test/a.torrent"
        ));
        assert!(matches!(
            add_source(b"d8:announce", None),
            Ok(AddSource::TorrentFile(_))
        ));
        assert!(matches!(
            add_source(b"http://x", Some(false)),
            Ok(AddSource::TorrentFile(_))
        ));
        assert!(add_source(b"", None).is_err());
        assert!(add_source(&[0xff, 0xfe], Some(true)).is_err());
    }

    #[test]
    fn file_indices() {
        assert_eq!(parse_indices("0, 2,5").ok(), Some(vec![0, 2, 5]));
        assert!(parse_indices("1,x").is_err());
    }

    #[test]
    fn durations_read_like_rqbit() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(7384), "2h3m");
    }
}
