//! Leaf hashes (BEP 52): a failed v2 piece names the peer that sent its
//! bad block.
//!
//! A v1 piece that fails its hash check says only that one of the peers
//! that sent its blocks lied, so each of them loses some trust. A v2
//! piece's hash is the root of a merkle tree over its 16 KiB blocks, whose
//! leaves (the blocks' hashes, which the .torrent does not carry) tell
//! which blocks were bad. So when a piece with blocks from several sources
//! fails, the torrent hashes the blocks it holds, asks a peer on a v2
//! connection for the piece's leaves (`hash request`, base layer 0, as
//! libtorrent does), checks that they come to the piece's hash, and blames
//! exactly the senders of the blocks whose hash differs: each as a sole
//! contributor would be (banned), while the others keep their trust. A
//! request refused or unanswered for [`LEAF_TIMEOUT`] goes to another
//! peer; with none left, every contributor shares the blame as for v1.
//! Pieces verified from disk ([`write_through`](super::write_through))
//! are not held in memory and are blamed as v1 pieces.
//!
//! We answer such requests too: the piece is read from disk, its leaves
//! hashed, and the uncles up to `proof layers` taken from the piece's own
//! subtree and, above it, from the file's tree. A read costs a piece for a
//! 48-byte request, so a connection gets [`LEAF_ANSWERS`] of them, one at
//! a time, and the torrent [`LEAF_READS`] reads at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use super::*;
use crate::metainfo::hash_tree::implied_root;
use crate::metainfo::merkle::{self, Hash, LEAF};
use crate::peer::MAX_HASH_REQUESTS;
use crate::wire::{HashList, HashRequest};

/// A leaf request unanswered this long goes to another peer.
const LEAF_TIMEOUT: Duration = Duration::from_secs(15);
/// Failed pieces waiting for their leaves at once; a failure beyond them
/// is blamed as a v1 one.
const MAX_CASES: usize = 16;
/// Most leaves in one request, asked or answered (BEP 52: "Length SHOULD
/// NOT be greater than 512"): pieces of up to 8 MiB.
const MAX_LEAVES: u32 = 512;
/// Leaf answers one connection gets (each costs a piece read).
pub(super) const LEAF_ANSWERS: u32 = 16;
/// Piece reads for leaf answers in flight at once, per torrent.
const LEAF_READS: usize = 4;

/// The torrent's leaf-hash business: failed pieces waiting for their
/// leaves, and pieces being read to answer peers' leaf requests.
#[derive(Debug, Default)]
pub(super) struct Leaves {
    /// By piece.
    cases: BTreeMap<u32, Case>,
    /// The v2 files and their roots, made on first use.
    files: Option<Vec<V2File>>,
    /// Piece reads answering leaf requests, one per connection at most.
    reads: BTreeMap<ConnId, LeafRead>,
}

/// A piece being read to answer a leaf request.
#[derive(Debug)]
struct LeafRead {
    piece: u32,
    request: HashRequest,
    /// The answer's uncles at and above the piece layer (from the file's
    /// tree, known already).
    upper: Vec<Hash>,
}

/// A file of a v2 torrent: its `pieces root` and its pieces.
#[derive(Clone, Debug)]
pub(super) struct V2File {
    root: Hash,
    pieces: Range<u32>,
}

/// A failed piece whose bad blocks are being looked for.
#[derive(Debug)]
struct Case {
    /// The leaves asked for.
    request: HashRequest,
    /// The piece's hash: what the leaves must come to.
    root: Hash,
    /// Our hashes of the blocks we had (those holding file bytes).
    ours: Vec<Hash>,
    /// Who sent each block.
    senders: Vec<Option<ConnId>>,
    /// Every contributor, with its address when a peer (web seeds have
    /// none).
    contributors: Vec<(ConnId, Option<SocketAddr>)>,
    /// The peer asked now, and when.
    asked: Option<(ConnId, Instant)>,
    /// Peers asked so far (none is asked twice).
    tried: BTreeSet<ConnId>,
}

