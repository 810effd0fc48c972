//! `torrent-get`: a torrent's fields under Transmission's names, numbers
//! and units (`docs/rpc-spec.md` §3.3). Fields bittide does not know are
//! left out, as Transmission leaves out keys it does not know.

use std::time::{SystemTime, UNIX_EPOCH};

use bittide_core::picker::Priority;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{TorrentDetails, TorrentStatus, TorrentView};
use bittide_driver::session::ShareLimits;
use serde_json::{json, Map, Value};

use super::session::goals;
use super::{arg, select, Answer, RpcError, Selection, RECENT};
use crate::App;

/// Transmission's `tr_torrent_activity` (1, waiting to check, never
/// happens here: bittide checks a torrent as soon as it is added).
mod status {
    pub(super) const STOPPED: u8 = 0;
    pub(super) const CHECK: u8 = 2;
    pub(super) const DOWNLOAD_WAIT: u8 = 3;
    pub(super) const DOWNLOAD: u8 = 4;
    pub(super) const SEED_WAIT: u8 = 5;
    pub(super) const SEED: u8 = 6;
}

/// `eta` when there is none to give (`TR_ETA_NOT_AVAIL`) or no rate to
/// estimate from (`TR_ETA_UNKNOWN`).
const ETA_NOT_AVAIL: i64 = -1;
const ETA_UNKNOWN: i64 = -2;

/// Fields that need the torrent's details (files, peers, trackers,
/// pieces), not only its list row.
const DETAIL_FIELDS: [&str; 15] = [
    "files",
    "fileStats",
    "peers",
    "trackers",
    "trackerStats",
    "pieceCount",
    "pieceSize",
    "magnetLink",
    "priorities",
    "wanted",
    "peersGettingFromUs",
    "peersSendingToUs",
    "file-count",
    "webseeds",
    "webseedsSendingToUs",
];

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `status` number of a bittide state: a queued torrent waits to
/// download or, complete, to seed; one fetching its metadata is
/// downloading (as Transmission shows a magnet); one stopped by an error
/// is stopped with `error` set.
pub(super) fn status_of(t: &TorrentView) -> u8 {
    match t.state {
        // Transmission has no status for a move or missing files: the
        // torrent is paused meanwhile.
        TorrentStatus::Paused
        | TorrentStatus::Error
        | TorrentStatus::Moving
        | TorrentStatus::MissingFiles => status::STOPPED,
        TorrentStatus::Checking => status::CHECK,
        TorrentStatus::Queued if t.progress >= 1.0 && t.wanted > 0 => status::SEED_WAIT,
        TorrentStatus::Queued => status::DOWNLOAD_WAIT,
        TorrentStatus::Metadata | TorrentStatus::Downloading => status::DOWNLOAD,
        TorrentStatus::Seeding => status::SEED,
    }
}

/// Transmission's file priority numbers (`TR_PRI_LOW` … `TR_PRI_HIGH`).
fn priority_number(p: Priority) -> i8 {
    match p {
        Priority::Low => -1,
        Priority::Skip | Priority::Normal => 0,
        Priority::High => 1,
    }
}

/// A torrent's seeding goals as Transmission shows them: the session's
/// (mode 0), or its own share limits (mode 1 with a value, 2 for none).
#[derive(Clone, Copy)]
struct Goals {
    ratio: f64,
    ratio_on: bool,
    idle_minutes: u64,
    ratio_mode: u8,
    idle_mode: u8,
}

impl Goals {
    /// `global`'s goals, or the torrent's own where it has them.
    fn of(global: Goals, own: Option<&ShareLimits>) -> Goals {
        let Some(own) = own else {
            return global;
        };
        Goals {
            ratio: own.ratio.unwrap_or(global.ratio),
            ratio_on: own.ratio.is_some(),
            idle_minutes: own
                .seeding_time
                .map_or(global.idle_minutes, |d| d.as_secs() / 60),
            ratio_mode: if own.ratio.is_some() { 1 } else { 2 },
            idle_mode: if own.seeding_time.is_some() { 1 } else { 2 },
        }
    }
}

