//! What the engine and the driver say to each other: the outputs the
//! engine asks for ([`Output`]), the disk jobs and their answers
//! ([`DiskOp`], [`DiskResult`]) and the events for the application
//! ([`Event`]).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::dht::DhtEvent;
use crate::handles::{ConnId, TorrentId};
use crate::metainfo::{FileSlice, HashProgress, InfoHash, PieceHash, PieceIndex, RunningHash};
use crate::time::Instant;
use crate::torrent::{TorrentEvent, VerifyPiece};
use crate::wire::BlockRef;
use crate::IpFamily;

/// A TCP action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpAction {
    /// Open a connection (answer `handle_tcp_connected` or
    /// `handle_tcp_failed`).
    Connect(SocketAddr),
    /// Send bytes.
    Send(Vec<u8>),
    /// Close it (no answer needed).
    Close,
}

/// A disk job; the answer is the matching [`DiskResult`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// Read a block for a peer.
    Read {
        /// The peer's connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Where the bytes are.
        slices: Vec<FileSlice>,
    },
    /// Hash a run of adjacent pieces held in memory and, only if every
    /// one matches, write the run (one job and few writes for several
    /// small pieces; see [`run_verdicts`]).
    Verify {
        /// The run's first piece.
        first: PieceIndex,
        /// Each piece of the run in order: its hash and how many of
        /// `blocks` are its.
        pieces: Vec<VerifyPiece>,
        /// The run's blocks in order.
        blocks: Vec<Bytes>,
        /// Where the run's bytes go once verified (skip padding slices).
        slices: Vec<FileSlice>,
    },
    /// Read and hash a piece on disk (streaming: pieces may be up to
    /// 512 MiB).
    Check {
        /// The piece.
        piece: PieceIndex,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
        /// Expected hash.
        hash: PieceHash,
    },
    /// Create these zero-length files if they do not exist (no piece
    /// covers them, so no write ever would). Asked for once, when every
    /// wanted piece is on disk.
    CreateEmpty {
        /// File indices in torrent order.
        files: Vec<u32>,
    },
    /// Write a run of blocks of a piece too large to hold in memory. If
    /// it carries the piece's running hash, feed it the run's bytes and
    /// hand it back, or the verdict if the run ends the piece
    /// ([`write_hash`]); a piece whose hash was not carried through is
    /// verified with a `Check` once all its blocks are written.
    Write {
        /// The run: a piece, an offset in it and a length.
        block: BlockRef,
        /// Its bytes, block by block.
        blocks: Vec<Bytes>,
        /// Where they go (skip padding slices).
        slices: Vec<FileSlice>,
        /// The piece's hash fed up to `block.offset`.
        hasher: Option<RunningHash>,
    },
}

/// What a [`DiskOp::Verify`] checks: each piece's blocks, in order, hash
/// to its hash (one definition for every disk that carries the job out).
/// The run is written only if every verdict is true.
pub fn run_verdicts(pieces: &[VerifyPiece], blocks: &[Bytes]) -> Vec<bool> {
    let mut rest = blocks;
    pieces
        .iter()
        .map(|p| match (rest.get(..p.blocks), rest.get(p.blocks..)) {
            (Some(own), Some(after)) => {
                rest = after;
                p.hash.matches(own.iter().map(|b| &b[..]))
            }
            _ => {
                rest = &[];
                false
            }
        })
        .collect()
}

/// Feeds a [`DiskOp::Write`]'s run to the hash it carried (one definition
/// for every disk that carries the job out).
pub fn write_hash(hasher: Option<RunningHash>, blocks: &[Bytes]) -> Option<HashProgress> {
    let mut h = hasher?;
    for b in blocks {
        h.update(b);
    }
    Some(h.progress())
}

/// The answer to a [`DiskOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskResult {
    /// A `Read` finished (`None`: it failed).
    Read {
        /// The peer's connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Its bytes.
        data: Option<Vec<u8>>,
    },
    /// A `Verify` finished.
    Verified {
        /// The run's first piece.
        first: PieceIndex,
        /// Whether each piece's hash matched, in order.
        verdicts: Vec<bool>,
        /// Whether the run was then written (false: a piece failed, or
        /// the disk did, e.g. full).
        written: bool,
    },
    /// A `Check` finished.
    Checked {
        /// The piece.
        piece: PieceIndex,
        /// Whether the data on disk matched.
        ok: bool,
    },
    /// A `CreateEmpty` finished.
    Created {
        /// Whether every file exists now.
        ok: bool,
    },
    /// A `Write` finished.
    Written {
        /// The run.
        block: BlockRef,
        /// Whether it is on disk.
        ok: bool,
        /// The hash it carried, fed ([`write_hash`]).
        hash: Option<HashProgress>,
    },
}