impl Leaves {
    /// Whether a failed piece still waits for its leaves.
    #[cfg(test)]
    pub(super) fn is_waiting(&self) -> bool {
        !self.cases.is_empty()
    }

    /// Whether a leaf question to `conn` (a failed piece waits for its
    /// answer) or from it (a read for our answer) is pending.
    pub(super) fn busy_with(&self, conn: ConnId) -> bool {
        self.reads.contains_key(&conn)
            || self
                .cases
                .values()
                .any(|c| matches!(c.asked, Some((k, _)) if k == conn))
    }

    /// The failed piece whose leaves `request` asked for, and its case.
    fn case_for(&self, request: &HashRequest) -> Option<(u32, &Case)> {
        self.cases
            .iter()
            .find(|(_, c)| c.request == *request)
            .map(|(p, c)| (*p, c))
    }
}

/// Every v2 file with content, its root from its piece hashes: a file of
/// one piece has that piece's hash as root, a longer one the root over its
/// piece layer.
fn v2_files(info: &TorrentInfo) -> Vec<V2File> {
    let layout = &info.layout;
    (0..layout.file_count())
        .filter(|f| !layout.is_padding(*f))
        .filter_map(|f| {
            let range = layout.file_pieces(f);
            let pieces = range.start.0..range.end.0;
            let roots = pieces
                .clone()
                .map(|p| match info.piece_hashes.get(p as usize) {
                    Some(PieceHash::V2 { root, .. }) => Some(*root),
                    _ => None,
                })
                .collect::<Option<Vec<Hash>>>()?;
            let root = match roots.as_slice() {
                [] => return None,
                [one] => *one,
                layer => merkle::root_from_piece_layer(layer, layout.piece_length()),
            };
            Some(V2File { root, pieces })
        })
        .collect()
}

/// The leaf hashes of a v2 piece's bytes (`length` of them are the
/// file's, the rest padding), padded with zero leaves to `width`.
fn leaves_of<'a>(blocks: impl IntoIterator<Item = &'a [u8]>, length: u32) -> Vec<Hash> {
    let mut leaves = merkle::Leaves::default();
    let mut left = length as usize;
    for b in blocks {
        let n = b.len().min(left);
        leaves.update(&b[..n]);
        left -= n;
    }
    leaves.finish()
}

impl Torrent {
    pub(super) fn v2_file_list(&mut self) -> &[V2File] {
        let info = &self.info;
        self.leaves.files.get_or_insert_with(|| v2_files(info))
    }

    /// The leaf request for `piece` of a v2 torrent, with the piece's hash
    /// and file bytes; `None` when it has a single leaf (its sole sender
    /// is known) or too many.
    fn leaf_request(&mut self, piece: u32) -> Option<(HashRequest, Hash, u32)> {
        let PieceHash::V2 {
            root,
            leaves,
            length,
        } = *self.info.piece_hashes.get(piece as usize)?
        else {
            return None;
        };
        if !(2..=MAX_LEAVES).contains(&leaves) {
            return None;
        }
        let per_piece = self.info.layout.piece_length() / LEAF as u32;
        let files = self.v2_file_list();
        let file = files.get(files.partition_point(|f| f.pieces.end <= piece))?;
        let request = HashRequest {
            pieces_root: file.root,
            base_layer: 0,
            index: (piece.checked_sub(file.pieces.start)?) * per_piece,
            length: leaves,
            // The piece's hash is known: the leaves prove themselves.
            proof_layers: 0,
        };
        Some((request, root, length))
    }