/// `torrent-get`.
pub(super) async fn get<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let Some(fields) = arg::<Vec<String>>(args, "fields")? else {
        return Err(RpcError::Params("no fields specified".into()));
    };
    let table = arg::<String>(args, "format")?.is_some_and(|f| f == "table");
    let selection = select(app, args).await?;
    let removed = match &selection {
        Selection::Recent(_) => Some(app.ids.removed_within(RECENT)),
        Selection::Some(_) => None,
    };
    let settings = app.session.settings().await?;
    let (ratio, ratio_on, idle_minutes, _) = goals(app, &settings);
    let global = Goals {
        ratio,
        ratio_on,
        idle_minutes,
        ratio_mode: 0,
        idle_mode: 0,
    };
    let shares = app.session.share_limits().await;
    let need_details = fields.iter().any(|f| DETAIL_FIELDS.contains(&f.as_str()));
    let now = unix_now();
    let mut rows = Vec::new();
    for t in selection.into_list() {
        let details = if need_details {
            match app.session.torrent(t.info_hash).await {
                Ok(d) => Some(d),
                // Removed between the list and now: left out.
                Err(_) => continue,
            }
        } else {
            None
        };
        let id = app.ids.id_of(t.info_hash);
        let row: Map<String, Value> = fields
            .iter()
            .filter_map(|f| {
                let goals = Goals::of(global, shares.get(&t.info_hash));
                field(f, id, &t, details.as_ref(), &goals, now).map(|v| (f.clone(), v))
            })
            .collect();
        rows.push(row);
    }
    let torrents: Vec<Value> = if table {
        let mut out = vec![json!(fields)];
        for row in rows {
            let values: Vec<Value> = fields
                .iter()
                .map(|f| row.get(f).cloned().unwrap_or(Value::Null))
                .collect();
            out.push(Value::Array(values));
        }
        out
    } else {
        rows.into_iter().map(Value::Object).collect()
    };
    let mut answer = Map::new();
    answer.insert("torrents".into(), Value::Array(torrents));
    if let Some(removed) = removed {
        answer.insert("removed".into(), json!(removed));
    }
    Ok(answer)
}

/// One field's value; `None` for a name bittide does not know.
fn field(
    name: &str,
    id: i64,
    t: &TorrentView,
    d: Option<&TorrentDetails>,
    goals: &Goals,
    now: u64,
) -> Option<Value> {
    let complete = t.progress >= 1.0 && t.wanted > 0;
    let left = if complete {
        0
    } else {
        (t.wanted as f64 * (1.0 - t.progress)).round() as u64
    };
    let have = t.wanted - left.min(t.wanted);
    let kb = |rate: u64| rate / 1000;
    let v = match name {
        "id" => json!(id),
        "hashString" => json!(t.info_hash.to_string()),
        "name" => json!(t.name),
        "downloadDir" => json!(t.save_path.to_string_lossy()),
        "totalSize" => json!(t.size),
        "sizeWhenDone" => json!(t.wanted),
        "leftUntilDone" => json!(left),
        "haveValid" => json!(have),
        "haveUnchecked" => json!(0),
        "desiredAvailable" => json!(left),
        "percentDone" => json!(t.progress),
        "percentComplete" => json!(if t.size == 0 {
            0.0
        } else {
            have as f64 / t.size as f64
        }),
        "metadataPercentComplete" => {
            json!(if t.state == TorrentStatus::Metadata {
                0.0
            } else {
                1.0
            })
        }
        "recheckProgress" => json!(if t.state == TorrentStatus::Checking {
            t.progress
        } else {
            0.0
        }),
        "status" => json!(status_of(t)),
        "error" => json!(if t.error.is_some() { 3 } else { 0 }),
        "errorString" => json!(t.error.clone().unwrap_or_default()),
        "isFinished" => json!(
            t.state == TorrentStatus::Paused
                && complete
                && goals.ratio_on
                && t.ratio >= goals.ratio
        ),
        "isStalled" => json!(matches!(t.state, TorrentStatus::Downloading) && t.download_rate == 0),
        "isPrivate" => json!(false),
        "eta" => json!(match (complete, t.eta) {
            (true, _) => ETA_NOT_AVAIL,
            (false, Some(s)) => i64::try_from(s).unwrap_or(i64::MAX),
            (false, None) => ETA_UNKNOWN,
        }),
        "etaIdle" => json!(ETA_NOT_AVAIL),
        "rateDownload" => json!(t.download_rate),
        "rateUpload" => json!(t.upload_rate),
        "uploadedEver" => json!(t.uploaded),
        "downloadedEver" => json!(t.downloaded),
        "corruptEver" => json!(0),
        "uploadRatio" => json!(t.ratio),
        "seedRatioLimit" => json!(goals.ratio),
        "seedRatioMode" => json!(goals.ratio_mode),
        "seedIdleLimit" => json!(goals.idle_minutes),
        "seedIdleMode" => json!(goals.idle_mode),
        "addedDate" => json!(t.added_at),
        "startDate" => json!(t.added_at),
        "doneDate" => json!(t.completed_at.unwrap_or(0)),
        "activityDate" => json!(if t.download_rate + t.upload_rate > 0 {
            now
        } else {
            t.completed_at.unwrap_or(t.added_at)
        }),
        // bittide keeps when a torrent was added and completed, not how
        // long it ran: these count wall time since then.
        "secondsDownloading" => {
            json!(t.completed_at.unwrap_or(now).saturating_sub(t.added_at))
        }
        "secondsSeeding" => json!(match (t.state, t.completed_at) {
            (TorrentStatus::Seeding, Some(done)) => now.saturating_sub(done),
            _ => 0,
        }),
        "labels" => json!(t.tags),
        "group" => json!(""),
        "queuePosition" => json!(t.queue_position),
        "peersConnected" => json!(t.peers),
        "sequentialDownload" => json!(t.sequential),
        "downloadLimit" => json!(kb(t.download_limit)),
        "downloadLimited" => json!(t.download_limit > 0),
        "uploadLimit" => json!(kb(t.upload_limit)),
        "uploadLimited" => json!(t.upload_limit > 0),
        "honorsSessionLimits" => json!(true),
        "bandwidthPriority" => json!(0),
        "comment" => json!(""),
        "creator" => json!(""),
        "dateCreated" => json!(0),
        "primary-mime-type" => json!("application/octet-stream"),
        _ => return detail_field(name, d?),
    };
    Some(v)
}

