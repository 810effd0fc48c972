//! The upload path seen from a peer on the wire: a run of requests for
//! adjacent blocks of one piece is read from disk at once, every block of
//! it is sent in the order asked, and a failed read refuses them all.

use super::*;
use crate::wire::{Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};

const PIECE: u32 = 256 * 1024;

/// A seeder of `data` that has checked it, and a peer (`conn`) that has
/// shaken hands (fast extension on), said it is interested and been
/// unchoked; the bytes the seeder sent it so far are decoded away.
fn unchoked_peer(data: &[u8]) -> (Torrent, ConnId, FrameDecoder) {
    let info = info_for(data, PIECE);
    let config = TorrentConfig {
        peer_id: PeerId([1; 20]),
        ..TorrentConfig::default()
    };
    let hash = info.info_hash;
    let t = Torrent::new(
        Instant::ZERO,
        info,
        config,
        StartMode::Check,
        Seed::from_u64(1),
    );
    let mut nodes = vec![Node::new(
        t,
        data.to_vec(),
        "127.0.0.1:1001".parse().unwrap(),
    )];
    run(&mut nodes, &mut BTreeMap::new(), Instant::ZERO, &mut 0);
    let mut t = nodes.pop().unwrap().t;
    assert_eq!(
        t.state(),
        TorrentState::Seeding,
        "the seeder checked its data"
    );

    let conn = ConnId::new(7);
    assert!(t.handle_incoming(Instant::ZERO, conn, "127.0.0.1:2002".parse().unwrap()));
    let mut hello = Vec::new();
    Handshake {
        reserved: Reserved::FAST.with(Reserved::EXTENSION),
        info_hash: hash,
        peer_id: PeerId([2; 20]),
    }
    .encode(&mut hello);
    Frame::Interested.encode(&mut hello);
    t.handle_bytes(Instant::ZERO, conn, &hello);
    let mut wire = FrameDecoder::new(FrameLimits::default());
    wire.push(&sent_to(&mut t, conn));
    assert!(wire.next_handshake().unwrap().is_some());
    let mut unchoked = false;
    while let Some(f) = wire.next_frame().unwrap() {
        unchoked |= f == Frame::Unchoke;
    }
    assert!(unchoked, "an interested peer of an idle seeder is unchoked");
    (t, conn, wire)
}

/// Everything `t` sent to `conn` since last asked (reads left queued).
fn sent_to(t: &mut Torrent, conn: ConnId) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut keep = Vec::new();
    while let Some(o) = t.poll_output() {
        match o {
            TorrentOutput::Send { conn: c, data } if c == conn => bytes.extend(data),
            TorrentOutput::Read { .. } => keep.push(o),
            _ => {}
        }
    }
    t.out.extend(keep);
    bytes
}

/// The reads `t` asks for: (block, span of the file).
fn reads(t: &mut Torrent) -> Vec<BlockRef> {
    let mut reads = Vec::new();
    let mut keep = Vec::new();
    while let Some(o) = t.poll_output() {
        match o {
            TorrentOutput::Read { block, .. } => reads.push(block),
            other => keep.push(other),
        }
    }
    t.out.extend(keep);
    reads
}

fn block(piece: u32, index: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        offset: index * BLOCK_SIZE,
        length: BLOCK_SIZE,
    }
}

fn span(piece: u32, first: u32, blocks: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        offset: first * BLOCK_SIZE,
        length: blocks * BLOCK_SIZE,
    }
}

fn bytes_of(data: &[u8], b: BlockRef) -> &[u8] {
    let at = (b.piece.0 * PIECE + b.offset) as usize;
    &data[at..at + b.length as usize]
}

