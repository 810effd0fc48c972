//! A v2 magnet's piece layers (BEP 52): the info dictionary of a v2-only
//! torrent names each file by its `pieces root` but does not carry the
//! piece layers its pieces are checked against, so after the metadata
//! the torrent fetches them from peers with `hash request`s, then starts.
//!
//! Each file's layer is asked for in chunks of up to 512 hashes (the BEP's
//! advice), with proof layers up to the root, so every answer is checked
//! against the file's `pieces root` on arrival ([`implied_root`]): a peer
//! whose hashes do not prove the root is banned. A chunk rejected, or not
//! answered within [`HASH_TIMEOUT`], goes to another peer; the peer that
//! refused is not asked for it again for [`HASH_TIMEOUT`]. A late answer
//! is still taken.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::metainfo::hash_tree::{implied_root, FileTrees};
use crate::metainfo::merkle::{Hash, LEAF};
use crate::metainfo::{needed_layers, piece_hashes, Info};
use crate::peer::MAX_HASH_REQUESTS;
use crate::wire::{HashList, HashRequest};

/// Hashes asked for at once (BEP 52: "Length SHOULD NOT be greater than
/// 512").
const CHUNK: u32 = 512;
/// A hash request unanswered this long goes to another peer.
const HASH_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Missing,
    Asked { conn: ConnId, at: Instant },
    Have,
}

/// One file's piece layer being fetched.
#[derive(Debug)]
struct Layer {
    /// Pieces of the file: the layer's real hashes.
    pieces: u32,
    hashes: Vec<Hash>,
    chunks: Vec<Chunk>,
    /// Peers that refused a chunk (or let it time out): (connection,
    /// chunk) → when.
    refused: BTreeMap<(ConnId, usize), Instant>,
}

impl Layer {
    /// Hashes per request: 512, or the whole layer padded to a power of
    /// two when smaller (libtorrent asks so).
    fn chunk_len(&self) -> u32 {
        self.pieces.next_power_of_two().min(CHUNK)
    }
}

/// The layers still wanted after a v2-only magnet's metadata arrived.
#[derive(Debug)]
pub(super) struct LayerFetch {
    /// The verified info dictionary.
    metadata: Bytes,
    piece_length: u32,
    layers: BTreeMap<Hash, Layer>,
}

impl LayerFetch {
    /// What `info` (v2-only, from `metadata`) needs; `None` when nothing:
    /// every file fits in one piece, its root being its piece's hash.
    pub(super) fn new(metadata: Bytes, info: &Info<'_>) -> Option<LayerFetch> {
        let layers: BTreeMap<Hash, Layer> = needed_layers(info)
            .into_iter()
            .map(|(root, pieces)| {
                let mut l = Layer {
                    pieces,
                    hashes: vec![[0; 32]; pieces as usize],
                    chunks: Vec::new(),
                    refused: BTreeMap::new(),
                };
                l.chunks = vec![Chunk::Missing; pieces.div_ceil(l.chunk_len()) as usize];
                (root, l)
            })
            .collect();
        (!layers.is_empty()).then_some(LayerFetch {
            metadata,
            piece_length: info.piece_length(),
            layers,
        })
    }

    /// The request for chunk `c` of the layer under `root`.
    fn request(&self, root: Hash, layer: &Layer, c: usize) -> HashRequest {
        let len = layer.chunk_len();
        HashRequest {
            pieces_root: root,
            base_layer: (self.piece_length as usize / LEAF).trailing_zeros(),
            index: c as u32 * len,
            length: len,
            // Up to just below the root, which we know.
            proof_layers: layer.pieces.next_power_of_two().trailing_zeros() - 1,
        }
    }

    /// A peer is gone: what it was asked for is missing again.
    pub(super) fn peer_gone(&mut self, conn: ConnId) {
        for l in self.layers.values_mut() {
            for c in &mut l.chunks {
                if matches!(c, Chunk::Asked { conn: k, .. } if *k == conn) {
                    *c = Chunk::Missing;
                }
            }
            l.refused.retain(|(k, _), _| *k != conn);
        }
    }

    /// The earliest request deadline, or end of a refusal's rest.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let asked = self
            .layers
            .values()
            .flat_map(|l| &l.chunks)
            .filter_map(|c| match c {
                Chunk::Asked { at, .. } => Some(*at + HASH_TIMEOUT),
                _ => None,
            });
        let rests = self
            .layers
            .values()
            .flat_map(|l| l.refused.values())
            .map(|at| *at + HASH_TIMEOUT);
        asked.chain(rests).min()
    }

    /// Requests unanswered for too long are missing again (the peer
    /// counts as having refused them); refusals end after as long.
    pub(super) fn expire(&mut self, now: Instant) {
        for l in self.layers.values_mut() {
            l.refused
                .retain(|_, at| now.saturating_duration_since(*at) < HASH_TIMEOUT);
            for (i, c) in l.chunks.iter_mut().enumerate() {
                if let Chunk::Asked { conn, at } = *c {
                    if now.saturating_duration_since(at) >= HASH_TIMEOUT {
                        *c = Chunk::Missing;
                        l.refused.insert((conn, i), now);
                    }
                }
            }
        }
    }

    fn complete(&self) -> bool {
        self.layers
            .values()
            .all(|l| l.chunks.iter().all(|c| *c == Chunk::Have))
    }
}