/// A field read from the torrent's details.
fn detail_field(name: &str, d: &TorrentDetails) -> Option<Value> {
    let v = match name {
        "files" => json!(d
            .files
            .iter()
            .map(|f| json!({
                "name": f.path,
                "length": f.size,
                "bytesCompleted": (f.size as f64 * f.progress).round() as u64,
            }))
            .collect::<Vec<_>>()),
        "fileStats" => json!(d
            .files
            .iter()
            .map(|f| json!({
                "bytesCompleted": (f.size as f64 * f.progress).round() as u64,
                "wanted": f.priority != Priority::Skip,
                "priority": priority_number(f.priority),
            }))
            .collect::<Vec<_>>()),
        "file-count" => json!(d.files.len()),
        "priorities" => json!(d
            .files
            .iter()
            .map(|f| priority_number(f.priority))
            .collect::<Vec<_>>()),
        "wanted" => json!(d
            .files
            .iter()
            .map(|f| i32::from(f.priority != Priority::Skip))
            .collect::<Vec<_>>()),
        "peers" => json!(d
            .peers
            .iter()
            .map(|p| json!({
                "address": p.addr.ip().to_string(),
                "port": p.addr.port(),
                "clientName": p.client.clone().unwrap_or_default(),
                "rateToClient": p.download_rate,
                "rateToPeer": p.upload_rate,
                "progress": p.progress,
                "flagStr": p.flags,
                "isIncoming": p.flags.contains('I'),
                "isDownloadingFrom": p.download_rate > 0,
                "isUploadingTo": p.upload_rate > 0,
                "isEncrypted": false,
                "isUTP": p.flags.contains('P'),
                "clientIsChoked": p.flags.contains('u'),
                "clientIsInterested": p.flags.contains('U') || p.flags.contains('u'),
                "peerIsChoked": p.flags.contains('d'),
                "peerIsInterested": p.flags.contains('d') || p.flags.contains('D'),
            }))
            .collect::<Vec<_>>()),
        "peersGettingFromUs" => json!(d.peers.iter().filter(|p| p.upload_rate > 0).count()),
        "peersSendingToUs" => json!(d.peers.iter().filter(|p| p.download_rate > 0).count()),
        "webseeds" => json!(d
            .web_seeds
            .iter()
            .map(|w| w.url.clone())
            .collect::<Vec<_>>()),
        "webseedsSendingToUs" => json!(d
            .web_seeds
            .iter()
            .filter(|w| w.state == "downloading")
            .count()),
        "trackers" => json!(d
            .trackers
            .iter()
            .enumerate()
            .map(|(i, t)| json!({
                "id": i,
                "announce": t.url,
                "scrape": "",
                "sitename": site_name(&t.url),
                "tier": t.tier,
            }))
            .collect::<Vec<_>>()),
        "trackerStats" => json!(d
            .trackers
            .iter()
            .enumerate()
            .map(|(i, t)| json!({
                "id": i,
                "announce": t.url,
                "host": site_name(&t.url),
                "sitename": site_name(&t.url),
                "tier": t.tier,
                "lastAnnounceSucceeded": t.error.is_none() && t.last_announce_ago.is_some(),
                "lastAnnounceResult": t.error.clone().unwrap_or_else(|| "Success".into()),
                "lastAnnouncePeerCount": t.peers,
                "seederCount": t.seeders.map_or(-1, i64::from),
                "leecherCount": t.leechers.map_or(-1, i64::from),
            }))
            .collect::<Vec<_>>()),
        "pieceCount" => json!(d.piece_count),
        "pieceSize" => json!(d.piece_length),
        "magnetLink" => json!(d.magnet),
        _ => return None,
    };
    Some(v)
}

