//! `torrents/…`: the list with its filters, one torrent's properties,
//! files, trackers and pieces, and the actions on a `hashes` list
//! (`src/webui/api/torrentscontroller.cpp`). Adding is in `add`, and
//! categories and tags in `labels`.

use std::cmp::Ordering;
use std::path::PathBuf;

use axum::response::Response;
use bittide_core::picker::Priority;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::TorrentView;
use serde_json::{json, Map, Value};

use super::states::{self, unix_now, MAX_ETA};
use super::{add, json, labels, ok, shares, Call, QbtError};

/// Torrents whose peers and trackers `torrents/info` looks up one by one;
/// beyond this a list shows no peer counts (the seeds/leechers split needs
/// each torrent's peer list).
const DETAILED_LIST: usize = 256;

pub(crate) async fn handle<R: Runtime>(call: Call<R>, method: &str) -> Result<Response, QbtError> {
    match method {
        "info" => info(call).await,
        "count" => Ok(super::text(
            axum::http::StatusCode::OK,
            call.app.session.list().await?.len().to_string(),
        )),
        "properties" => properties(call).await,
        "files" => files(call).await,
        "trackers" => trackers(call).await,
        "webseeds" => {
            // qBittorrent lists each web seed as `{"url": …}`.
            let d = call.app.session.torrent(call.hash()?).await?;
            let rows: Vec<Value> = d.web_seeds.iter().map(|w| json!({"url": w.url})).collect();
            Ok(json(&Value::Array(rows)))
        }
        "pieceStates" => piece_states(call).await,
        "add" => add::add(call).await,
        "delete" => {
            let delete_files = call.params.flag("deleteFiles").unwrap_or(false);
            for hash in call.hashes().await? {
                call.app.session.remove(hash, delete_files).await?;
            }
            Ok(ok())
        }
        "pause" | "stop" => {
            for hash in call.hashes().await? {
                call.app.session.pause(hash).await?;
            }
            Ok(ok())
        }
        "resume" | "start" => {
            for hash in call.hashes().await? {
                // qBittorrent starts a torrent under the queue's limits
                // again: a plain start ends a force start.
                if call.app.session.torrent(hash).await?.torrent.force_start {
                    call.app.session.set_force_start(hash, false).await?;
                }
                call.app.session.resume(hash).await?;
            }
            Ok(ok())
        }
        "setForceStart" => {
            let on = call
                .params
                .flag("value")
                .ok_or_else(|| QbtError::BadParams("Missing or invalid parameter: value".into()))?;
            for hash in call.hashes().await? {
                call.app.session.set_force_start(hash, on).await?;
            }
            Ok(ok())
        }
        "recheck" => {
            for hash in call.hashes().await? {
                call.app.session.recheck(hash).await?;
            }
            Ok(ok())
        }
        "reannounce" => {
            for hash in call.hashes().await? {
                call.app.session.reannounce(hash).await?;
            }
            Ok(ok())
        }
        "filePrio" => file_prio(call).await,
        "setShareLimits" => shares::set(call).await,
        "topPrio" | "bottomPrio" => queue_move(call, method == "topPrio").await,
        "setLocation" => {
            let location = call.params.require("location")?.trim().to_owned();
            if location.is_empty() {
                return Err(QbtError::BadParams("Save path cannot be empty".into()));
            }
            for hash in call.hashes().await? {
                call.app
                    .session
                    .move_storage(hash, PathBuf::from(&location))
                    .await?;
            }
            Ok(ok())
        }
        "setDownloadLimit" | "setUploadLimit" => set_limit(call, method == "setUploadLimit").await,
        "downloadLimit" | "uploadLimit" => limits(call, method == "uploadLimit").await,
        "toggleSequentialDownload" | "toggleFirstLastPiecePrio" => {
            let sequential = method == "toggleSequentialDownload";
            for hash in call.hashes().await? {
                let t = call.app.session.torrent(hash).await?.torrent;
                if sequential {
                    call.app.session.set_sequential(hash, !t.sequential).await?;
                } else {
                    let on = !t.first_last_piece;
                    call.app.session.set_first_last_piece(hash, on).await?;
                }
            }
            Ok(ok())
        }
        _ => labels::handle(call, method).await,
    }
}