    /// A piece held in memory failed its check with blocks from several
    /// `sources` (each with its address, web seeds having none): if it is
    /// a v2 piece, asks for its leaves and returns true (the blame waits
    /// for them); false to blame as v1.
    pub(super) fn blame_by_leaves(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        sources: &[(ConnId, Option<SocketAddr>)],
    ) -> bool {
        if sources.len() < 2
            || self.leaves.cases.len() >= MAX_CASES
            || self.leaves.cases.contains_key(&piece.0)
        {
            return false;
        }
        let Some((request, root, length)) = self.leaf_request(piece.0) else {
            return false;
        };
        let Some(buf) = self.buffers.get(&piece.0) else {
            return false;
        };
        let case = Case {
            request,
            root,
            ours: leaves_of(buf.blocks.iter().flatten().map(|b| &b[..]), length),
            senders: self.picker.senders(piece),
            contributors: sources.to_vec(),
            asked: None,
            tried: BTreeSet::new(),
        };
        self.leaves.cases.insert(piece.0, case);
        self.ask_for_leaves(now, piece.0);
        true
    }

    /// Asks a peer on a v2 connection that has the piece (one that sent
    /// none of it first) for its leaves; with nobody left to ask, every
    /// contributor is blamed.
    fn ask_for_leaves(&mut self, now: Instant, piece: u32) {
        let Some(case) = self.leaves.cases.get(&piece) else {
            return;
        };
        let v2 = self.info.info_hash_v2.map(|h| InfoHash::truncated(&h));
        let mut chosen: Option<ConnId> = None;
        for (c, p) in &self.peers {
            let Some(s) = &p.session else {
                continue;
            };
            let able = s.is_active()
                && Some(s.info_hash()) == v2
                && s.hash_requests().len() < MAX_HASH_REQUESTS
                && s.remote_has(PieceIndex(piece))
                && !case.tried.contains(c)
                && !self.list.is_banned(&p.addr);
            if !able {
                continue;
            }
            chosen = Some(*c);
            if case.contributors.iter().all(|(k, _)| k != c) {
                break;
            }
        }
        let request = case.request;
        let sent = chosen.filter(|conn| {
            self.peers
                .get_mut(conn)
                .and_then(|p| p.session.as_mut())
                .is_some_and(|s| s.request_hashes(now, request))
        });
        let Some(conn) = sent else {
            if let Some(case) = self.leaves.cases.remove(&piece) {
                let all = case.contributors;
                self.blame(now, PieceIndex(piece), &all, all.len() == 1);
            }
            return;
        };
        if let Some(case) = self.leaves.cases.get_mut(&piece) {
            case.asked = Some((conn, now));
            case.tried.insert(conn);
        }
        self.flush(now, conn);
    }

    /// A `hashes` answer: true if it was for a failed piece's leaves. Leaves
    /// that do not come to the piece's hash get their sender banned (and
    /// another peer asked); leaves that do name the bad blocks' senders.
    pub(super) fn on_leaf_hashes(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: &HashRequest,
        hashes: &HashList,
    ) -> bool {
        let Some((piece, case)) = self.leaves.case_for(request) else {
            return false;
        };
        let answer = hashes.to_vec();
        if implied_root(request, &answer, [0; 32]) != Some(case.root) {
            if let Some(addr) = self.peers.get(&conn).map(|p| p.addr) {
                self.list.ban(&addr);
                self.emit(TorrentEvent::PeerBanned(addr));
            }
            self.drop_peer(now, conn, CloseReason::Protocol(PeerError::BadData), true);
            self.ask_for_leaves(now, piece);
            return true;
        }
        let Some(case) = self.leaves.cases.remove(&piece) else {
            return true;
        };
        let bad: BTreeSet<ConnId> = case
            .ours
            .iter()
            .zip(&answer)
            .zip(&case.senders)
            .filter(|((ours, theirs), _)| ours != theirs)
            .filter_map(|(_, sender)| *sender)
            .collect();
        let culprits: Vec<(ConnId, Option<SocketAddr>)> = case
            .contributors
            .iter()
            .filter(|(c, _)| bad.contains(c))
            .copied()
            .collect();
        if culprits.is_empty() {
            // Every block we had matches, yet the piece failed: nothing
            // to pin it on but everyone.
            let all = case.contributors;
            self.blame(now, PieceIndex(piece), &all, false);
        } else {
            self.emit(TorrentEvent::BadBlocks {
                piece: PieceIndex(piece),
                senders: culprits.iter().filter_map(|(_, a)| *a).collect(),
            });
            self.blame(now, PieceIndex(piece), &culprits, true);
        }
        // A seed kept for its answer (we may be seeding by now).
        self.drop_if_both_seeds(now, conn);
        self.fill_requests(now);
        true
    }