impl Torrent {
    /// The layer and chunk a request of ours is for.
    fn chunk_of(&mut self, request: &HashRequest) -> Option<(&mut Layer, usize)> {
        let lf = self.fetch.as_mut()?.layers.as_mut()?;
        let layer = lf.layers.get_mut(&request.pieces_root)?;
        let i = (request.index / layer.chunk_len()) as usize;
        Some((layer, i))
    }

    /// Sends hash requests for missing chunks to peers with room: v2
    /// connections whose peer has not refused the chunk (or, once every
    /// peer has, any of them again).
    pub(super) fn request_layers(&mut self, now: Instant) {
        let Some(lf) = self.fetch.as_mut().and_then(|f| f.layers.as_mut()) else {
            return;
        };
        let v2 = self.info.info_hash_v2.map(|h| InfoHash::truncated(&h));
        // Requests each v2 connection may still take.
        let mut room: BTreeMap<ConnId, usize> = self
            .peers
            .iter()
            .filter_map(|(c, p)| {
                let s = p.session.as_ref()?;
                let used = s.hash_requests().len();
                (s.is_active() && Some(s.info_hash()) == v2 && used < MAX_HASH_REQUESTS)
                    .then_some((*c, MAX_HASH_REQUESTS - used))
            })
            .collect();
        let mut sends: Vec<(ConnId, HashRequest)> = Vec::new();
        for (root, layer) in &lf.layers {
            for (i, _) in layer
                .chunks
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == Chunk::Missing)
            {
                let willing = room
                    .iter_mut()
                    .find(|(c, r)| **r > 0 && !layer.refused.contains_key(&(**c, i)));
                let Some((conn, r)) = willing else {
                    continue;
                };
                *r -= 1;
                sends.push((*conn, lf.request(*root, layer, i)));
            }
        }
        for (conn, request) in sends {
            let sent = self
                .peers
                .get_mut(&conn)
                .and_then(|p| p.session.as_mut())
                .is_some_and(|s| s.request_hashes(now, request));
            if !sent {
                continue;
            }
            if let Some((l, i)) = self.chunk_of(&request) {
                l.chunks[i] = Chunk::Asked { conn, at: now };
            }
            self.flush(now, conn);
        }
    }

    /// A peer's `hashes`: kept if they prove the file's root, else the
    /// peer is banned (BEP 52 gives no excuse for wrong hashes).
    pub(super) fn on_hashes(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: HashRequest,
        hashes: HashList,
    ) {
        let Some(lf) = self.fetch.as_mut().and_then(|f| f.layers.as_mut()) else {
            return;
        };
        let Some(layer) = lf.layers.get_mut(&request.pieces_root) else {
            return;
        };
        // The session checked that we asked this peer; a late answer (the
        // chunk since asked elsewhere) is as good.
        let i = (request.index / layer.chunk_len()) as usize;
        if matches!(layer.chunks.get(i), None | Some(Chunk::Have)) {
            return;
        }
        let answer = hashes.to_vec();
        let pad = crate::metainfo::merkle::zero_subtree(lf.piece_length as usize / LEAF);
        if implied_root(&request, &answer, pad) != Some(request.pieces_root) {
            layer.chunks[i] = Chunk::Missing;
            if let Some(addr) = self.peers.get(&conn).map(|p| p.addr) {
                self.list.ban(&addr);
                self.emit(TorrentEvent::PeerBanned(addr));
            }
            return self.drop_peer(now, conn, CloseReason::Protocol(PeerError::BadData), true);
        }
        let start = request.index as usize;
        let real = (layer.pieces as usize).saturating_sub(start);
        for (k, h) in answer
            .iter()
            .take(real.min(request.length as usize))
            .enumerate()
        {
            layer.hashes[start + k] = *h;
        }
        layer.chunks[i] = Chunk::Have;
        if let Some(addr) = self.peers.get(&conn).map(|p| p.addr) {
            self.list.good_piece(&addr, false);
        }
        if lf.complete() {
            self.layers_complete(now);
        } else {
            self.request_layers(now);
        }
    }

    /// A peer refused a chunk: another peer is asked.
    pub(super) fn on_hashes_rejected(&mut self, now: Instant, conn: ConnId, request: HashRequest) {
        if let Some((layer, i)) = self.chunk_of(&request) {
            if matches!(layer.chunks.get(i), Some(Chunk::Asked { conn: c, .. }) if *c == conn) {
                layer.chunks[i] = Chunk::Missing;
                layer.refused.insert((conn, i), now);
            }
        }
        self.request_layers(now);
    }

    /// Every layer is in: the torrent is made from the metadata and them
    /// (and serves them in turn).
    fn layers_complete(&mut self, now: Instant) {
        let Some(lf) = self.fetch.as_mut().and_then(|f| f.layers.take()) else {
            return;
        };
        let bytes: BTreeMap<Hash, Vec<u8>> = lf
            .layers
            .iter()
            .map(|(root, l)| (*root, l.hashes.concat()))
            .collect();
        let by_root: BTreeMap<Hash, &[u8]> =
            bytes.iter().map(|(r, b)| (*r, b.as_slice())).collect();
        let hashes = Info::from_bytes(&lf.metadata)
            .ok()
            .and_then(|info| piece_hashes(&info, &by_root));
        let trees = FileTrees::from_layers(by_root.iter().map(|(r, b)| (r, *b)), lf.piece_length);
        self.handover_with(now, lf.metadata, hashes.map(|h| (h, trees)));
    }
}
