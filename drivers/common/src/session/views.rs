//! What a session answers: plain values, one consistent snapshot each,
//! for the HTTP API, the remote CLI and the web UI to render. Nothing here
//! refers back into the loop.

use std::net::SocketAddr;
use std::path::PathBuf;

use bittide_core::picker::Priority;
use bittide_core::InfoHash;

use crate::disk::ContentLayout;

/// Where a torrent is in its life, as users see it (the API's `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TorrentStatus {
    /// A magnet link: its metadata is being fetched from peers (BEP 9).
    Metadata,
    /// Verifying data already on disk.
    Checking,
    /// Waiting for a slot (beyond the active-downloads or active-seeds
    /// limit), in queue order.
    Queued,
    /// Downloading.
    Downloading,
    /// Every wanted piece is on disk; uploading.
    Seeding,
    /// Paused by the user (or by its seeding goal).
    Paused,
    /// Its files are being moved to another folder or name (it is paused
    /// meanwhile and resumes after, unless it was paused before).
    Moving,
    /// Files that held verified pieces were gone when the session
    /// started: it waits (paused) for them to come back rather than
    /// download them again; resuming once they are back, or a recheck,
    /// ends the wait.
    MissingFiles,
    /// Stopped by an error it cannot get past by itself (a disk that
    /// refused a write, storage that cannot be created): see `error`.
    Error,
}

impl TorrentStatus {
    /// The lower-case name the API and CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            TorrentStatus::Metadata => "metadata",
            TorrentStatus::Checking => "checking",
            TorrentStatus::Queued => "queued",
            TorrentStatus::Downloading => "downloading",
            TorrentStatus::Seeding => "seeding",
            TorrentStatus::Paused => "paused",
            TorrentStatus::Moving => "moving",
            TorrentStatus::MissingFiles => "missing_files",
            TorrentStatus::Error => "error",
        }
    }
}

impl std::fmt::Display for TorrentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One torrent in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentView {
    /// Its v1 info-hash (the API's key).
    pub info_hash: InfoHash,
    /// Its name (the magnet's `dn`, or the hash, until the metadata is in).
    pub name: String,
    /// See [`TorrentStatus`].
    pub state: TorrentStatus,
    /// Wanted bytes on disk and verified / wanted bytes, 0–1 (0 while the
    /// metadata is fetched).
    pub progress: f64,
    /// Total size of the torrent's files in bytes (0 until the metadata is
    /// in).
    pub size: u64,
    /// Bytes the user wants (files not skipped).
    pub wanted: u64,
    /// Payload bytes downloaded (all sessions, from resume data on).
    pub downloaded: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Download rate in bytes/s, over the last few seconds.
    pub download_rate: u64,
    /// Upload rate in bytes/s.
    pub upload_rate: u64,
    /// Connected peers.
    pub peers: usize,
    /// Seconds to completion at the current rate (`None`: complete, or no
    /// rate to estimate from).
    pub eta: Option<u64>,
    /// The folder that holds its content.
    pub save_path: PathBuf,
    /// What stopped it, when `state` is `Error`.
    pub error: Option<String>,
    /// Free text the user groups torrents by.
    pub category: Option<String>,
    /// User labels.
    pub tags: Vec<String>,
    /// Position in the queue (0 runs first).
    pub queue_position: usize,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// When it completed, seconds since the Unix epoch.
    pub completed_at: Option<u64>,
    /// uploaded / wanted size.
    pub ratio: f64,
    /// Download pieces in order.
    pub sequential: bool,
    /// First and last piece of each file first (previews).
    pub first_last_piece: bool,
    /// Force-started: runs outside the queue's active limits.
    pub force_start: bool,
    /// Its single file, or the folder that holds its files (the save
    /// path itself when its layout has no top folder).
    pub content_path: PathBuf,
    /// Per-torrent upload limit, bytes/s (0: none).
    pub upload_limit: u64,
    /// Per-torrent download limit, bytes/s (0: none).
    pub download_limit: u64,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq)]