#[test]
fn a_run_of_requests_is_one_read_and_every_block_goes_out_in_order() {
    let data = content(3 * PIECE as usize);
    let (mut t, conn, mut wire) = unchoked_peer(&data);

    // One batch from the peer: piece 0 whole, then blocks 4 and 5 of
    // piece 2, then block 9 of piece 1 and block 3 of piece 2 again.
    let asked: Vec<BlockRef> = (0..16)
        .map(|i| block(0, i))
        .chain([block(2, 4), block(2, 5), block(1, 9), block(2, 3)])
        .collect();
    let mut batch = Vec::new();
    for b in &asked {
        Frame::Request(*b).encode(&mut batch);
    }
    t.handle_bytes(Instant::ZERO, conn, &batch);
    assert_eq!(
        reads(&mut t),
        [span(0, 0, 16), span(2, 4, 2), span(1, 9, 1), span(2, 3, 1)],
        "adjacent requests of one piece in a row are read at once, others not"
    );

    // The reads finish in another order than they were issued.
    for s in [span(2, 3, 1), span(0, 0, 16), span(1, 9, 1), span(2, 4, 2)] {
        t.handle_read(Instant::ZERO, conn, s, Some(bytes_of(&data, s)));
    }
    wire.push(&sent_to(&mut t, conn));
    let mut got = Vec::new();
    while let Some(f) = wire.next_frame().unwrap() {
        if let Frame::Piece {
            piece,
            offset,
            data: bytes,
        } = f
        {
            let b = BlockRef {
                piece,
                offset,
                length: bytes.len() as u32,
            };
            assert!(&bytes[..] == bytes_of(&data, b), "the bytes of {b:?}");
            got.push(b);
        }
    }
    let in_read_order: Vec<BlockRef> = [block(2, 3)]
        .into_iter()
        .chain((0..16).map(|i| block(0, i)))
        .chain([block(1, 9), block(2, 4), block(2, 5)])
        .collect();
    assert_eq!(got, in_read_order);
    assert_eq!(t.counters().0, 20 * u64::from(BLOCK_SIZE), "uploaded");
}

#[test]
fn a_read_that_fails_refuses_every_block_of_it_and_a_cancelled_one_is_skipped() {
    let data = content(2 * PIECE as usize);
    let (mut t, conn, mut wire) = unchoked_peer(&data);
    let mut batch = Vec::new();
    for i in 0..4 {
        Frame::Request(block(1, i)).encode(&mut batch);
    }
    for i in 0..3 {
        Frame::Request(block(0, i)).encode(&mut batch);
    }
    t.handle_bytes(Instant::ZERO, conn, &batch);
    assert_eq!(reads(&mut t), [span(1, 0, 4), span(0, 0, 3)]);
    let mut cancel = Vec::new();
    Frame::Cancel(block(0, 1)).encode(&mut cancel);
    t.handle_bytes(Instant::ZERO, conn, &cancel);

    t.handle_read(Instant::ZERO, conn, span(1, 0, 4), None);
    let whole = span(0, 0, 3);
    t.handle_read(Instant::ZERO, conn, whole, Some(bytes_of(&data, whole)));
    wire.push(&sent_to(&mut t, conn));
    let (mut rejected, mut pieces) = (Vec::new(), Vec::new());
    while let Some(f) = wire.next_frame().unwrap() {
        match f {
            Frame::Reject(b) => rejected.push(b),
            Frame::Piece { piece, offset, .. } => pieces.push((piece.0, offset / BLOCK_SIZE)),
            _ => {}
        }
    }
    assert_eq!(rejected, (0..4).map(|i| block(1, i)).collect::<Vec<_>>());
    assert_eq!(pieces, [(0, 0), (0, 2)], "block 1 was cancelled");
}

#[test]
fn a_peer_that_does_not_read_gets_a_window_of_reads_and_no_more() {
    let data = content(24 * PIECE as usize);
    let (mut t, conn, mut wire) = unchoked_peer(&data);
    let mut batch = Vec::new();
    for piece in 0..24 {
        for i in 0..16 {
            Frame::Request(block(piece, i)).encode(&mut batch);
        }
    }
    t.handle_bytes(Instant::ZERO, conn, &batch);

    // 6 MiB asked of a peer we have sent nothing yet: 1 MiB read (the
    // window's floor), and none more while the connection has not
    // written what those became.
    let mut now = Instant::ZERO;
    let mut asked = reads(&mut t);
    assert_eq!(asked, (0..4).map(|p| span(p, 0, 16)).collect::<Vec<_>>());
    let mut read = Vec::new();
    while !asked.is_empty() {
        for s in &asked {
            t.handle_read(now, conn, *s, Some(bytes_of(&data, *s)));
        }
        read.extend(asked);
        let sent = sent_to(&mut t, conn);
        assert!(reads(&mut t).is_empty(), "read beyond the window");
        wire.push(&sent);
        // A second later the socket has taken it all: the next reads,
        // never more than the window's ceiling at once.
        now += Duration::from_secs(1);
        t.handle_sent(now, conn, sent.len());
        asked = reads(&mut t);
        assert!(asked.len() <= 32, "{} reads at once", asked.len());
    }
    assert_eq!(read, (0..24).map(|p| span(p, 0, 16)).collect::<Vec<_>>());
    let mut pieces = 0;
    while let Some(f) = wire.next_frame().unwrap() {
        if let Frame::Piece { piece, offset, .. } = f {
            assert_eq!((piece.0, offset), (pieces / 16, pieces % 16 * BLOCK_SIZE));
            pieces += 1;
        }
    }
    assert_eq!(pieces, 24 * 16, "every block, in the order asked");
}
