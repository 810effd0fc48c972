//! What an application tells a running loop ([`Command`]) and asks it
//! ([`Query`]), through a [`Handle`](crate::driver::Handle).
//!
//! Both travel on the loop's control channel: unbounded, and drained before
//! any socket data on every turn, so a command is never dropped or held
//! behind a flood of peer bytes. Each command becomes one engine command
//! with `now` from the runtime's clock. A command that has an answer (the
//! id of an added torrent) and every query carry a [`Reply`]: a one-shot
//! channel the loop answers on; its [`Answer`] yields `None` if the loop
//! ended first.
//!
//! Queries read the engine's public accessors in the loop, between inputs,
//! so an answer is a consistent snapshot of one instant.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use bittide_core::dht::crawler::CrawlConfig;
use bittide_core::engine::{Engine, FetchConfig, SeedingGoal, SessionLimits};
use bittide_core::metainfo::{FileLayout, Magnet};
use bittide_core::picker::Priority;
use bittide_core::torrent::{StartMode, TorrentInfo, TorrentState, TrackerStatus};
use bittide_core::{InfoHash, PieceIndex, TorrentId};

use crate::disk::Disk;

/// The loop's side of a one-shot answer.
pub struct Reply<T>(Sender<T>);

/// The asker's side of a one-shot answer.
#[derive(Debug)]
pub struct Answer<T>(Receiver<T>);

/// A one-shot channel: the loop answers on the [`Reply`], the asker awaits
/// the [`Answer`].
pub fn reply<T>() -> (Reply<T>, Answer<T>) {
    let (tx, rx) = async_channel::bounded(1);
    (Reply(tx), Answer(rx))
}

impl<T> Reply<T> {
    /// Answers (nobody may be waiting any more: that is not an error).
    pub fn send(self, answer: T) {
        let _ = self.0.try_send(answer);
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl<T> Answer<T> {
    /// The answer; `None` if the loop ended without giving one.
    pub async fn recv(self) -> Option<T> {
        self.0.recv().await.ok()
    }
}

/// A torrent to add: its files, where they are stored, what is already on
/// disk, and how to download it.
#[derive(Clone)]
pub struct AddTorrent {
    /// The torrent (from its .torrent file).
    pub info: TorrentInfo,
    /// Where its data goes.
    pub storage: Arc<dyn Disk>,
    /// What is already on disk.
    pub start: StartMode,
    /// File priorities (`None`: every file, normal priority).
    pub priorities: Option<Vec<Priority>>,
    /// Download pieces in order (streaming).
    pub sequential: bool,
    /// Peers to connect to besides what trackers and the DHT find.
    pub peers: Vec<SocketAddr>,
    /// Added paused (no connection is made until resumed).
    pub paused: bool,
}

impl AddTorrent {
    /// `info` stored in `storage`, started as `start` says, every file
    /// wanted, rarest first, no extra peers.
    pub fn new(info: TorrentInfo, storage: Arc<dyn Disk>, start: StartMode) -> AddTorrent {
        AddTorrent {
            info,
            storage,
            start,
            priorities: None,
            sequential: false,
            peers: Vec::new(),
            paused: false,
        }
    }
}

impl std::fmt::Debug for AddTorrent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddTorrent")
            .field("info_hash", &self.info.info_hash)
            .field("start", &self.start)
            .field("priorities", &self.priorities)
            .field("sequential", &self.sequential)
            .field("peers", &self.peers)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

/// Why a torrent was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The engine refused it: a torrent with the same info-hash is already
    /// in, a magnet link has no v1 info-hash, or the engine is shutting
    /// down.
    Refused,
    /// The loop has ended.
    Ended,
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddError::Refused => {
                "refused: the torrent is already in, has no v1 info-hash, or the engine is shutting down"
            }
            AddError::Ended => "the event loop has ended",
        })
    }
}

impl std::error::Error for AddError {}

