//! The multi-peer torrent target: one `Torrent` among four hostile peers,
//! the multi-peer counterpart of `peer_session_ops`; `torrent_swarm_v2`
//! is the same swarm over a v2-only torrent, whose peers also trade leaf
//! hashes (BEP 52).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::handles::ConnId;
use crate::metainfo::hash_tree::implied_root;
use crate::metainfo::merkle::{self, Hash, LEAF};
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder, TorrentFormat, V2PieceHasher};
use crate::torrent::exchange::{OUR_UT_METADATA, OUR_UT_PEX};
use crate::torrent::{StartMode, Torrent, TorrentConfig, TorrentEvent, TorrentInfo, TorrentOutput};
use crate::wire::{
    BlockRef, ExtensionHandshake, Frame, FrameDecoder, FrameLimits, Handshake, HashList,
    HashRequest, MetadataMessage, PeerId, PexFlags, PexMessage, Reserved, BLOCK_SIZE,
    METADATA_PIECE,
};
use crate::{Bitfield, Instant, PieceIndex, Seed};

/// Bytes of the torrent: six pieces of two blocks, the last one short.
const LENGTH: usize = 5 * 32768 + 20_000;
const PIECE: u32 = 32768;
const PIECES: u32 = 6;
const PEERS: usize = 4;

#[derive(Debug, arbitrary::Arbitrary)]
enum SwarmOp {
    /// Raw bytes from a peer.
    Bytes { peer: u8, data: Vec<u8> },
    /// A well-formed frame from a peer.
    Frame { peer: u8, frame: PeerFrame },
    /// A peer answers one of the requests we sent it, with the real
    /// block or with garbage.
    Answer { peer: u8, which: u8, honest: bool },
    /// A peer answers every request we sent it, with garbage where
    /// `corrupt` has a bit set (bit i: the i-th answer, cycling).
    AnswerAll { peer: u8, corrupt: u8 },
    /// A peer says it has everything, unchokes us and is interested.
    Cooperate { peer: u8 },
    /// A peer's extension handshake, with its ids for ut_pex and
    /// ut_metadata (0: disabled) and any metadata size.
    ExtHandshake {
        peer: u8,
        pex: u8,
        metadata: u8,
        size: u32,
    },
    /// A PEX message to us.
    Pex {
        peer: u8,
        added: Vec<(u8, u16, u8)>,
        dropped: Vec<(u8, u16)>,
    },
    /// A ut_metadata message to us.
    Metadata { peer: u8, kind: u8, piece: u8 },
    /// Whether writes fail from now on (a full disk).
    DiskFull(bool),
    /// The clock moves and deadlines run.
    Advance(u16),
    /// A peer asks for leaf hashes (base layer 0) of the file, or of a
    /// root that is not the file's (index, length and proof cut to near
    /// the file's 16 leaves and 4 layers).
    HashRequest {
        peer: u8,
        index: u8,
        length: u8,
        proof_layers: u8,
        other_root: bool,
    },
    /// A peer answers the hash requests we sent it: the real hashes, or
    /// each one flipped.
    Hashes { peer: u8, honest: bool },
    /// A peer's connection closes.
    Close { peer: u8 },
    /// A peer whose connection closed connects again.
    Reconnect { peer: u8 },
}

#[derive(Debug, arbitrary::Arbitrary)]
enum PeerFrame {
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u8),
    /// One bit per piece, low bits first; `extra` sets spare bits too.
    Bitfield {
        bits: u8,
        extra: bool,
    },
    HaveAll,
    HaveNone,
    Request {
        piece: u8,
        block: u8,
        len: u16,
    },
    Cancel {
        piece: u8,
        block: u8,
    },
    Piece {
        piece: u8,
        block: u8,
        len: u16,
        fill: u8,
    },
    Reject {
        piece: u8,
        block: u8,
    },
    AllowedFast(u8),
    Suggest(u8),
    KeepAlive,
}

struct Peer {
    addr: SocketAddr,
    conn: Option<ConnId>,
    /// Our stream to it: the handshake not yet skipped, then frames.
    skip: usize,
    decoder: FrameDecoder,
    /// Requests we sent it and it has not answered.
    asked: Vec<BlockRef>,
    /// Its ids for ut_metadata and ut_pex (what we send it arrives
    /// under these).
    metadata_id: u8,
    /// Hash requests we sent it and it has not answered.
    hashes_asked: Vec<HashRequest>,
}

