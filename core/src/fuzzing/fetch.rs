//! Torrent targets: a magnet's torrent fetching its metadata against
//! hostile peers, and going on after the handover.

#[derive(Debug, arbitrary::Arbitrary)]
enum FetchOp {
    /// Raw bytes from a peer.
    Bytes { peer: u8, data: Vec<u8> },
    /// A well-formed extension handshake.
    ExtHandshake { peer: u8, size: u32, id: u8 },
    /// A ut_metadata message with chosen fields and filler data.
    Metadata {
        peer: u8,
        msg_type: u8,
        piece: u8,
        total: u32,
        len: u16,
        fill: u8,
    },
    /// A correct piece of the real metadata.
    Honest { peer: u8, piece: u8 },
    /// The clock moves.
    Advance(u16),
    /// A peer's connection closes.
    Close { peer: u8 },
}

/// metadata_fetch: three peers of a magnet link send whatever they like
/// (raw bytes, handshakes with any metadata size, ut_metadata messages
/// with any fields, or honest pieces) while the clock moves. The torrent
/// never panics, never allocates for a size over the cap, and if it says
/// the metadata is in, it is the real info dictionary; it is then started
/// and the same peers go on talking to it.
pub fn metadata_fetch(data: &[u8]) {
    use std::time::Duration;

    use bytes::Bytes;
    use sha1::{Digest, Sha1};

    use crate::handles::ConnId;
    use crate::torrent::peers::PeerSource;
    use crate::torrent::{StartMode, Torrent, TorrentConfig, TorrentOutput, TorrentState};
    use crate::wire::{
        metadata_piece_count, ExtensionHandshake, Frame, Handshake, MetadataMessage, PeerId,
        Reserved, METADATA_PIECE,
    };
    use crate::{InfoHash, Instant, Seed};

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<FetchOp>>() else {
        return;
    };
    let real = info_dictionary();
    let pieces = metadata_piece_count(real.len() as u64) as usize;
    let hash = InfoHash(Sha1::digest(real).into());
    let mut now = Instant::ZERO;
    let mut f = Torrent::from_magnet(
        now,
        hash,
        Vec::new(),
        TorrentConfig::default(),
        Seed::from_u64(3),
    );
    let addrs: Vec<std::net::SocketAddr> = (0..3u8)
        .map(|i| std::net::SocketAddr::from(([10, 0, 0, i + 1], 6881)))
        .collect();
    f.add_peers(now, addrs.clone(), PeerSource::User);
    let mut conns: [Option<ConnId>; 3] = [None; 3];
    let reserved = Reserved::FAST.with(Reserved::EXTENSION);
    let frame = |fr: Frame| {
        let mut out = Vec::new();
        fr.encode(&mut out);
        Bytes::from(out)
    };
    let ext = |payload: Vec<u8>| Frame::Extended {
        id: 1,
        payload: Bytes::from(payload),
    };
    // Carry out connects (every peer answers with its handshake), forget
    // closed connections.
    let drain = |f: &mut Torrent, conns: &mut [Option<ConnId>; 3], now: Instant| {
        for _ in 0..64 {
            let Some(o) = f.poll_output() else {
                break;
            };
            match o {
                TorrentOutput::Connect { conn, addr } => {
                    let Some(i) = addrs.iter().position(|a| *a == addr) else {
                        continue;
                    };
                    conns[i] = Some(conn);
                    f.handle_connected(now, conn);
                    let mut hs = Vec::new();
                    Handshake {
                        reserved,
                        info_hash: hash,
                        peer_id: PeerId([i as u8 + 1; 20]),
                    }
                    .encode(&mut hs);
                    f.handle_chunk(now, conn, Bytes::from(hs));
                }
                TorrentOutput::Close { conn } => {
                    for c in conns.iter_mut() {
                        if *c == Some(conn) {
                            *c = None;
                        }
                    }
                }
                _ => {}
            }
        }
        if f.state() == TorrentState::AwaitingStart {
            f.start(now, StartMode::Fresh);
        }
    };
    drain(&mut f, &mut conns, now);
    for op in ops {
        let to = |peer: u8| conns[usize::from(peer % 3)];
        match op {
            FetchOp::Bytes { peer, data } => {
                if let Some(c) = to(peer) {
                    f.handle_chunk(now, c, Bytes::from(data));
                }
            }
            FetchOp::ExtHandshake { peer, size, id } => {
                if let Some(c) = to(peer) {
                    let mut p = Vec::new();
                    ExtensionHandshake {
                        messages: vec![("ut_metadata".into(), id)],
                        metadata_size: Some(u64::from(size)),
                        ..ExtensionHandshake::default()
                    }
                    .encode(&mut p);
                    f.handle_chunk(
                        now,
                        c,
                        frame(Frame::Extended {
                            id: 0,
                            payload: p.into(),
                        }),
                    );
                }
            }
            FetchOp::Metadata {
                peer,
                msg_type,
                piece,
                total,
                len,
                fill,
            } => {
                if let Some(c) = to(peer) {
                    let m = match msg_type % 3 {
                        0 => MetadataMessage::Request {
                            piece: piece.into(),
                        },
                        1 => MetadataMessage::Data {
                            piece: piece.into(),
                            total_size: u64::from(total),
                            data: Bytes::from(vec![fill; usize::from(len) % (METADATA_PIECE + 2)]),
                        },
                        _ => MetadataMessage::Reject {
                            piece: piece.into(),
                        },
                    };
                    let mut p = Vec::new();
                    m.encode(&mut p);
                    f.handle_chunk(now, c, frame(ext(p)));
                }
            }
            FetchOp::Honest { peer, piece } => {
                if let Some(c) = to(peer) {
                    let i = usize::from(piece) % pieces;
                    let start = i * METADATA_PIECE;
                    let end = (start + METADATA_PIECE).min(real.len());
                    let mut p = Vec::new();
                    MetadataMessage::Data {
                        piece: i as u32,
                        total_size: real.len() as u64,
                        data: Bytes::copy_from_slice(&real[start..end]),
                    }
                    .encode(&mut p);
                    f.handle_chunk(now, c, frame(ext(p)));
                }
            }
            FetchOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 10);
                f.handle_timeout(now);
            }
            FetchOp::Close { peer } => {
                if let Some(c) = to(peer) {
                    f.handle_closed(now, c);
                }
            }
        }
        drain(&mut f, &mut conns, now);
        if let Some(m) = f.metadata() {
            assert_eq!(
                m.as_ref(),
                real,
                "done with metadata that is not the real one"
            );
        }
        assert!(f.peer_count() <= 3);
    }
}

/// A real info dictionary of three metadata pieces (built once).
fn info_dictionary() -> &'static [u8] {
    use std::sync::OnceLock;

    use crate::metainfo::{Metainfo, TorrentBuilder};

    static INFO: OnceLock<Vec<u8>> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = TorrentBuilder::multi_file("m");
        for i in 0..900 {
            b.add_file(vec![format!("file-{i:05}.bin")], 100);
        }
        b.set_piece_length(16384);
        let hashes = vec![[7u8; 20]; 6];
        let bytes = b.build(&hashes).unwrap_or_default();
        Metainfo::from_bytes(&bytes)
            .map(|m| m.info.raw().to_vec())
            .unwrap_or_default()
    })
}