pub struct FileView {
    /// Its index in the torrent (what priorities name).
    pub index: usize,
    /// Its path under the save path, as stored on disk.
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// Verified fraction, 0–1.
    pub progress: f64,
    /// Its priority.
    pub priority: Priority,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerView {
    /// Its address.
    pub addr: SocketAddr,
    /// Its client, from its extension handshake (BEP 10 `v`), if it said.
    pub client: Option<String>,
    /// Bytes/s it sends us.
    pub download_rate: u64,
    /// Bytes/s we send it.
    pub upload_rate: u64,
    /// Fraction of the torrent it has, 0–1.
    pub progress: f64,
    /// Short flags: `I`/`O` incoming/outgoing, `d`/`D` we are
    /// interested and it chokes/unchokes us, `u`/`U` it is interested and
    /// we choke/unchoke it, `P` over uTP (qBittorrent's letters).
    pub flags: String,
}

/// One tracker of a torrent.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerView {
    /// Announce URL.
    pub url: String,
    /// Tier (BEP 12), from 0.
    pub tier: usize,
    /// Peers in its last answer.
    pub peers: usize,
    /// Seeders it last counted.
    pub seeders: Option<u32>,
    /// Leechers it last counted.
    pub leechers: Option<u32>,
    /// Seconds since it last answered or failed.
    pub last_announce_ago: Option<u64>,
    /// Why its last announce failed.
    pub error: Option<String>,
    /// Seconds to its next announce, if it is the tracker next in line
    /// (BEP 12 asks one tracker at a time).
    pub next_announce_in: Option<u64>,
}

/// One web seed of a torrent (BEP 19).
#[derive(Clone, Debug, PartialEq)]
pub struct WebSeedView {
    /// Its URL.
    pub url: String,
    /// `idle`, `downloading`, `waiting` (backing off after a failure) or
    /// `dropped` (given up).
    pub state: &'static str,
    /// Payload bytes it delivered first.
    pub downloaded: u64,
    /// Its last error.
    pub error: Option<String>,
}

/// One torrent in full.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentDetails {
    /// What the list shows.
    pub torrent: TorrentView,
    /// Its files (empty until the metadata is in).
    pub files: Vec<FileView>,
    /// Its connected peers.
    pub peers: Vec<PeerView>,
    /// Its trackers in tier order.
    pub trackers: Vec<TrackerView>,
    /// Its web seeds (BEP 19).
    pub web_seeds: Vec<WebSeedView>,
    /// Number of pieces.
    pub piece_count: u32,
    /// Piece length in bytes.
    pub piece_length: u32,
    /// Verified pieces as a BEP 3 bitfield (high bit first), for a pieces
    /// map.
    pub pieces: Vec<u8>,
    /// Pieces being downloaded (asked for, partly in, or being verified
    /// or written), sorted.
    pub pieces_in_progress: Vec<u32>,
    /// Its magnet link.
    pub magnet: String,
}

/// The whole session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionStats {
    /// Sum of the torrents' download rates, bytes/s.
    pub download_rate: u64,
    /// Sum of the torrents' upload rates, bytes/s.
    pub upload_rate: u64,
    /// Payload bytes downloaded since the session started.
    pub downloaded: u64,
    /// Payload bytes uploaded since the session started.
    pub uploaded: u64,
    /// Torrents, by state.
    pub torrents: usize,
    /// Torrents downloading.
    pub downloading: usize,
    /// Torrents seeding.
    pub seeding: usize,
    /// Torrents paused.
    pub paused: usize,
    /// Torrents queued.
    pub queued: usize,
    /// Peer connections.
    pub connections: usize,
    /// Nodes in the DHT routing table (`None`: no DHT).
    pub dht_nodes: Option<usize>,
    /// Bytes read from data files since the session started (a restart
    /// that trusts its resume data reads none).
    pub disk_read: u64,
    /// Bytes written to data files since the session started.
    pub disk_written: u64,
    /// Seconds since the session started.
    pub uptime: u64,
    /// The TCP address peers reach us on.
    pub listen: SocketAddr,
}

/// Settings that apply to the whole session and can change while it runs.
/// Rates in bytes/s, 0 for none; `None` for no limit.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SessionSettings {
    /// Upload limit over all torrents.
    pub upload_rate: u64,
    /// Download limit over all torrents.
    pub download_rate: u64,
    /// Peer connections over all torrents.
    pub max_connections: usize,
    /// Torrents downloading at once; the others are queued.
    pub active_downloads: Option<usize>,
    /// Torrents seeding at once.
    pub active_seeds: Option<usize>,
    /// Pause a seeding torrent once uploaded / size reaches this.
    pub seed_ratio: Option<f64>,
    /// Pause a seeding torrent after seeding this many seconds.
    pub seed_time: Option<u64>,
    /// Pause a seeding torrent after this many seconds without uploading.
    pub seed_inactive_time: Option<u64>,
    /// How new torrents' files are laid out unless told otherwise.
    pub content_layout: ContentLayout,
    /// Remove (keeping its data) instead of pausing when a goal is reached.
    pub seed_goal_remove: bool,
    /// Where torrents go unless told otherwise.
    pub download_dir: PathBuf,
}