struct Swarm {
    t: Torrent,
    now: Instant,
    /// The torrent's bytes on disk (a v2 file is padded to a piece).
    content: Vec<u8>,
    /// A v2 torrent's file root and its leaves (padded to a power of
    /// two); `None` for v1.
    tree: Option<(Hash, Vec<Hash>)>,
    metadata: Vec<u8>,
    /// The simulated disk: what the torrent had written.
    disk: Vec<u8>,
    disk_full: bool,
    peers: Vec<Peer>,
    next_conn: u64,
    open: BTreeSet<ConnId>,
    banned: BTreeSet<SocketAddr>,
}

fn frame_bytes(f: &Frame) -> Bytes {
    let mut out = Vec::new();
    f.encode(&mut out);
    Bytes::from(out)
}

fn block(piece: u8, b: u8, len: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(u32::from(piece) % (PIECES + 1)),
        offset: u32::from(b % 3) * BLOCK_SIZE,
        length: len,
    }
}

impl Swarm {
    fn new(v2: bool) -> Swarm {
        let mut content: Vec<u8> = (0..LENGTH as u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut b = TorrentBuilder::single_file("s.bin", LENGTH as u64);
        b.set_piece_length(PIECE);
        let bytes = if v2 {
            b.set_format(TorrentFormat::V2);
            let pieces: Vec<_> = content
                .chunks(PIECE as usize)
                .map(|c| {
                    let mut h = V2PieceHasher::new(PIECE, false);
                    h.update(c);
                    h.finish()
                })
                .collect();
            b.build_v2(&[], &pieces)
        } else {
            let mut h = PieceHasher::new(PIECE);
            h.update(&content);
            b.build(&h.finish())
        };
        let bytes = bytes.expect("valid torrent");
        let tree = v2.then(|| {
            let mut leaves: Vec<Hash> = content.chunks(LEAF).map(merkle::leaf).collect();
            leaves.resize(leaves.len().next_power_of_two(), [0; 32]);
            (merkle::root_of_data(&content, 0), leaves)
        });
        // A v2 file ends on a piece boundary (zeros after it).
        content.resize(
            if v2 {
                (PIECES * PIECE) as usize
            } else {
                LENGTH
            },
            0,
        );
        let m = Metainfo::from_bytes(&bytes).expect("our torrent parses");
        let metadata = m.info.raw().to_vec();
        let info = TorrentInfo::from_metainfo(&m);
        // Pieces 0 and 1 are on disk already: it uploads and downloads.
        let mut have = Bitfield::new(PIECES);
        let mut disk = vec![0u8; content.len()];
        for p in 0..2 {
            have.set(PieceIndex(p));
            let r = (p * PIECE) as usize..((p + 1) * PIECE) as usize;
            disk[r.clone()].copy_from_slice(&content[r]);
        }
        let config = TorrentConfig {
            max_buffered_bytes: 4 * u64::from(PIECE),
            ..TorrentConfig::default()
        };
        let t = Torrent::new(
            Instant::ZERO,
            info,
            config,
            StartMode::Trusted(have),
            Seed::from_u64(31),
        );
        let peers = (0..PEERS as u8)
            .map(|i| Peer {
                addr: SocketAddr::from(([10, 0, 0, i + 1], 6881)),
                conn: None,
                skip: 0,
                decoder: FrameDecoder::new(FrameLimits::default()),
                asked: Vec::new(),
                metadata_id: 0,
                hashes_asked: Vec::new(),
            })
            .collect();
        let mut s = Swarm {
            t,
            now: Instant::ZERO,
            content,
            tree,
            metadata,
            disk,
            disk_full: false,
            peers,
            next_conn: 1 << 50,
            open: BTreeSet::new(),
            banned: BTreeSet::new(),
        };
        for i in 0..PEERS {
            s.connect(i);
        }
        s
    }

    /// Peer `i` connects to us and sends its handshake.
    fn connect(&mut self, i: usize) {
        let conn = ConnId::new(self.next_conn);
        self.next_conn += 1;
        let addr = self.peers[i].addr;
        let accepted = self.t.handle_incoming(self.now, conn, addr);
        if self.banned.contains(&addr) {
            assert!(!accepted, "a banned peer was let back in");
        }
        if !accepted {
            return;
        }
        self.open.insert(conn);
        let p = &mut self.peers[i];
        *p = Peer {
            addr,
            conn: Some(conn),
            skip: 68,
            decoder: FrameDecoder::new(FrameLimits {
                piece_count: Some(PIECES),
                ..FrameLimits::default()
            }),
            asked: Vec::new(),
            metadata_id: 0,
            hashes_asked: Vec::new(),
        };
        let mut hs = Vec::new();
        Handshake {
            reserved: Reserved::FAST.with(Reserved::EXTENSION).with(Reserved::V2),
            info_hash: self.t.info_hash(),
            peer_id: PeerId([i as u8 + 1; 20]),
        }
        .encode(&mut hs);
        self.t.handle_chunk(self.now, conn, Bytes::from(hs));
    }

    fn send(&mut self, i: usize, data: Bytes) {
        if let Some(c) = self.peers[i].conn {
            self.t.handle_chunk(self.now, c, data);
        }
    }

    fn peer_of(&self, conn: ConnId) -> Option<usize> {
        self.peers.iter().position(|p| p.conn == Some(conn))
    }

    /// What we sent peer `i`: every piece we upload is the real data,
    /// every metadata piece the real info dictionary; requests are
    /// remembered for the peer to answer.
    fn sent(&mut self, i: usize, mut data: &[u8]) {
        let p = &mut self.peers[i];
        let skip = p.skip.min(data.len());
        p.skip -= skip;
        data = &data[skip..];
        p.decoder.push(data);
        loop {
            let frame = match p.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("we sent a frame that does not decode: {e:?}"),
            };
            match frame {
                Frame::Piece {
                    piece,
                    offset,
                    data,
                } => {
                    let start = (piece.0 * PIECE + offset) as usize;
                    assert_eq!(
                        self.content.get(start..start + data.len()),
                        Some(&data[..]),
                        "uploaded bytes that are not the content"
                    );
                    assert!(self.t.have().get(piece), "uploaded a piece we lack");
                }
                Frame::Request(b) => {
                    assert!(!self.t.have().get(b.piece), "requested a piece we have");
                    p.asked.push(b);
                }
                Frame::Cancel(b) => p.asked.retain(|a| *a != b),
                Frame::HashRequest(r) => {
                    assert_eq!(r.base_layer, 0, "asked for other than leaves: {r:?}");
                    p.hashes_asked.push(r);
                }
                Frame::Hashes { request, hashes } => {
                    let (root, leaves) = self.tree.as_ref().expect("hashes of a v1 torrent");
                    let answer = hashes.to_vec();
                    let (i, n) = (request.index as usize, request.length as usize);
                    assert_eq!(request.base_layer, 0, "answered other than leaves");
                    assert_eq!(request.pieces_root, *root, "answered for another root");
                    assert_eq!(answer.len(), n + request.uncle_count() as usize);
                    assert_eq!(leaves.get(i..i + n), Some(&answer[..n]), "wrong leaves");
                    let top = leaves.len().trailing_zeros();
                    if request.proof_layers + 1 == top {
                        assert_eq!(implied_root(&request, &answer, [0; 32]), Some(*root));
                    }
                }
                Frame::Extended { id, payload } if id != 0 && id == p.metadata_id => {
                    if let Ok(MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    }) = MetadataMessage::decode(&payload)
                    {
                        assert_eq!(total_size, self.metadata.len() as u64);
                        let start = piece as usize * METADATA_PIECE;
                        assert_eq!(
                            self.metadata.get(start..start + data.len()),
                            Some(&data[..]),
                            "served metadata that is not the info dictionary"
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Carries out every output: sends are checked, connects to PEX
    /// peers fail, disk jobs run against the simulated disk.
    fn drain(&mut self) {
        for _ in 0..100_000 {
            let Some(o) = self.t.poll_output() else {
                return;
            };
            match o {
                TorrentOutput::WebSeed { job, .. } => {
                    let refused = crate::webseed::WebSeedError::Status(404);
                    self.t.handle_web_seed(self.now, job, Err(refused));
                }
                TorrentOutput::Connect { conn, .. } => {
                    assert!(!self.open.contains(&conn), "connect reuses {conn:?}");
                    self.t.handle_connect_failed(self.now, conn);
                }
                TorrentOutput::Send { conn, data } => {
                    assert!(self.open.contains(&conn), "send on closed {conn:?}");
                    if let Some(i) = self.peer_of(conn) {
                        self.sent(i, &data);
                    }
                    self.t.handle_sent(self.now, conn, data.len());
                }
                TorrentOutput::Close { conn } => {
                    assert!(self.open.remove(&conn), "close of closed {conn:?}");
                    if let Some(i) = self.peer_of(conn) {
                        self.peers[i].conn = None;
                    }
                }
                TorrentOutput::Verify {
                    first,
                    pieces,
                    blocks,
                    slices,
                } => {
                    let data = blocks.concat();
                    let verdicts = crate::engine::run_verdicts(&pieces, &blocks);
                    let written = verdicts.iter().all(|&ok| ok) && !self.disk_full;
                    if written {
                        let mut at = 0;
                        for s in slices {
                            let len = s.length as usize;
                            // The single file is first; padding is not
                            // written.
                            if !s.padding {
                                let off = s.offset as usize;
                                self.disk[off..off + len].copy_from_slice(&data[at..at + len]);
                            }
                            at += len;
                        }
                    }
                    self.t
                        .handle_verified_run(self.now, first, &verdicts, written);
                }
                TorrentOutput::Read { conn, block, .. } => {
                    assert!(self.open.contains(&conn), "read for closed {conn:?}");
                    assert!(self.t.have().get(block.piece), "read of a piece we lack");
                    let start = (block.piece.0 * PIECE + block.offset) as usize;
                    let data = self.disk.get(start..start + block.length as usize);
                    assert!(data.is_some(), "read beyond the content: {block:?}");
                    let data = data.map(<[u8]>::to_vec);
                    self.t.handle_read(self.now, conn, block, data.as_deref());
                }
                TorrentOutput::Write { .. } | TorrentOutput::Check { .. } => {
                    panic!("pieces this small are verified in memory")
                }
                TorrentOutput::Announce { .. } => {}
                TorrentOutput::Event(e) => match e {
                    TorrentEvent::PeerBanned(addr) => {
                        self.banned.insert(addr);
                    }
                    TorrentEvent::PieceDone(p) => {
                        let r =
                            (p.0 * PIECE) as usize..((p.0 + 1) * PIECE).min(LENGTH as u32) as usize;
                        assert_eq!(
                            self.disk[r.clone()],
                            self.content[r],
                            "piece {p:?} done with the wrong data"
                        );
                    }
                    _ => {}
                },
            }
        }
        panic!("the torrent never stopped producing output");
    }

    fn apply(&mut self, op: SwarmOp) {
        let peer = |p: u8| usize::from(p) % PEERS;
        match op {
            SwarmOp::Bytes { peer: p, data } => self.send(peer(p), Bytes::from(data)),
            SwarmOp::Frame { peer: p, frame } => {
                let f = match frame {
                    PeerFrame::Choke => Frame::Choke,
                    PeerFrame::Unchoke => Frame::Unchoke,
                    PeerFrame::Interested => Frame::Interested,
                    PeerFrame::NotInterested => Frame::NotInterested,
                    PeerFrame::Have(x) => Frame::Have(PieceIndex(u32::from(x % 8))),
                    PeerFrame::Bitfield { bits, extra } => {
                        let mut b = bits & 0xfc;
                        if extra {
                            b |= bits & 3;
                        }
                        Frame::Bitfield(Bytes::from(vec![b]))
                    }
                    PeerFrame::HaveAll => Frame::HaveAll,
                    PeerFrame::HaveNone => Frame::HaveNone,
                    PeerFrame::Request {
                        piece,
                        block: b,
                        len,
                    } => Frame::Request(block(piece, b, u32::from(len).min(BLOCK_SIZE + 1))),
                    PeerFrame::Cancel { piece, block: b } => {
                        Frame::Cancel(block(piece, b, BLOCK_SIZE))
                    }
                    PeerFrame::Piece {
                        piece,
                        block: b,
                        len,
                        fill,
                    } => {
                        let r = block(piece, b, 0);
                        Frame::Piece {
                            piece: r.piece,
                            offset: r.offset,
                            data: Bytes::from(vec![
                                fill;
                                usize::from(len) % (BLOCK_SIZE as usize + 2)
                            ]),
                        }
                    }
                    PeerFrame::Reject { piece, block: b } => {
                        Frame::Reject(block(piece, b, BLOCK_SIZE))
                    }
                    PeerFrame::AllowedFast(x) => Frame::AllowedFast(PieceIndex(u32::from(x % 8))),
                    PeerFrame::Suggest(x) => Frame::Suggest(PieceIndex(u32::from(x % 8))),
                    PeerFrame::KeepAlive => Frame::KeepAlive,
                };
                self.send(peer(p), frame_bytes(&f));
            }
            SwarmOp::Answer {
                peer: p,
                which,
                honest,
            } => {
                let i = peer(p);
                let asked = &mut self.peers[i].asked;
                if asked.is_empty() {
                    return;
                }
                let b = asked.remove(usize::from(which) % asked.len());
                let start = (b.piece.0 * PIECE + b.offset) as usize;
                let Some(real) = self.content.get(start..start + b.length as usize) else {
                    return;
                };
                let data = if honest {
                    real.to_vec()
                } else {
                    real.iter().map(|x| x ^ 0x5a).collect()
                };
                let f = Frame::Piece {
                    piece: b.piece,
                    offset: b.offset,
                    data: Bytes::from(data),
                };
                self.send(i, frame_bytes(&f));
            }
            SwarmOp::AnswerAll { peer: p, corrupt } => {
                let i = peer(p);
                let asked = std::mem::take(&mut self.peers[i].asked);
                let mut out = Vec::new();
                for (n, b) in asked.iter().enumerate() {
                    let start = (b.piece.0 * PIECE + b.offset) as usize;
                    let Some(real) = self.content.get(start..start + b.length as usize) else {
                        continue;
                    };
                    let data = if corrupt & (1 << (n % 8)) == 0 {
                        real.to_vec()
                    } else {
                        real.iter().map(|x| x ^ 0x5a).collect()
                    };
                    Frame::Piece {
                        piece: b.piece,
                        offset: b.offset,
                        data: Bytes::from(data),
                    }
                    .encode(&mut out);
                }
                self.send(i, Bytes::from(out));
            }
            SwarmOp::Cooperate { peer: p } => {
                let mut out = Vec::new();
                for f in [Frame::HaveAll, Frame::Unchoke, Frame::Interested] {
                    f.encode(&mut out);
                }
                self.send(peer(p), Bytes::from(out));
            }
            SwarmOp::ExtHandshake {
                peer: p,
                pex,
                metadata,
                size,
            } => {
                let i = peer(p);
                let mut payload = Vec::new();
                ExtensionHandshake {
                    messages: vec![("ut_metadata".into(), metadata), ("ut_pex".into(), pex)],
                    metadata_size: Some(u64::from(size)),
                    ..ExtensionHandshake::default()
                }
                .encode(&mut payload);
                self.peers[i].metadata_id = metadata;
                let f = Frame::Extended {
                    id: 0,
                    payload: Bytes::from(payload),
                };
                self.send(i, frame_bytes(&f));
            }
            SwarmOp::Pex {
                peer: p,
                added,
                dropped,
            } => {
                let m = PexMessage {
                    added: added
                        .iter()
                        .map(|&(a, port, flags)| {
                            (
                                SocketAddr::from(([10, 9, a % 4, a], port.max(1))),
                                PexFlags(flags),
                            )
                        })
                        .collect(),
                    dropped: dropped
                        .iter()
                        .map(|&(a, port)| SocketAddr::from(([10, 9, 0, a], port.max(1))))
                        .collect(),
                };
                let mut payload = Vec::new();
                m.encode(&mut payload);
                let f = Frame::Extended {
                    id: OUR_UT_PEX,
                    payload: Bytes::from(payload),
                };
                self.send(peer(p), frame_bytes(&f));
            }
            SwarmOp::Metadata {
                peer: p,
                kind,
                piece,
            } => {
                let piece = u32::from(piece % 4);
                let m = match kind % 3 {
                    0 => MetadataMessage::Request { piece },
                    1 => MetadataMessage::Reject { piece },
                    _ => MetadataMessage::Data {
                        piece,
                        total_size: self.metadata.len() as u64,
                        data: Bytes::from(vec![1u8; 100]),
                    },
                };
                let mut payload = Vec::new();
                m.encode(&mut payload);
                let f = Frame::Extended {
                    id: OUR_UT_METADATA,
                    payload: Bytes::from(payload),
                };
                self.send(peer(p), frame_bytes(&f));
            }
            SwarmOp::HashRequest {
                peer: p,
                index,
                length,
                proof_layers,
                other_root,
            } => {
                let root = self.tree.as_ref().map_or([0; 32], |(r, _)| *r);
                let f = Frame::HashRequest(HashRequest {
                    pieces_root: if other_root { [7; 32] } else { root },
                    base_layer: 0,
                    // Around the file's 16 leaves, so most requests are
                    // about real ones.
                    index: u32::from(index % 20),
                    length: u32::from(length % 5),
                    proof_layers: u32::from(proof_layers % 6),
                });
                self.send(peer(p), frame_bytes(&f));
            }
            SwarmOp::Hashes { peer: p, honest } => {
                let i = peer(p);
                let asked = std::mem::take(&mut self.peers[i].hashes_asked);
                let Some((_, leaves)) = self.tree.as_ref() else {
                    return;
                };
                let mut out = Vec::new();
                for request in asked {
                    let (at, n) = (request.index as usize, request.length as usize);
                    let Some(real) = leaves.get(at..at + n) else {
                        continue;
                    };
                    let hashes: Vec<Hash> = if honest {
                        real.to_vec()
                    } else {
                        real.iter().map(|h| h.map(|b| !b)).collect()
                    };
                    Frame::Hashes {
                        request,
                        hashes: HashList::from_hashes(&hashes),
                    }
                    .encode(&mut out);
                }
                self.send(i, Bytes::from(out));
            }
            SwarmOp::DiskFull(full) => self.disk_full = full,
            SwarmOp::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms) * 20);
                self.t.handle_timeout(self.now);
            }
            SwarmOp::Close { peer: p } => {
                let i = peer(p);
                if let Some(c) = self.peers[i].conn.take() {
                    self.open.remove(&c);
                    self.t.handle_closed(self.now, c);
                }
            }
            SwarmOp::Reconnect { peer: p } => {
                let i = peer(p);
                if self.peers[i].conn.is_none() {
                    self.connect(i);
                }
            }
        }
        self.drain();
        self.check();
    }

    fn check(&self) {
        self.t.check_invariants().expect("torrent invariants");
        self.t.check_picker().expect("picker invariants");
        for p in self.t.have().iter() {
            let r = (p.0 * PIECE) as usize..((p.0 + 1) * PIECE).min(LENGTH as u32) as usize;
            assert_eq!(
                self.disk[r.clone()],
                self.content[r],
                "piece {p:?} counted as had with the wrong data on disk"
            );
        }
        assert!(self.t.peer_count() <= PEERS, "more peers than connected");
        assert!(
            self.t.buffered_bytes()
                <= self.t.max_buffered_bytes() + 5 * 256 * u64::from(BLOCK_SIZE)
        );
    }
}

/// torrent_swarm: a torrent with two of six pieces on disk among four
/// hostile peers that send raw bytes or well-formed frames (have and
/// bitfields against the picker, requests, pieces, rejects, allowed-fast,
/// suggest), answer our requests (one or all at once) with the real block or
/// garbage, cooperate (have all, unchoke, interested), send
/// extension handshakes, PEX and ut_metadata messages, close and come
/// back, while the clock moves and the disk (simulated in memory, writes
/// only what verified) fills up now and then. After every step the
/// torrent's own invariants and its picker's hold; every piece it counts
/// as had is the real content on disk; every byte it uploads is the real
/// content and every metadata piece the real info dictionary; it never
/// requests what it has, reads what it lacks, or speaks on a closed
/// connection; a banned peer is never let back in.
pub fn torrent_swarm(data: &[u8]) {
    run_swarm(data, false);
}

/// torrent_swarm_v2: the same swarm over a v2-only torrent (one file of
/// six 32 KiB pieces, two leaves each), whose peers also ask for leaf
/// hashes (any index, length and proof, of the file's root or another)
/// and answer ours, honestly or not. On top of `torrent_swarm`'s checks:
/// every leaf answer we send is the real leaves with as many uncles as
/// asked and, with a full proof, comes to the file's root; we only ever
/// ask for leaves (a failed piece's).
pub fn torrent_swarm_v2(data: &[u8]) {
    run_swarm(data, true);
}

fn run_swarm(data: &[u8], v2: bool) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<SwarmOp>>() else {
        return;
    };
    let mut s = Swarm::new(v2);
    s.drain();
    s.check();
    for op in ops {
        s.apply(op);
    }
}
