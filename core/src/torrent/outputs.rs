//! What a torrent hands its owner: events for the application and
//! outputs for the driver (sockets, disk, trackers).

use super::*;

/// One piece of a [`TorrentOutput::Verify`] run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyPiece {
    /// The piece's expected hash.
    pub hash: PieceHash,
    /// How many of the run's blocks are this piece's.
    pub blocks: usize,
}

/// What the torrent reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorrentEvent {
    /// A magnet link's info dictionary is in, hashes to the info-hash and
    /// parsed: build the storage from [`Torrent::info`] (and save
    /// [`Torrent::torrent_file`]), then call [`Torrent::start`].
    MetadataReceived,
    /// The info dictionary hashes to the info-hash but is not a valid one
    /// (the magnet link names a broken torrent): the torrent stops.
    MetadataInvalid(MetainfoError),
    /// A new state.
    StateChanged(TorrentState),
    /// A piece passed its hash check and is on disk.
    PieceDone(PieceIndex),
    /// A piece failed its hash check.
    HashFailed {
        /// The piece.
        piece: PieceIndex,
        /// Peers that sent blocks of it.
        contributors: Vec<SocketAddr>,
    },
    /// A failed v2 piece's leaf hashes (BEP 52) showed which of its
    /// blocks were bad: `senders` sent them (and were banned), the other
    /// peers that sent blocks of it are not blamed.
    BadBlocks {
        /// The piece.
        piece: PieceIndex,
        /// The peers whose blocks were bad (web seeds are not listed).
        senders: Vec<SocketAddr>,
    },
    /// Every wanted piece is on disk.
    Finished,
    /// A peer session is established.
    PeerConnected {
        /// The connection.
        conn: ConnId,
        /// The peer.
        addr: SocketAddr,
    },
    /// A peer session ended.
    PeerDisconnected {
        /// The connection.
        conn: ConnId,
        /// The peer.
        addr: SocketAddr,
        /// Why.
        reason: CloseReason,
    },
    /// A relay refused our holepunch rendezvous (BEP 55); that attempt
    /// is over.
    HolepunchFailed {
        /// The relay.
        relay: SocketAddr,
        /// The peer we asked it to introduce us to.
        target: SocketAddr,
        /// Why not.
        error: crate::wire::HolepunchErrorCode,
    },
    /// A peer was banned for sending bad data.
    PeerBanned(SocketAddr),
    /// A tracker answered.
    TrackerReply {
        /// The tracker.
        url: String,
        /// How many peers it gave.
        peers: usize,
    },
    /// A verified piece could not be written (disk full, permissions): it
    /// will be fetched again, but the application should probably stop.
    WriteFailed(PieceIndex),
    /// A web seed (BEP 19) was given up: it failed too often or sent bad
    /// data.
    WebSeedDropped {
        /// Its URL.
        url: String,
        /// Why.
        error: crate::webseed::WebSeedError,
    },
    /// A tracker failed or refused.
    TrackerError {
        /// The tracker.
        url: String,
        /// What went wrong.
        error: TrackerError,
    },
}

/// What the torrent asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum TorrentOutput {
    /// Open a TCP connection; answer with `handle_connected` or
    /// `handle_connect_failed`.
    Connect {
        /// The id to use for it.
        conn: ConnId,
        /// Where.
        addr: SocketAddr,
    },
    /// Send bytes on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close a connection (no `handle_closed` needed).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Hash a run of adjacent complete pieces from memory and, only if
    /// every one matches, write the run; answer with
    /// `handle_verified_run` (see the `verification` module).
    Verify {
        /// The run's first piece.
        first: PieceIndex,
        /// Each piece of the run in order: its hash and how many of
        /// `blocks` are its.
        pieces: Vec<VerifyPiece>,
        /// The run's blocks in order.
        blocks: Vec<Bytes>,
        /// Where the run's bytes go once verified (padding slices: skip).
        slices: Vec<FileSlice>,
    },
    /// Write a run of blocks of a piece too large to hold in memory,
    /// feeding them to the piece's running hash if one is carried (see the
    /// `write_through` module); answer with `handle_written`.
    Write {
        /// The run: a piece, an offset in it and a length.
        block: BlockRef,
        /// Its bytes, block by block.
        blocks: Vec<Bytes>,
        /// Where they go (padding slices: skip).
        slices: Vec<FileSlice>,
        /// The piece's hash so far, fed up to `block.offset`: the disk
        /// feeds it the run and hands it back ([`write_hash`]).
        ///
        /// [`write_hash`]: crate::engine::write_hash
        hasher: Option<RunningHash>,
    },
    /// Read a block a peer requested; answer with `handle_read`.
    Read {
        /// The requesting connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
    },
    /// Read and hash a piece on disk (a start-up check, or a write-through
    /// piece whose blocks are all written); answer with `handle_checked`.
    Check {
        /// The piece.
        piece: PieceIndex,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
        /// The expected hash.
        hash: PieceHash,
    },
    /// Announce to a tracker (HTTP or UDP by the URL's scheme); answer
    /// with `handle_announce`.
    Announce {
        /// The tracker URL.
        url: String,
        /// What to announce.
        request: AnnounceRequest,
    },
    /// Fetch a run of the torrent's bytes from a web seed (BEP 19): each
    /// request an HTTP GET of a byte range; answer with
    /// `handle_web_seed`, one body per request, in order.
    WebSeed {
        /// The run.
        job: WebJob,
        /// The range requests.
        requests: Vec<crate::webseed::WebRequest>,
    },
    /// Something the application should know.
    Event(TorrentEvent),
}
