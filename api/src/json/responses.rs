//! What the API answers: the session's views as JSON. The views stay
//! free of serde; these types decide what goes on the wire, so a change
//! here is a change to `docs/api.md`.

use base64::Engine as _;
use bittide_core::picker::Priority;
use bittide_driver::session::views::{
    FileView, PeerView, SessionEvent, SessionSettings, SessionStats, TorrentDetails, TorrentView,
    TrackerView, WebSeedView,
};
use serde::Serialize;

/// One torrent in `GET /api/v1/torrents`.
#[derive(Serialize)]
pub(crate) struct TorrentJson {
    info_hash: String,
    name: String,
    state: &'static str,
    progress: f64,
    size: u64,
    wanted: u64,
    downloaded: u64,
    uploaded: u64,
    download_rate: u64,
    upload_rate: u64,
    peers: usize,
    eta: Option<u64>,
    save_path: String,
    error: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    queue_position: usize,
    added_at: u64,
    completed_at: Option<u64>,
    ratio: f64,
    sequential: bool,
    first_last_piece: bool,
    upload_limit: u64,
    download_limit: u64,
}

impl From<&TorrentView> for TorrentJson {
    fn from(t: &TorrentView) -> TorrentJson {
        TorrentJson {
            info_hash: t.info_hash.to_string(),
            name: t.name.clone(),
            state: t.state.as_str(),
            progress: finite(t.progress),
            size: t.size,
            wanted: t.wanted,
            downloaded: t.downloaded,
            uploaded: t.uploaded,
            download_rate: t.download_rate,
            upload_rate: t.upload_rate,
            peers: t.peers,
            eta: t.eta,
            save_path: t.save_path.to_string_lossy().into_owned(),
            error: t.error.clone(),
            category: t.category.clone(),
            tags: t.tags.clone(),
            queue_position: t.queue_position,
            added_at: t.added_at,
            completed_at: t.completed_at,
            ratio: finite(t.ratio),
            sequential: t.sequential,
            first_last_piece: t.first_last_piece,
            upload_limit: t.upload_limit,
            download_limit: t.download_limit,
        }
    }
}

/// `GET /api/v1/torrents/{hash}`: the list's fields plus the rest.
#[derive(Serialize)]
pub(crate) struct DetailsJson {
    #[serde(flatten)]
    torrent: TorrentJson,
    files: Vec<FileJson>,
    peer_list: Vec<PeerJson>,
    trackers: Vec<TrackerJson>,
    web_seeds: Vec<WebSeedJson>,
    piece_count: u32,
    piece_length: u32,
    /// BEP 3 bitfield (high bit first), base64.
    pieces: String,
    magnet: String,
}

impl From<&TorrentDetails> for DetailsJson {
    fn from(d: &TorrentDetails) -> DetailsJson {
        DetailsJson {
            torrent: TorrentJson::from(&d.torrent),
            files: d.files.iter().map(FileJson::from).collect(),
            peer_list: d.peers.iter().map(PeerJson::from).collect(),
            trackers: d.trackers.iter().map(TrackerJson::from).collect(),
            web_seeds: d.web_seeds.iter().map(WebSeedJson::from).collect(),
            piece_count: d.piece_count,
            piece_length: d.piece_length,
            pieces: base64::engine::general_purpose::STANDARD.encode(&d.pieces),
            magnet: d.magnet.clone(),
        }
    }
}

#[derive(Serialize)]
struct FileJson {
    index: usize,
    path: String,
    size: u64,
    progress: f64,
    priority: &'static str,
}

impl From<&FileView> for FileJson {
    fn from(f: &FileView) -> FileJson {
        FileJson {
            index: f.index,
            path: f.path.clone(),
            size: f.size,
            progress: finite(f.progress),
            priority: priority_name(f.priority),
        }
    }
}

#[derive(Serialize)]
struct PeerJson {
    addr: String,
    client: Option<String>,
    download_rate: u64,
    upload_rate: u64,
    progress: f64,
    flags: String,
}

impl From<&PeerView> for PeerJson {
    fn from(p: &PeerView) -> PeerJson {
        PeerJson {
            addr: p.addr.to_string(),
            client: p.client.clone(),
            download_rate: p.download_rate,
            upload_rate: p.upload_rate,
            progress: finite(p.progress),
            flags: p.flags.clone(),
        }
    }
}

#[derive(Serialize)]
struct TrackerJson {
    url: String,
    tier: usize,
    peers: usize,
    seeders: Option<u32>,
    leechers: Option<u32>,
    last_announce_ago: Option<u64>,
    error: Option<String>,
    next_announce_in: Option<u64>,
}

impl From<&TrackerView> for TrackerJson {
    fn from(t: &TrackerView) -> TrackerJson {
        TrackerJson {
            url: t.url.clone(),
            tier: t.tier,
            peers: t.peers,
            seeders: t.seeders,
            leechers: t.leechers,
            last_announce_ago: t.last_announce_ago,
            error: t.error.clone(),
            next_announce_in: t.next_announce_in,
        }
    }
}

#[derive(Serialize)]
struct WebSeedJson {
    url: String,
    state: &'static str,
    downloaded: u64,
    error: Option<String>,
}