    /// A `hash reject`: true if it was for a failed piece's leaves (then
    /// another peer is asked).
    pub(super) fn on_leaf_hashes_rejected(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: &HashRequest,
    ) -> bool {
        let Some((piece, case)) = self.leaves.case_for(request) else {
            return false;
        };
        if matches!(case.asked, Some((c, _)) if c == conn) {
            if let Some(case) = self.leaves.cases.get_mut(&piece) {
                case.asked = None;
            }
            self.ask_for_leaves(now, piece);
            // Kept for the answer it refused.
            self.drop_if_both_seeds(now, conn);
        }
        true
    }

    /// When the oldest leaf request runs out.
    pub(super) fn leaves_timeout(&self) -> Option<Instant> {
        self.leaves
            .cases
            .values()
            .filter_map(|c| c.asked.map(|(_, at)| at + LEAF_TIMEOUT))
            .min()
    }

    /// Leaf requests unanswered for too long, or whose peer left, go to
    /// another peer.
    pub(super) fn expire_leaf_requests(&mut self, now: Instant) {
        let due: Vec<(u32, ConnId)> = self
            .leaves
            .cases
            .iter()
            .filter_map(|(p, c)| {
                let (conn, at) = c.asked?;
                let late = now.saturating_duration_since(at) >= LEAF_TIMEOUT
                    || !self.peers.contains_key(&conn);
                late.then_some((*p, conn))
            })
            .collect();
        for (piece, conn) in due {
            if let Some(c) = self.leaves.cases.get_mut(&piece) {
                c.asked = None;
            }
            self.ask_for_leaves(now, piece);
            // Kept for an answer that did not come.
            self.drop_if_both_seeds(now, conn);
        }
    }