/// A tracker URL's host, which Transmission shows as its site name.
fn site_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => host.split(':').next().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::InfoHash;

    fn view(state: TorrentStatus, progress: f64) -> TorrentView {
        TorrentView {
            info_hash: InfoHash([1; 20]),
            name: "n".into(),
            state,
            progress,
            size: 1000,
            wanted: 800,
            downloaded: 0,
            uploaded: 0,
            download_rate: 0,
            upload_rate: 0,
            peers: 0,
            eta: None,
            save_path: "/d".into(),
            error: None,
            category: None,
            tags: Vec::new(),
            queue_position: 0,
            added_at: 0,
            completed_at: None,
            ratio: 0.0,
            sequential: false,
            first_last_piece: false,
            force_start: false,
            content_path: "/d/n".into(),
            upload_limit: 0,
            download_limit: 0,
        }
    }

    #[test]
    fn statuses_follow_transmissions_numbers() {
        use TorrentStatus as S;
        let cases = [
            (S::Paused, 0.5, 0),
            (S::Error, 0.5, 0),
            (S::Checking, 0.0, 2),
            (S::Queued, 0.5, 3),
            (S::Queued, 1.0, 5),
            (S::Metadata, 0.0, 4),
            (S::Downloading, 0.5, 4),
            (S::Seeding, 1.0, 6),
        ];
        for (state, progress, want) in cases {
            assert_eq!(
                status_of(&view(state, progress)),
                want,
                "{state} {progress}"
            );
        }
    }

    #[test]
    fn sizes_and_eta() {
        let goals = Goals {
            ratio: 2.0,
            ratio_on: false,
            idle_minutes: 30,
            ratio_mode: 0,
            idle_mode: 0,
        };
        let half = view(TorrentStatus::Downloading, 0.5);
        let get = |t: &TorrentView, f| field(f, 7, t, None, &goals, 100).unwrap();
        assert_eq!(get(&half, "leftUntilDone"), json!(400));
        assert_eq!(get(&half, "sizeWhenDone"), json!(800));
        assert_eq!(get(&half, "totalSize"), json!(1000));
        assert_eq!(get(&half, "eta"), json!(ETA_UNKNOWN));
        let done = view(TorrentStatus::Seeding, 1.0);
        assert_eq!(get(&done, "leftUntilDone"), json!(0));
        assert_eq!(get(&done, "eta"), json!(ETA_NOT_AVAIL));
        assert_eq!(get(&done, "id"), json!(7));
        // Detail fields without details, and unknown names: left out.
        assert!(field("files", 7, &done, None, &goals, 100).is_none());
        assert!(field("noSuchField", 7, &done, None, &goals, 100).is_none());
    }

    #[test]
    fn site_names() {
        assert_eq!(
            site_name("http://tracker.example:6969/announce"),
            "tracker.example"
        );
        assert_eq!(site_name("udp://[::1]:80"), "::1");
        assert_eq!(site_name("https://u:p@t.example/a?x=1"), "t.example");
        assert_eq!(site_name("garbage"), "garbage");
    }
}
