//! A bittide torrent as qBittorrent describes one: its state strings
//! (`src/webui/api/serialize/serialize_torrent.cpp`), the fields of
//! `torrents/info` and `sync/maindata`, and the `filter` values of
//! `torrents/info` (`src/base/torrentfilter.cpp`).

use std::time::{SystemTime, UNIX_EPOCH};

use bittide_driver::session::views::{TorrentDetails, TorrentStatus, TorrentView, TrackerView};
use serde_json::{json, Map, Value};

/// qBittorrent's "no estimate" ETA: 100 days.
pub(crate) const MAX_ETA: u64 = 8_640_000;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every wanted byte is on disk (qBittorrent's "upload" half of states).
pub(crate) fn complete(t: &TorrentView) -> bool {
    t.state != TorrentStatus::Metadata && t.progress >= 1.0
}

/// qBittorrent's state string for a torrent: a force-started one that
/// runs shows `forced…` whatever its rate, as qBittorrent's does.
pub(crate) fn state(t: &TorrentView) -> &'static str {
    let up = complete(t);
    let forced = t.force_start;
    match t.state {
        TorrentStatus::Metadata if forced => "forcedMetaDL",
        TorrentStatus::Metadata => "metaDL",
        TorrentStatus::Checking if up => "checkingUP",
        TorrentStatus::Checking => "checkingDL",
        TorrentStatus::Queued if up => "queuedUP",
        TorrentStatus::Queued => "queuedDL",
        TorrentStatus::Downloading if forced => "forcedDL",
        TorrentStatus::Downloading if t.download_rate > 0 => "downloading",
        TorrentStatus::Downloading => "stalledDL",
        TorrentStatus::Seeding if forced => "forcedUP",
        TorrentStatus::Seeding if t.upload_rate > 0 => "uploading",
        TorrentStatus::Seeding => "stalledUP",
        TorrentStatus::Paused if up => "stoppedUP",
        TorrentStatus::Paused => "stoppedDL",
        TorrentStatus::Error => "error",
        TorrentStatus::Moving => "moving",
        TorrentStatus::MissingFiles => "missingFiles",
    }
}

/// Whether `t` passes `torrents/info`'s `filter` (an unknown filter keeps
/// everything, as qBittorrent's does).
pub(crate) fn filter_keeps(filter: &str, t: &TorrentView) -> bool {
    let s = state(t);
    let stopped = matches!(s, "stoppedUP" | "stoppedDL");
    let active = t.download_rate > 0 || t.upload_rate > 0;
    match filter {
        "downloading" => !complete(t) && s != "error",
        "seeding" => complete(t) && !stopped && s != "error",
        "completed" => complete(t),
        "stopped" | "paused" => stopped,
        "running" | "resumed" => !stopped,
        "active" => active,
        "inactive" => !active,
        "stalled" => matches!(s, "stalledUP" | "stalledDL"),
        "stalled_uploading" => s == "stalledUP",
        "stalled_downloading" => s == "stalledDL",
        "checking" => matches!(s, "checkingUP" | "checkingDL"),
        "moving" => s == "moving",
        // qBittorrent's `isErrored`: an error or missing files.
        "errored" => matches!(s, "error" | "missingFiles"),
        _ => true,
    }
}

/// `(seeds, leechers)` among its connected peers.
pub(crate) fn peer_split(d: &TorrentDetails) -> (usize, usize) {
    let seeds = d.peers.iter().filter(|p| p.progress >= 1.0).count();
    (seeds, d.peers.len() - seeds)
}

/// `(seeds, leechers)` in the whole swarm (qBittorrent's `num_complete`,
/// `num_incomplete`): the largest counts any tracker gave in its last
/// answer (BEP 3 `complete`/`incomplete`, as qBittorrent takes the
/// largest over trackers); where no tracker gave one, the connected
/// peers' count.
pub(crate) fn swarm_split(d: &TorrentDetails) -> (usize, usize) {
    let connected = peer_split(d);
    let largest = |count: fn(&TrackerView) -> Option<u32>| {
        d.trackers
            .iter()
            .filter_map(count)
            .max()
            .map(|n| n as usize)
    };
    (
        largest(|t| t.seeders).unwrap_or(connected.0),
        largest(|t| t.leechers).unwrap_or(connected.1),
    )
}

/// The tracker it last heard from (qBittorrent's `tracker`), or "".
pub(crate) fn current_tracker(d: &TorrentDetails) -> String {
    d.trackers
        .iter()
        .find(|t| t.error.is_none() && t.last_announce_ago.is_some())
        .map(|t| t.url.clone())
        .unwrap_or_default()
}

/// Bytes still wanted.
pub(crate) fn amount_left(t: &TorrentView) -> u64 {
    if t.state == TorrentStatus::Metadata {
        return t.wanted;
    }
    (t.wanted as f64 * (1.0 - t.progress)).round().max(0.0) as u64
}