/// Identifies an HTTP request or name resolution the engine asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Hands out [`RequestId`]s, never the same twice.
#[derive(Debug, Default)]
pub struct RequestIds {
    last: u64,
}

impl RequestIds {
    /// The next id.
    pub fn next_id(&mut self) -> RequestId {
        self.last += 1;
        RequestId(self.last)
    }
}

/// What the application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Something happened in a torrent (a magnet's
    /// [`TorrentEvent::MetadataReceived`]: call
    /// [`Engine::start_magnet`](super::Engine::start_magnet)).
    Torrent(TorrentId, TorrentEvent),
    /// The DHT node learned our external address or took a new id (a good
    /// moment to save its state).
    Dht(DhtEvent),
    /// The torrent reached its seeding goal (share ratio or seeding time,
    /// [`SeedingGoal`](super::SeedingGoal)) and the engine paused it; the
    /// application may remove it.
    SeedingGoalReached(TorrentId),
    /// A disk job other than a piece write failed (creating a torrent's
    /// zero-length files); its storage knows why.
    DiskFailed(TorrentId),
    /// A metadata fetch for an index ([`Engine::fetch_metadata`](super::Engine::fetch_metadata))
    /// has the info dictionary: these bytes hash to `info_hash` (BEP 9).
    MetadataFetched {
        /// What was asked for.
        info_hash: InfoHash,
        /// The bencoded info dictionary.
        metadata: Bytes,
    },
    /// A metadata fetch ended without it.
    MetadataFetchFailed {
        /// What was asked for.
        info_hash: InfoHash,
        /// Why.
        reason: super::FetchFailure,
    },
    /// [`Engine::shutdown`](super::Engine::shutdown) is complete: trackers were told `stopped` (or
    /// did not answer in time) and no disk job is in flight. Nothing more
    /// will come; the driver syncs its disks and ends.
    Stopped,
}

/// What the engine asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// A TCP action on a connection.
    Tcp {
        /// The connection.
        conn: ConnId,
        /// What to do.
        action: TcpAction,
    },
    /// Send a datagram from our UDP socket.
    Udp {
        /// Destination.
        to: SocketAddr,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Send a uTP path MTU probe from our UDP socket with fragmentation
    /// forbidden (IPv4's "don't fragment", IPv6's `DONTFRAG`): a path too
    /// narrow for it must lose it, not split it (BEP 29 connections find
    /// their datagram size this way). A driver that cannot forbid
    /// fragmentation drops it; the connection then keeps its starting
    /// size.
    UdpProbe {
        /// Destination.
        to: SocketAddr,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A disk job for a torrent; answer with `handle_disk`.
    Disk {
        /// The torrent.
        torrent: TorrentId,
        /// The job.
        op: DiskOp,
    },
    /// An HTTP(S) GET; answer with `handle_http`.
    Http {
        /// Its id.
        request: RequestId,
        /// The full URL.
        url: String,
        /// Connect over this family only (an announce, made once per
        /// family we listen on); `None`: any.
        family: Option<IpFamily>,
    },
    /// Fetch byte ranges from a web seed (BEP 19): an HTTP(S) GET with a
    /// `Range` header per request, made in order (over one connection
    /// where the server allows); answer with `handle_web_seed`: every
    /// body, or the first failure.
    WebSeed {
        /// Its id.
        request: RequestId,
        /// The range requests.
        requests: Vec<crate::webseed::WebRequest>,
    },
    /// Resolve `host:port` (a UDP tracker, a DHT router, a magnet's `x.pe`
    /// peer); answer with `handle_resolved`.
    Resolve {
        /// Its id.
        request: RequestId,
        /// `host:port`.
        host: String,
    },
    /// Something for the application.
    Event(Event),
    /// Nothing more now; call `handle_timeout` at this instant.
    Timeout(Instant),
}