impl From<&WebSeedView> for WebSeedJson {
    fn from(w: &WebSeedView) -> WebSeedJson {
        WebSeedJson {
            url: w.url.clone(),
            state: w.state,
            downloaded: w.downloaded,
            error: w.error.clone(),
        }
    }
}

/// `GET /api/v1/stats`.
#[derive(Serialize)]
pub(crate) struct StatsJson {
    download_rate: u64,
    upload_rate: u64,
    downloaded: u64,
    uploaded: u64,
    torrents: usize,
    downloading: usize,
    seeding: usize,
    paused: usize,
    queued: usize,
    connections: usize,
    dht_nodes: Option<usize>,
    disk_read: u64,
    disk_written: u64,
    uptime: u64,
    listen: String,
}

impl From<&SessionStats> for StatsJson {
    fn from(s: &SessionStats) -> StatsJson {
        StatsJson {
            download_rate: s.download_rate,
            upload_rate: s.upload_rate,
            downloaded: s.downloaded,
            uploaded: s.uploaded,
            torrents: s.torrents,
            downloading: s.downloading,
            seeding: s.seeding,
            paused: s.paused,
            queued: s.queued,
            connections: s.connections,
            dht_nodes: s.dht_nodes,
            disk_read: s.disk_read,
            disk_written: s.disk_written,
            uptime: s.uptime,
            listen: s.listen.to_string(),
        }
    }
}

/// `GET /api/v1/settings` (and the answer to `PATCH`).
#[derive(Serialize)]
pub(crate) struct SettingsJson {
    upload_rate: u64,
    download_rate: u64,
    max_connections: usize,
    active_downloads: Option<usize>,
    active_seeds: Option<usize>,
    seed_ratio: Option<f64>,
    seed_time: Option<u64>,
    seed_goal_remove: bool,
    download_dir: String,
}

impl From<&SessionSettings> for SettingsJson {
    fn from(s: &SessionSettings) -> SettingsJson {
        SettingsJson {
            upload_rate: s.upload_rate,
            download_rate: s.download_rate,
            max_connections: s.max_connections,
            active_downloads: s.active_downloads,
            active_seeds: s.active_seeds,
            seed_ratio: s.seed_ratio.map(finite),
            seed_time: s.seed_time,
            seed_goal_remove: s.seed_goal_remove,
            download_dir: s.download_dir.to_string_lossy().into_owned(),
        }
    }
}

/// One server-sent event's data: `{"type": "...", ...}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum EventJson {
    Added {
        info_hash: String,
        name: String,
    },
    Removed {
        info_hash: String,
    },
    StateChanged {
        info_hash: String,
        state: &'static str,
    },
    MetadataReceived {
        info_hash: String,
        name: String,
    },
    Finished {
        info_hash: String,
    },
    Error {
        info_hash: String,
        message: String,
    },
    Stats {
        download_rate: u64,
        upload_rate: u64,
        /// The torrents whose list row changed since the last beat.
        torrents: Vec<TorrentJson>,
    },
}

impl From<&SessionEvent> for EventJson {
    fn from(e: &SessionEvent) -> EventJson {
        match e {
            SessionEvent::Added { info_hash, name } => EventJson::Added {
                info_hash: info_hash.to_string(),
                name: name.clone(),
            },
            SessionEvent::Removed { info_hash } => EventJson::Removed {
                info_hash: info_hash.to_string(),
            },
            SessionEvent::StateChanged { info_hash, state } => EventJson::StateChanged {
                info_hash: info_hash.to_string(),
                state: state.as_str(),
            },
            SessionEvent::MetadataReceived { info_hash, name } => EventJson::MetadataReceived {
                info_hash: info_hash.to_string(),
                name: name.clone(),
            },
            SessionEvent::Finished { info_hash } => EventJson::Finished {
                info_hash: info_hash.to_string(),
            },
            SessionEvent::Error { info_hash, message } => EventJson::Error {
                info_hash: info_hash.to_string(),
                message: message.clone(),
            },
            SessionEvent::Stats {
                download_rate,
                upload_rate,
                torrents,
            } => EventJson::Stats {
                download_rate: *download_rate,
                upload_rate: *upload_rate,
                torrents: torrents.iter().map(TorrentJson::from).collect(),
            },
        }
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Skip => "skip",
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
    }
}

/// JSON has no NaN or infinity: a ratio of nothing is 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_type() {
        let hash = bittide_core::InfoHash([0xab; 20]);
        let json = serde_json::to_value(EventJson::from(&SessionEvent::StateChanged {
            info_hash: hash,
            state: bittide_driver::session::views::TorrentStatus::Seeding,
        }))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "state_changed", "info_hash": "ab".repeat(20), "state": "seeding"})
        );
        let stats = serde_json::to_value(EventJson::from(&SessionEvent::Stats {
            download_rate: 1,
            upload_rate: 2,
            torrents: Vec::new(),
        }))
        .unwrap();
        assert_eq!(stats["type"], "stats");
        assert_eq!(stats["torrents"], serde_json::json!([]));
    }

    #[test]
    fn ratios_stay_valid_json() {
        assert_eq!(finite(f64::NAN), 0.0);
        assert_eq!(finite(f64::INFINITY), 0.0);
        assert_eq!(finite(0.5), 0.5);
    }
}