/// What `torrents/info` shows of a torrent besides its view: its peers
/// and trackers (`details`), share limits and seconds spent seeding.
pub(crate) struct Extra<'a> {
    pub(crate) details: Option<&'a TorrentDetails>,
    pub(crate) share: super::shares::Shown,
    pub(crate) seeding_time: u64,
}

/// A torrent as `torrents/info` lists it.
pub(crate) fn torrent_json(t: &TorrentView, extra: &Extra<'_>, now: u64) -> Map<String, Value> {
    let (details, share) = (extra.details, extra.share);
    let (seeds, leechs) = details.map(peer_split).unwrap_or((0, 0));
    let (swarm_seeds, swarm_leechs) = details.map(swarm_split).unwrap_or((0, 0));
    let tracker = details.map(current_tracker).unwrap_or_default();
    let trackers_count = details.map_or(0, |d| d.trackers.len());
    let left = amount_left(t);
    let save_path = t.save_path.display().to_string();
    let content_path = t.content_path.display().to_string();
    let last_activity = if t.download_rate > 0 || t.upload_rate > 0 {
        now
    } else {
        t.completed_at.unwrap_or(t.added_at)
    };
    let limit = |v: u64| if v == 0 { -1 } else { v as i64 };
    let value = json!({
        "hash": t.info_hash.to_string(),
        "infohash_v1": t.info_hash.to_string(),
        "infohash_v2": "",
        "name": t.name,
        "magnet_uri": details.map(|d| d.magnet.clone()).unwrap_or_default(),
        "size": t.wanted,
        "total_size": t.size,
        "progress": t.progress,
        "dlspeed": t.download_rate,
        "upspeed": t.upload_rate,
        "priority": t.queue_position + 1,
        "num_seeds": seeds,
        "num_complete": swarm_seeds,
        "num_leechs": leechs,
        "num_incomplete": swarm_leechs,
        "state": state(t),
        "eta": t.eta.unwrap_or(MAX_ETA).min(MAX_ETA),
        "seq_dl": t.sequential,
        "f_l_piece_prio": t.first_last_piece,
        "category": t.category.clone().unwrap_or_default(),
        "tags": t.tags.join(", "),
        "super_seeding": false,
        "force_start": t.force_start,
    });
    let more = json!({
        "save_path": save_path,
        "download_path": "",
        "content_path": content_path,
        // No top folder (`NoSubfolder`): qBittorrent's root path is "".
        "root_path": if t.content_path == t.save_path { "" } else { content_path.as_str() },
        "added_on": t.added_at,
        "completion_on": t.completed_at.map_or(-1, |c| c as i64),
        "tracker": tracker,
        "trackers_count": trackers_count,
        "dl_limit": limit(t.download_limit),
        "up_limit": limit(t.upload_limit),
        "downloaded": t.downloaded,
        "uploaded": t.uploaded,
        "downloaded_session": t.downloaded,
        "uploaded_session": t.uploaded,
        "amount_left": left,
        "completed": t.wanted.saturating_sub(left),
        "ratio": t.ratio,
        "ratio_limit": share.ratio,
        "max_ratio": share.ratio,
        "seeding_time": extra.seeding_time,
        "seeding_time_limit": share.seeding_minutes,
        "max_seeding_time": share.seeding_minutes,
        "inactive_seeding_time_limit": share.inactive_minutes,
        "max_inactive_seeding_time": share.inactive_minutes,
        "last_activity": last_activity,
        "time_active": now.saturating_sub(t.added_at),
        "auto_tmm": false,
        "availability": if seeds > 0 { 1.0 } else { t.progress },
        "popularity": 0.0,
        "private": false,
        "has_metadata": t.state != TorrentStatus::Metadata,
        "reannounce": 0,
        "comment": "",
        "error": t.error.clone().unwrap_or_default(),
    });
    let mut map = Map::new();
    for part in [value, more] {
        if let Value::Object(m) = part {
            map.extend(m);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::InfoHash;
    use bittide_driver::session::views::PeerView;

    fn view(state: TorrentStatus, progress: f64, down: u64, up: u64) -> TorrentView {
        TorrentView {
            info_hash: InfoHash([7; 20]),
            name: "n".into(),
            state,
            progress,
            size: 100,
            wanted: 100,
            downloaded: 0,
            uploaded: 0,
            download_rate: down,
            upload_rate: up,
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
    fn states_and_filters_follow_qbittorrent() {
        use TorrentStatus::*;
        let cases = [
            (view(Metadata, 0.0, 0, 0), "metaDL", "downloading"),
            (view(Checking, 0.5, 0, 0), "checkingDL", "checking"),
            (view(Checking, 1.0, 0, 0), "checkingUP", "completed"),
            (view(Queued, 0.2, 0, 0), "queuedDL", "downloading"),
            (view(Queued, 1.0, 0, 0), "queuedUP", "seeding"),
            (view(Downloading, 0.2, 5, 0), "downloading", "active"),
            (
                view(Downloading, 0.2, 0, 0),
                "stalledDL",
                "stalled_downloading",
            ),
            (view(Seeding, 1.0, 0, 9), "uploading", "seeding"),
            (view(Seeding, 1.0, 0, 0), "stalledUP", "stalled_uploading"),
            (view(Paused, 0.3, 0, 0), "stoppedDL", "stopped"),
            (view(Paused, 1.0, 0, 0), "stoppedUP", "paused"),
            (view(Error, 0.3, 0, 0), "error", "errored"),
            (view(Moving, 1.0, 0, 0), "moving", "moving"),
            (view(MissingFiles, 0.0, 0, 0), "missingFiles", "errored"),
        ];
        for (t, want, filter) in &cases {
            assert_eq!(state(t), *want);
            assert!(filter_keeps(filter, t), "{want} not in {filter}");
            assert!(filter_keeps("all", t) && filter_keeps("nonsense", t));
        }
        let forced = |state, progress| TorrentView {
            force_start: true,
            ..view(state, progress, 0, 0)
        };
        assert_eq!(state(&forced(Metadata, 0.0)), "forcedMetaDL");
        assert_eq!(state(&forced(Downloading, 0.5)), "forcedDL");
        assert_eq!(state(&forced(Seeding, 1.0)), "forcedUP");
        assert_eq!(state(&forced(Paused, 0.5)), "stoppedDL");
        assert!(filter_keeps("downloading", &forced(Downloading, 0.5)));
        assert!(filter_keeps("seeding", &forced(Seeding, 1.0)));
        assert!(!filter_keeps("stalled", &forced(Seeding, 1.0)));
        let stopped = &cases[9].0;
        assert!(!filter_keeps("running", stopped) && !filter_keeps("seeding", stopped));
        assert!(!filter_keeps("downloading", &cases[4].0));
        assert!(!filter_keeps("active", &cases[8].0) && filter_keeps("inactive", &cases[8].0));
    }

    #[test]
    fn info_fields_for_an_unfinished_torrent() {
        let mut t = view(TorrentStatus::Downloading, 0.25, 10, 0);
        t.eta = Some(20_000_000);
        t.tags = vec!["a".into(), "b".into()];
        let extra = Extra {
            details: None,
            share: super::super::shares::GLOBAL,
            seeding_time: 0,
        };
        let row = torrent_json(&t, &extra, 1000);
        assert_eq!(row["eta"], MAX_ETA, "capped as qBittorrent caps it");
        assert_eq!(row["amount_left"], 75);
        assert_eq!(row["completed"], 25);
        assert_eq!(row["completion_on"], -1);
        assert_eq!(row["tags"], "a, b");
        assert_eq!(row["category"], "");
        assert_eq!(row["content_path"], "/d/n");
        assert_eq!(row["save_path"], "/d");
        assert_eq!(row["dl_limit"], -1);
        assert_eq!(row["last_activity"], 1000);
    }

    #[test]
    fn swarm_counts_come_from_the_trackers_else_the_connected_peers() {
        let peer = |progress: f64| PeerView {
            addr: "127.0.0.1:1".parse().unwrap(),
            client: None,
            download_rate: 0,
            upload_rate: 0,
            progress,
            flags: String::new(),
        };
        let tracker = |seeders: Option<u32>, leechers: Option<u32>| TrackerView {
            url: "http://t/announce".into(),
            tier: 0,
            peers: 0,
            seeders,
            leechers,
            last_announce_ago: Some(1),
            error: None,
            next_announce_in: None,
        };
        let mut d = TorrentDetails {
            torrent: view(TorrentStatus::Downloading, 0.5, 0, 0),
            files: Vec::new(),
            peers: vec![peer(1.0), peer(0.2), peer(0.0)],
            trackers: vec![tracker(None, None)],
            web_seeds: Vec::new(),
            piece_count: 0,
            piece_length: 0,
            pieces: Vec::new(),
            pieces_in_progress: Vec::new(),
            magnet: String::new(),
        };
        assert_eq!(peer_split(&d), (1, 2));
        assert_eq!(swarm_split(&d), (1, 2), "no tracker counted: connected");
        d.trackers.push(tracker(Some(40), Some(7)));
        d.trackers.push(tracker(Some(55), None));
        assert_eq!(swarm_split(&d), (55, 7), "the largest over trackers");
        assert_eq!(peer_split(&d), (1, 2), "connected counts stay");
        let extra = Extra {
            details: Some(&d),
            share: super::super::shares::GLOBAL,
            seeding_time: 0,
        };
        let row = torrent_json(&d.torrent, &extra, 0);
        let counts =
            ["num_seeds", "num_leechs", "num_complete", "num_incomplete"].map(|k| row[k].clone());
        assert_eq!(counts, [1, 2, 55, 7].map(Value::from));
    }
}