/// `torrents/info`: `filter`, `category`, `tag`, `hashes`, `sort`,
/// `reverse`, `limit`, `offset`.
async fn info<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let p = &call.params;
    let filter = p.get("filter").unwrap_or("all").to_owned();
    let category = p.get("category").map(str::to_owned);
    let tag = p.get("tag").map(str::to_owned);
    let hashes: Option<Vec<String>> = p.get("hashes").map(|h| {
        h.split('|')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    });
    let reverse = p.flag("reverse").unwrap_or(false);
    let limit = p.int("limit")?;
    let offset = p.int("offset")?.unwrap_or(0);
    let sort = p.get("sort").map(str::to_owned);

    let all = call.app.session.list().await?;
    let kept: Vec<&TorrentView> = all
        .iter()
        .filter(|t| states::filter_keeps(&filter, t))
        .filter(|t| match &category {
            // qBittorrent: an empty `category` means "without category".
            Some(c) => t.category.as_deref().unwrap_or("") == c,
            None => true,
        })
        .filter(|t| match &tag {
            Some(g) if g.is_empty() => t.tags.is_empty(),
            Some(g) => t.tags.iter().any(|x| x == g),
            None => true,
        })
        .filter(|t| match &hashes {
            Some(h) => h.contains(&t.info_hash.to_string()),
            None => true,
        })
        .collect();
    let mut rows = rows(&call, &kept).await?;
    if let Some(key) = &sort {
        if rows.first().is_some_and(|r| !r.contains_key(key)) {
            return Err(QbtError::BadParams("'sort' parameter is invalid".into()));
        }
        rows.sort_by(|a, b| compare(&a[key], &b[key]));
    }
    if reverse {
        rows.reverse();
    }
    let len = rows.len() as i64;
    let start = if offset < 0 {
        (len + offset).max(0)
    } else {
        offset.min(len)
    } as usize;
    let take = match limit {
        Some(l) if l > 0 => l as usize,
        _ => usize::MAX,
    };
    let page: Vec<Value> = rows
        .into_iter()
        .skip(start)
        .take(take)
        .map(Value::Object)
        .collect();
    Ok(json(&Value::Array(page)))
}