    /// A peer asks for leaves (base layer 0 of a torrent whose pieces span
    /// several): a piece we have is read to answer, within the
    /// connection's allowance; anything else is refused.
    pub(super) fn on_leaf_request(&mut self, now: Instant, conn: ConnId, request: HashRequest) {
        let piece = self.leaf_piece(&request);
        let busy = self.leaves.reads.contains_key(&conn);
        let allowed = self.peers.get_mut(&conn).is_some_and(|p| {
            let ok = p.exchange.leaves_served < LEAF_ANSWERS
                && !busy
                && self.leaves.reads.len() < LEAF_READS;
            p.exchange.leaves_served += 1;
            ok
        });
        let Some((piece, upper)) = piece.filter(|_| allowed) else {
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.answer_hashes(now, request, None);
            }
            return self.flush(now, conn);
        };
        let read = LeafRead {
            piece,
            request,
            upper,
        };
        self.leaves.reads.insert(conn, read);
        let block = BlockRef {
            piece: PieceIndex(piece),
            offset: 0,
            length: self.info.layout.piece_size(PieceIndex(piece)),
        };
        let slices = self.info.layout.piece_slices(block.piece).collect();
        self.out.push_back(TorrentOutput::Read {
            conn,
            block,
            slices,
        });
    }

    /// The piece a leaf request is about, if we can answer it, with its
    /// uncles above the piece: the request names a v2 file's root, asks for
    /// at most a piece's leaves (a power of two, aligned) of a piece we have
    /// on disk, and its proof stays below the root.
    pub(super) fn leaf_piece(&mut self, request: &HashRequest) -> Option<(u32, Vec<Hash>)> {
        let (index, length) = (request.index, request.length);
        if length == 0 || length > MAX_LEAVES || !length.is_power_of_two() {
            return None;
        }
        if !index.is_multiple_of(length) {
            return None;
        }
        let per_piece = self.info.layout.piece_length() / LEAF as u32;
        let file = self
            .v2_file_list()
            .iter()
            .find(|f| f.root == request.pieces_root)?
            .clone();
        let piece = file.pieces.start.checked_add(index / per_piece)?;
        let PieceHash::V2 { leaves: width, .. } = *self.info.piece_hashes.get(piece as usize)?
        else {
            return None;
        };
        // Within the piece's leaves (a file of one piece may have fewer
        // than a piece's width), of a piece of this file that we have.
        let fits = index % per_piece + length <= width;
        if !fits || piece >= file.pieces.end || !self.on_disk.get(PieceIndex(piece)) {
            return None;
        }
        // Uncles at or above the piece layer come from the file's tree.
        let below = width.trailing_zeros();
        let mut upper = Vec::new();
        for layer in request.uncle_layers().filter(|l| *l >= below) {
            let up = (layer - below) as usize;
            let at = ((piece - file.pieces.start) as usize) >> up;
            upper.push(self.info.trees.uncle(&file.root, up, at)?);
        }
        Some((piece, upper))
    }

    /// A piece read for a leaf request ([`on_leaf_request`]): true if that
    /// is what `block` was (then the request is answered, or refused if
    /// the read failed). An upload read of the same peer spanning the same
    /// whole piece may be taken for it: both hold that piece's bytes, and
    /// the other read, when it lands, serves the blocks.
    ///
    /// [`on_leaf_request`]: Torrent::on_leaf_request
    pub(super) fn leaf_read_done(
        &mut self,
        now: Instant,
        conn: ConnId,
        block: BlockRef,
        data: Option<&[u8]>,
    ) -> bool {
        if block.offset != 0 || block.length != self.info.layout.piece_size(block.piece) {
            return false;
        }
        match self.leaves.reads.get(&conn) {
            Some(read) if read.piece == block.piece.0 => {}
            _ => return false,
        }
        let Some(read) = self.leaves.reads.remove(&conn) else {
            return false;
        };
        let hash = self.info.piece_hashes.get(block.piece.0 as usize);
        let answer = match (hash, data) {
            (Some(&PieceHash::V2 { leaves, length, .. }), Some(d)) => {
                let per_piece = self.info.layout.piece_length() / LEAF as u32;
                let mut piece_leaves = leaves_of([d], length);
                piece_leaves.resize(leaves as usize, [0; 32]);
                Some(leaf_answer(
                    piece_leaves,
                    &read.request,
                    per_piece,
                    &read.upper,
                ))
            }
            _ => None,
        };
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.answer_hashes(now, read.request, answer.as_deref());
        }
        self.flush(now, conn);
        // A peer kept for the answer (both of us may be seeds by now).
        self.drop_if_both_seeds(now, conn);
        true
    }
}

/// The answer to a leaf `request` about one piece, from the piece's leaves
/// (padded to its width) and the uncles above the piece: the leaves asked
/// for, then one uncle per proof layer, lowest first (as
/// [`HashRequest::uncle_layers`] counts them).
pub(super) fn leaf_answer(
    piece_leaves: Vec<Hash>,
    request: &HashRequest,
    per_piece: u32,
    upper: &[Hash],
) -> Vec<Hash> {
    let first = (request.index % per_piece) as usize;
    let layers = merkle::layers(piece_leaves);
    let mut out = layers[0][first..first + request.length as usize].to_vec();
    for layer in request.uncle_layers() {
        // The piece's root layer has no sibling here: those uncles are
        // the file tree's (`upper`).
        if let Some(l) = layers.get(layer as usize).filter(|l| l.len() > 1) {
            out.push(l[(first >> layer) ^ 1]);
        }
    }
    out.extend_from_slice(upper);
    out
}