/// A change to [`SessionSettings`]: only the fields given change.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SettingsPatch {
    /// See [`SessionSettings::upload_rate`].
    pub upload_rate: Option<u64>,
    /// See [`SessionSettings::download_rate`].
    pub download_rate: Option<u64>,
    /// See [`SessionSettings::max_connections`].
    pub max_connections: Option<usize>,
    /// `Some(None)` removes the limit.
    pub active_downloads: Option<Option<usize>>,
    /// `Some(None)` removes the limit.
    pub active_seeds: Option<Option<usize>>,
    /// `Some(None)` removes the goal.
    pub seed_ratio: Option<Option<f64>>,
    /// `Some(None)` removes the goal.
    pub seed_time: Option<Option<u64>>,
    /// `Some(None)` removes the goal.
    pub seed_inactive_time: Option<Option<u64>>,
    /// See [`SessionSettings::content_layout`].
    pub content_layout: Option<ContentLayout>,
    /// See [`SessionSettings::seed_goal_remove`].
    pub seed_goal_remove: Option<bool>,
    /// See [`SessionSettings::download_dir`].
    pub download_dir: Option<PathBuf>,
}

/// What happened, for the event stream (server-sent events).
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// A torrent was added (or loaded at start).
    Added {
        /// Which.
        info_hash: InfoHash,
        /// Its name.
        name: String,
    },
    /// A torrent was removed.
    Removed {
        /// Which.
        info_hash: InfoHash,
    },
    /// A torrent's state changed.
    StateChanged {
        /// Which.
        info_hash: InfoHash,
        /// Its new state.
        state: TorrentStatus,
    },
    /// A magnet's metadata arrived; the torrent has files now.
    MetadataReceived {
        /// Which.
        info_hash: InfoHash,
        /// Its name.
        name: String,
    },
    /// Every wanted piece is on disk.
    Finished {
        /// Which.
        info_hash: InfoHash,
    },
    /// Something went wrong with a torrent (disk, tracker).
    Error {
        /// Which.
        info_hash: InfoHash,
        /// What.
        message: String,
    },
    /// A beat (about once a second) with the session's rates, for live
    /// graphs.
    Stats {
        /// Bytes/s down.
        download_rate: u64,
        /// Bytes/s up.
        upload_rate: u64,
        /// The torrents whose list row changed since the last beat, as
        /// [`SessionHandle::list`](super::SessionHandle::list) would show
        /// them now.
        torrents: Vec<TorrentView>,
    },
}

/// Where a torrent to add comes from.
#[derive(Clone, Debug)]
pub enum AddSource {
    /// The bytes of a .torrent file.
    TorrentFile(Vec<u8>),
    /// A magnet link.
    Magnet(String),
    /// An http(s) URL of a .torrent file (fetched by the session).
    Url(String),
}

/// How to add a torrent.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// The folder for its content (default: the session's download
    /// folder).
    pub save_path: Option<PathBuf>,
    /// Add it paused.
    pub paused: bool,
    /// Download only these files (indices as listed); for a magnet,
    /// applied when the metadata arrives.
    pub only: Option<Vec<usize>>,
    /// Its category.
    pub category: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Download pieces in order.
    pub sequential: bool,
    /// First and last piece of each file first.
    pub first_last_piece: bool,
    /// Peers to connect to directly.
    pub peers: Vec<SocketAddr>,
    /// How its files are laid out (default: the session's setting).
    pub content_layout: Option<ContentLayout>,
}

/// What a torrent's files should be set to: (file index, priority).
pub type PriorityChanges = Vec<(usize, Priority)>;

/// Why a session request failed. `Display` is the message the API sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// No torrent with this info-hash (404).
    NotFound(InfoHash),
    /// The torrent is already in (409).
    Duplicate(InfoHash),
    /// The .torrent or magnet link is not valid (400), with why.
    BadTorrent(String),
    /// The request asks for something impossible (400): a file index out
    /// of range, a name that is not a valid file name, …
    BadRequest(String),
    /// The download of a .torrent URL failed (502).
    Fetch(String),
    /// A file operation failed (500): which path and why.
    Io(String),
    /// The session is shutting down (503).
    ShuttingDown,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::NotFound(h) => write!(f, "no torrent {h}"),
            RequestError::Duplicate(h) => write!(f, "torrent {h} is already in the session"),
            RequestError::BadTorrent(why) => write!(f, "invalid torrent: {why}"),
            RequestError::BadRequest(why) => f.write_str(why),
            RequestError::Fetch(why) => write!(f, "could not fetch the torrent: {why}"),
            RequestError::Io(why) => f.write_str(why),
            RequestError::ShuttingDown => f.write_str("the session is shutting down"),
        }
    }
}

impl std::error::Error for RequestError {}