/// What the application tells the loop. Commands naming a torrent the
/// engine does not know do nothing.
#[derive(Debug)]
pub enum Command {
    /// Adds a torrent; the reply is its id, or `None` if the engine refused
    /// it (already in, or shutting down).
    AddTorrent(Box<AddTorrent>, Reply<Option<TorrentId>>),
    /// Adds a magnet link (its metadata is fetched from peers, BEP 9), with
    /// extra peers; the reply is its id, or `None` if the engine refused it
    /// (no v1 info-hash, already in, or shutting down). Its `x.pe` host
    /// names are the engine's to resolve.
    AddMagnet(Box<Magnet>, Vec<SocketAddr>, Reply<Option<TorrentId>>),
    /// A magnet link's metadata is in ([`Engine::start_magnet`]): store
    /// its data here, start it as `start` says, with these file
    /// priorities, order and extra peers.
    StartMagnet {
        /// The torrent.
        torrent: TorrentId,
        /// Its files.
        storage: Arc<dyn Disk>,
        /// What is already on disk.
        start: StartMode,
        /// File priorities (`None`: every file).
        priorities: Option<Vec<Priority>>,
        /// Download in piece order.
        sequential: bool,
        /// More peers (from resume data).
        peers: Vec<SocketAddr>,
    },
    /// Its files are somewhere else now (moved or renamed): later disk
    /// jobs go to this storage.
    SetStorage(TorrentId, Arc<dyn Disk>),
    /// Stops a torrent (trackers hear `stopped`) and forgets it; its
    /// storage is flushed.
    Remove(TorrentId),
    /// Closes a torrent's connections until resumed.
    Pause(TorrentId),
    /// Undoes [`Command::Pause`].
    Resume(TorrentId),
    /// Sets the priority of each file, in torrent order.
    SetFilePriorities(TorrentId, Vec<Priority>),
    /// Downloads pieces in order (or rarest first again).
    SetSequential(TorrentId, bool),
    /// Downloads the first and last piece of each file first
    /// ([`Engine::set_first_last_priority`]).
    SetFirstLastPiece(TorrentId, bool),
    /// Pieces to download before all others, in order: the union of the
    /// torrent's open streams' windows ([`Engine::set_critical`]).
    SetCritical(TorrentId, Vec<PieceIndex>),
    /// Moves a torrent in the queue ([`Engine::set_queue_position`]).
    SetQueuePosition(TorrentId, usize),
    /// Upload and download limits in bytes/s, 0 for none
    /// ([`Engine::set_rate_limits`]).
    SetRateLimits {
        /// The torrent.
        torrent: TorrentId,
        /// Upload limit.
        upload: u64,
        /// Download limit.
        download: u64,
    },
    /// Peers to try for a torrent.
    AddPeers(TorrentId, Vec<SocketAddr>),
    /// Limits over all torrents ([`Engine::set_limits`]).
    SetLimits(SessionLimits),
    /// The seeding goal of every torrent without its own
    /// ([`Engine::set_default_seeding_goal`]).
    SetDefaultSeedingGoal(Option<SeedingGoal>),
    /// One torrent's own seeding goal, `None` for the default again
    /// ([`Engine::set_seeding_goal`]).
    SetSeedingGoal(TorrentId, Option<SeedingGoal>),
    /// Puts a torrent outside the queue's active limits, or back under
    /// them ([`Engine::set_force_start`]).
    SetForceStart(TorrentId, bool),
    /// Hashes every piece on disk again ([`Engine::recheck`]).
    Recheck(TorrentId),
    /// Announces to the trackers now ([`Engine::reannounce`]).
    Reannounce(TorrentId),
    /// Walks the DHT for info-hashes ([`Engine::crawl`]).
    Crawl(CrawlConfig),
    /// Limits of the metadata fetches ([`Engine::set_fetch_config`]).
    SetFetchConfig(FetchConfig),
    /// Fetches a torrent's metadata for an index
    /// ([`Engine::fetch_metadata`]).
    FetchMetadata(InfoHash),
    /// [`Engine::shutdown`]: stops every torrent (they announce `stopped`);
    /// the loop ends once the engine reports `Event::Stopped` and the
    /// disks are synced.
    Shutdown,
    /// Ends the loop now.
    Abort,
}

/// A question the loop answers from the engine's state. Implement it to
/// ask something of your own; [`Torrents`], [`Peers`] and [`Files`] are
/// the common ones.
pub trait Query: Send + 'static {
    /// What comes back.
    type Answer: Send + 'static;
    /// Computes the answer, in the loop.
    fn answer(self, view: &View<'_>) -> Self::Answer;
}

/// What a [`Query`] may read: the engine, and what the driver knows beside
/// it.
#[derive(Debug)]
pub struct View<'a> {
    pub(crate) engine: &'a Engine,
    /// The file layouts of the torrents added through the driver (the
    /// engine has no accessor for a torrent's layout).
    pub(crate) layouts: &'a BTreeMap<TorrentId, FileLayout>,
}

impl View<'_> {
    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.engine
    }

    /// A torrent's file layout, if known.
    pub fn layout(&self, id: TorrentId) -> Option<&FileLayout> {
        if let Some(layout) = self.layouts.get(&id) {
            return Some(layout);
        }
        // Otherwise the torrent's own, once known (a magnet's after its
        // metadata arrived).
        let t = self.engine.torrent(id)?;
        t.metadata().map(|_| &t.info().layout)
    }
}