/// The `torrents/info` objects of `torrents`.
pub(crate) async fn rows<R: Runtime>(
    call: &Call<R>,
    torrents: &[&TorrentView],
) -> Result<Vec<Map<String, Value>>, QbtError> {
    let now = unix_now();
    let mut rows = Vec::with_capacity(torrents.len());
    let detailed = torrents.len() <= DETAILED_LIST;
    let limits = call.app.session.share_limits().await;
    let seeding = call.app.session.seeding_times().await?;
    for t in torrents {
        let details = if detailed {
            call.app.session.torrent(t.info_hash).await.ok()
        } else {
            None
        };
        let extra = states::Extra {
            details: details.as_ref(),
            share: shares::shown(limits.get(&t.info_hash)),
            seeding_time: seeding.get(&t.info_hash).map_or(0, |d| d.as_secs()),
        };
        rows.push(states::torrent_json(t, &extra, now));
    }
    Ok(rows)
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `torrents/properties`.
async fn properties<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let hash = call.hash()?;
    let d = call.app.session.torrent(hash).await?;
    let t = &d.torrent;
    let now = unix_now();
    let (seeds, leechs) = states::peer_split(&d);
    let (swarm_seeds, swarm_leechs) = states::swarm_split(&d);
    let have = d.pieces.iter().map(|b| b.count_ones() as u64).sum::<u64>();
    let elapsed = now.saturating_sub(t.added_at).max(1);
    let seeding = call.app.session.seeding_times().await?;
    let seeding_time = seeding.get(&hash).map_or(0, |d| d.as_secs());
    let limit = |v: u64| if v == 0 { -1 } else { v as i64 };
    let mut out = json!({
        "hash": t.info_hash.to_string(),
        "infohash_v1": t.info_hash.to_string(),
        "infohash_v2": "",
        "name": t.name,
        "save_path": t.save_path.display().to_string(),
        "download_path": "",
        "creation_date": -1,
        "piece_size": d.piece_length,
        "pieces_num": d.piece_count,
        "pieces_have": have,
        "comment": "",
        "created_by": "",
        "total_wasted": 0,
        "total_uploaded": t.uploaded,
        "total_uploaded_session": t.uploaded,
        "total_downloaded": t.downloaded,
        "total_downloaded_session": t.downloaded,
    });
    let more = json!({
        "up_limit": limit(t.upload_limit),
        "dl_limit": limit(t.download_limit),
        "time_elapsed": elapsed,
        "seeding_time": seeding_time,
        "nb_connections": d.peers.len(),
        "nb_connections_limit": -1,
        "share_ratio": t.ratio,
        "addition_date": t.added_at,
        "completion_date": t.completed_at.map_or(-1, |c| c as i64),
        "last_seen": if states::complete(t) { now as i64 } else { -1 },
        "dl_speed": t.download_rate,
        "dl_speed_avg": t.downloaded / elapsed,
        "up_speed": t.upload_rate,
        "up_speed_avg": t.uploaded / elapsed,
        "eta": t.eta.unwrap_or(MAX_ETA).min(MAX_ETA),
        "peers": leechs,
        "peers_total": swarm_leechs,
        "seeds": seeds,
        "seeds_total": swarm_seeds,
        "reannounce": 0,
        "total_size": t.size,
        "isPrivate": false,
        "is_private": false,
        "has_metadata": d.piece_count > 0,
        "popularity": 0.0,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut out, more) {
        a.extend(b);
    }
    Ok(json(&out))
}

/// qBittorrent's file priority numbers: 0 skip, 1 normal, 6 high, 7
/// maximal; bittide's Low is shown as 1.
fn priority_number(p: Priority) -> u8 {
    match p {
        Priority::Skip => 0,
        Priority::Low | Priority::Normal => 1,
        Priority::High => 7,
    }
}

/// `torrents/files`.
async fn files<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let hash = call.hash()?;
    let d = call.app.session.torrent(hash).await?;
    let piece_length = u64::from(d.piece_length.max(1));
    let mut offset = 0u64;
    let rows: Vec<Value> = d
        .files
        .iter()
        .map(|f| {
            let first = offset / piece_length;
            let last = (offset + f.size.max(1) - 1) / piece_length;
            offset += f.size;
            json!({
                "index": f.index,
                "name": f.path,
                "size": f.size,
                "progress": f.progress,
                "priority": priority_number(f.priority),
                "is_seed": f.progress >= 1.0,
                "piece_range": [first, last],
                "availability": if d.peers.iter().any(|p| p.progress >= 1.0) { 1.0 } else { f.progress },
            })
        })
        .collect();
    Ok(json(&Value::Array(rows)))
}

/// `torrents/trackers`: status 1 not contacted, 2 working, 4 not working.
async fn trackers<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let hash = call.hash()?;
    let d = call.app.session.torrent(hash).await?;
    let rows: Vec<Value> = d
        .trackers
        .iter()
        .map(|t| {
            let status = match (&t.error, t.last_announce_ago) {
                (Some(_), _) => 4,
                (None, Some(_)) => 2,
                (None, None) => 1,
            };
            let count = |c: Option<u32>| c.map_or(-1, i64::from);
            json!({
                "url": t.url,
                "status": status,
                "tier": t.tier,
                "num_peers": t.peers,
                "num_seeds": count(t.seeders),
                "num_leeches": count(t.leechers),
                "num_downloaded": -1,
                "msg": t.error.clone().unwrap_or_default(),
            })
        })
        .collect();
    Ok(json(&Value::Array(rows)))
}

/// `torrents/pieceStates`: 0 missing, 1 downloading, 2 verified.
async fn piece_states<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let hash = call.hash()?;
    let d = call.app.session.torrent(hash).await?;
    let states = piece_state_codes(d.piece_count, &d.pieces, &d.pieces_in_progress);
    Ok(json(&json!(states)))
}

