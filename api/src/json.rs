//! The JSON shapes of the API, in and out (field names snake_case). The
//! session's views stay free of serde; these types are the one place that
//! decides what goes on the wire, so a change here is a change to
//! `docs/api.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use bittide_core::picker::Priority;
use serde::{Deserialize, Deserializer, Serialize};

use bittide_driver::session::views::{
    FileView, PeerView, SessionEvent, SessionSettings, SessionStats, SettingsPatch, TorrentDetails,
    TorrentView, TrackerView,
};

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

/// `PATCH /api/v1/settings`: only the fields present change; `null`
/// removes a limit or goal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatchJson {
    upload_rate: Option<u64>,
    download_rate: Option<u64>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    active_downloads: Option<Option<usize>>,
    #[serde(default, deserialize_with = "present")]
    active_seeds: Option<Option<usize>>,
    #[serde(default, deserialize_with = "present")]
    seed_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    seed_time: Option<Option<u64>>,
    seed_goal_remove: Option<bool>,
    download_dir: Option<PathBuf>,
}

impl SettingsPatchJson {
    pub(crate) fn into_patch(self) -> Result<SettingsPatch, String> {
        if let Some(Some(ratio)) = self.seed_ratio {
            if !ratio.is_finite() || ratio < 0.0 {
                return Err("seed_ratio must be a number ≥ 0, or null".into());
            }
        }
        Ok(SettingsPatch {
            upload_rate: self.upload_rate,
            download_rate: self.download_rate,
            max_connections: self.max_connections,
            active_downloads: self.active_downloads,
            active_seeds: self.active_seeds,
            seed_ratio: self.seed_ratio,
            seed_time: self.seed_time,
            seed_goal_remove: self.seed_goal_remove,
            download_dir: self.download_dir,
        })
    }
}

/// A field that is present (possibly `null`) becomes `Some(..)`; an absent
/// one stays `None` through `#[serde(default)]`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
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
            } => EventJson::Stats {
                download_rate: *download_rate,
                upload_rate: *upload_rate,
            },
        }
    }
}

/// The options of an add, shared by the JSON body and the query string of
/// a raw upload. In a query string, `only`, `tags` and `peers` are
/// comma-separated.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddJson {
    pub(crate) magnet: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) torrent_base64: Option<String>,
    pub(crate) save_path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) paused: bool,
    pub(crate) only: Option<Vec<usize>>,
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) sequential: bool,
    #[serde(default)]
    pub(crate) first_last_piece: bool,
    #[serde(default)]
    pub(crate) peers: Vec<SocketAddr>,
}

/// The query string of a raw .torrent upload (`?paused=true&only=0,2`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddQuery {
    pub(crate) save_path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) paused: bool,
    pub(crate) only: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) tags: Option<String>,
    #[serde(default)]
    pub(crate) sequential: bool,
    #[serde(default)]
    pub(crate) first_last_piece: bool,
    pub(crate) peers: Option<String>,
}

impl AddQuery {
    /// The same options as a JSON add would give.
    pub(crate) fn into_json(self) -> Result<AddJson, String> {
        Ok(AddJson {
            save_path: self.save_path,
            paused: self.paused,
            only: self
                .only
                .map(|list| parse_list(&list, "only", "file indices"))
                .transpose()?,
            category: self.category,
            tags: match self.tags {
                Some(list) => parse_list(&list, "tags", "tags")?,
                None => Vec::new(),
            },
            sequential: self.sequential,
            first_last_piece: self.first_last_piece,
            peers: match self.peers {
                Some(list) => parse_list(&list, "peers", "ip:port addresses")?,
                None => Vec::new(),
            },
            ..AddJson::default()
        })
    }
}

fn parse_list<T: std::str::FromStr>(list: &str, field: &str, what: &str) -> Result<Vec<T>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("{field}: expected comma-separated {what}"))
        })
        .collect()
}

/// `GET /api/v1/torrents?state=&category=&tag=&q=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListFilter {
    state: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    q: Option<String>,
}

impl ListFilter {
    pub(crate) fn validate(&self) -> Result<(), String> {
        const STATES: [&str; 7] = [
            "metadata",
            "checking",
            "queued",
            "downloading",
            "seeding",
            "paused",
            "error",
        ];
        match &self.state {
            Some(state) if !STATES.contains(&state.as_str()) => {
                Err(format!("state: expected one of {}", STATES.join(", ")))
            }
            _ => Ok(()),
        }
    }

    /// Whether `t` passes every filter given (`q`: a case-insensitive
    /// part of the name, or the start of the info-hash).
    pub(crate) fn keeps(&self, t: &TorrentView) -> bool {
        self.state.as_deref().is_none_or(|s| s == t.state.as_str())
            && self
                .category
                .as_deref()
                .is_none_or(|c| t.category.as_deref() == Some(c))
            && self
                .tag
                .as_deref()
                .is_none_or(|tag| t.tags.iter().any(|t| t == tag))
            && self.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                t.name.to_lowercase().contains(&q) || t.info_hash.to_string().starts_with(&q)
            })
    }
}

/// `POST …/files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrioritiesJson {
    pub(crate) priorities: Vec<FilePriorityJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePriorityJson {
    pub(crate) index: usize,
    pub(crate) priority: PriorityJson,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PriorityJson {
    Skip,
    Low,
    Normal,
    High,
}

impl From<PriorityJson> for Priority {
    fn from(p: PriorityJson) -> Priority {
        match p {
            PriorityJson::Skip => Priority::Skip,
            PriorityJson::Low => Priority::Low,
            PriorityJson::Normal => Priority::Normal,
            PriorityJson::High => Priority::High,
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

/// `POST …/limits`: bytes/s, 0 for none; an absent field stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsJson {
    pub(crate) upload: Option<u64>,
    pub(crate) download: Option<u64>,
}

/// `POST …/move`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveJson {
    pub(crate) save_path: PathBuf,
}

/// `POST …/rename`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameJson {
    pub(crate) name: String,
}

/// `POST …/options`: every field optional; `category: null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsJson {
    pub(crate) sequential: Option<bool>,
    pub(crate) first_last_piece: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) category: Option<Option<String>>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) queue_position: Option<usize>,
}

/// `POST /api/v1/torrents/pause|resume`: `{"hashes": [...]}` or
/// `{"all": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkJson {
    #[serde(default)]
    pub(crate) hashes: Vec<String>,
    #[serde(default)]
    pub(crate) all: bool,
}

/// `DELETE /api/v1/torrents/{hash}?delete_data=true`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveQuery {
    #[serde(default)]
    pub(crate) delete_data: bool,
}

/// `POST /api/v1/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginJson {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// JSON has no NaN or infinity: a ratio of nothing is 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}