/// One torrent at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSnapshot {
    /// Its id.
    pub id: TorrentId,
    /// Its v1 info-hash.
    pub info_hash: InfoHash,
    /// Its state (a magnet link starts in `FetchingMetadata`).
    pub state: TorrentState,
    /// Verified pieces on disk.
    pub pieces_have: u32,
    /// Pieces in the torrent (0 while a magnet link's metadata is fetched).
    pub pieces: u32,
    /// Bytes of the verified pieces on disk, when the loop knows the
    /// torrent's layout (see [`Files`]).
    pub bytes_have: Option<u64>,
    /// Wanted bytes still missing.
    pub left: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Connected (or connecting) peers.
    pub peers: usize,
    /// Block data held in memory, waiting for verification or the disk.
    pub buffered_bytes: u64,
    /// Every wanted piece is on disk.
    pub finished: bool,
}

/// Every torrent: `Vec<TorrentSnapshot>`, in id order.
#[derive(Clone, Copy, Debug)]
pub struct Torrents;

impl Query for Torrents {
    type Answer = Vec<TorrentSnapshot>;
    fn answer(self, view: &View<'_>) -> Vec<TorrentSnapshot> {
        view.engine
            .torrent_ids()
            .into_iter()
            .filter_map(|id| snapshot(view, id))
            .collect()
    }
}

fn snapshot(view: &View<'_>, id: TorrentId) -> Option<TorrentSnapshot> {
    let t = view.engine.torrent(id)?;
    let (uploaded, downloaded, left) = t.counters();
    let have = t.have();
    let bytes_have = view.layout(id).map(|layout| {
        (0..layout.piece_count())
            .map(PieceIndex)
            .filter(|&p| have.get(p))
            .map(|p| u64::from(layout.piece_size(p)))
            .sum()
    });
    Some(TorrentSnapshot {
        id,
        info_hash: t.info_hash(),
        state: t.state(),
        pieces_have: have.count(),
        pieces: have.len(),
        bytes_have,
        left,
        uploaded,
        downloaded,
        peers: t.peer_count(),
        buffered_bytes: t.buffered_bytes(),
        finished: t.is_finished(),
    })
}

/// One torrent: its [`TorrentSnapshot`], or `None` if there is no such
/// torrent.
#[derive(Clone, Copy, Debug)]
pub struct Torrent(pub TorrentId);

impl Query for Torrent {
    type Answer = Option<TorrentSnapshot>;
    fn answer(self, view: &View<'_>) -> Option<TorrentSnapshot> {
        snapshot(view, self.0)
    }
}

/// A torrent's peers: the addresses of its open sessions; `None` if there
/// is no such torrent.
#[derive(Clone, Copy, Debug)]
pub struct Peers(pub TorrentId);

impl Query for Peers {
    type Answer = Option<Vec<SocketAddr>>;
    fn answer(self, view: &View<'_>) -> Option<Vec<SocketAddr>> {
        view.engine.torrent(self.0).map(|t| t.peer_addrs())
    }
}

/// One file of a torrent at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSnapshot {
    /// Its index in the torrent.
    pub index: usize,
    /// Its bytes within the torrent's data.
    pub range: Range<u64>,
    /// A BEP 47 padding file (never written).
    pub padding: bool,
    /// The pieces it touches.
    pub pieces: Range<PieceIndex>,
    /// How many of those are verified on disk.
    pub pieces_have: u32,
}

/// A torrent's files; `None` if there is no such torrent or its files are
/// not known yet (a magnet before its metadata). File names are the
/// storage's.
#[derive(Clone, Copy, Debug)]
pub struct Files(pub TorrentId);

impl Query for Files {
    type Answer = Option<Vec<FileSnapshot>>;
    fn answer(self, view: &View<'_>) -> Option<Vec<FileSnapshot>> {
        let t = view.engine.torrent(self.0)?;
        let layout = view.layout(self.0)?;
        let have = t.have();
        Some(
            (0..layout.file_count())
                .filter_map(|index| {
                    let range = layout.file_range(index)?;
                    let pieces = layout.file_pieces(index);
                    let pieces_have = (pieces.start.0..pieces.end.0)
                        .filter(|&p| have.get(PieceIndex(p)))
                        .count() as u32;
                    Some(FileSnapshot {
                        index,
                        range,
                        padding: layout.is_padding(index),
                        pieces,
                        pieces_have,
                    })
                })
                .collect(),
        )
    }
}

/// A torrent's trackers in tier order, each with what it last said;
/// `None` if there is no such torrent.
#[derive(Clone, Copy, Debug)]
pub struct Trackers(pub TorrentId);

impl Query for Trackers {
    type Answer = Option<Vec<TrackerStatus>>;
    fn answer(self, view: &View<'_>) -> Option<Vec<TrackerStatus>> {
        view.engine.torrent(self.0).map(|t| t.trackers())
    }
}