/// qBittorrent's code for each piece: 2 for a verified one (a bit set in
/// the BEP 3 bitfield `have`), 1 for one in `in_progress`, else 0.
fn piece_state_codes(count: u32, have: &[u8], in_progress: &[u32]) -> Vec<u8> {
    let mut states: Vec<u8> = (0..count as usize)
        .map(|i| {
            let byte = have.get(i / 8).copied().unwrap_or(0);
            if byte & (0x80 >> (i % 8)) != 0 {
                2
            } else {
                0
            }
        })
        .collect();
    for &p in in_progress {
        if let Some(s @ 0) = states.get_mut(p as usize) {
            *s = 1;
        }
    }
    states
}

/// `torrents/filePrio`: `hash`, `id` (`|`-separated indices), `priority`.
async fn file_prio<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let hash = call.hash()?;
    let priority = match call.params.require("priority")?.trim() {
        "0" => Priority::Skip,
        "1" => Priority::Normal,
        "6" | "7" => Priority::High,
        _ => return Err(QbtError::BadParams("Priority is not valid".into())),
    };
    let d = call.app.session.torrent(hash).await?;
    if d.piece_count == 0 {
        return Err(QbtError::Conflict(
            "Torrent's metadata has not yet downloaded".into(),
        ));
    }
    let mut changes = Vec::new();
    for id in call.params.require("id")?.split('|') {
        let index: usize = id
            .trim()
            .parse()
            .map_err(|_| QbtError::BadParams("File IDs must be integers".into()))?;
        if index >= d.files.len() {
            return Err(QbtError::Conflict("File ID is not valid".into()));
        }
        changes.push((index, priority));
    }
    call.app.session.set_file_priorities(hash, changes).await?;
    Ok(ok())
}

/// `torrents/topPrio` / `bottomPrio`: the named torrents go to the front
/// (or back) of the queue, keeping their order.
async fn queue_move<R: Runtime>(call: Call<R>, top: bool) -> Result<Response, QbtError> {
    let hashes = call.hashes().await?;
    let last = call.app.session.list().await?.len().saturating_sub(1);
    if top {
        for hash in hashes.iter().rev() {
            call.app.session.set_queue_position(*hash, 0).await?;
        }
    } else {
        for hash in &hashes {
            call.app.session.set_queue_position(*hash, last).await?;
        }
    }
    Ok(ok())
}

/// `torrents/setDownloadLimit` / `setUploadLimit`: `limit` in bytes/s,
/// 0 or less for none.
async fn set_limit<R: Runtime>(call: Call<R>, upload: bool) -> Result<Response, QbtError> {
    let limit = call
        .params
        .int("limit")?
        .ok_or_else(|| QbtError::BadParams("Missing required parameter: limit".into()))?;
    let limit = u64::try_from(limit).unwrap_or(0);
    for hash in call.hashes().await? {
        let t = call.app.session.torrent(hash).await?.torrent;
        let (up, down) = if upload {
            (limit, t.download_limit)
        } else {
            (t.upload_limit, limit)
        };
        call.app.session.set_torrent_limits(hash, up, down).await?;
    }
    Ok(ok())
}

/// `torrents/downloadLimit` / `uploadLimit`: `{hash: limit}`.
async fn limits<R: Runtime>(call: Call<R>, upload: bool) -> Result<Response, QbtError> {
    let mut out = Map::new();
    for hash in call.hashes().await? {
        let t = call.app.session.torrent(hash).await?.torrent;
        let v = if upload {
            t.upload_limit
        } else {
            t.download_limit
        };
        out.insert(hash.to_string(), json!(v));
    }
    Ok(json(&Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_states_say_verified_downloading_or_missing() {
        // 10 pieces; 0, 1 and 8 verified; 1 (verified already), 3 and 9 in
        // progress; 42 is out of range and ignored.
        let have = [0b1100_0000, 0b1000_0000];
        assert_eq!(
            piece_state_codes(10, &have, &[1, 3, 9, 42]),
            vec![2, 2, 0, 1, 0, 0, 0, 0, 2, 1]
        );
        assert_eq!(piece_state_codes(3, &[], &[]), vec![0, 0, 0]);
    }
}
