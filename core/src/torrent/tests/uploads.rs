//! The upload path seen from a peer on the wire: a run of requests for
//! adjacent blocks of one piece is read from disk at once, every block of
//! it is sent in the order asked, and a failed read refuses them all.

use super::choker::SeedChoking;
use super::*;
use crate::wire::{Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};

const PIECE: u32 = 256 * 1024;

/// A seeder of `data` (in 256 KiB pieces) that has checked it.
fn seeder(data: &[u8], config: TorrentConfig) -> Torrent {
    let info = info_for(data, PIECE);
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
    let t = nodes.pop().unwrap().t;
    assert_eq!(
        t.state(),
        TorrentState::Seeding,
        "the seeder checked its data"
    );
    t
}

fn our_config() -> TorrentConfig {
    TorrentConfig {
        peer_id: PeerId([1; 20]),
        ..TorrentConfig::default()
    }
}

/// Peer `n` connects to `t` (fast extension on) and says it is
/// interested; what `t` sent it so far is decoded: whether it was
/// unchoked, and its allowed-fast pieces (BEP 6).
fn interested_peer(t: &mut Torrent, n: u8) -> (ConnId, FrameDecoder, bool, Vec<PieceIndex>) {
    // Far from the ids the torrent gives its own dials.
    let conn = ConnId::new(1000 + u64::from(n));
    let addr = SocketAddr::from(([127, 0, 0, n], 2002));
    assert!(t.handle_incoming(Instant::ZERO, conn, addr));
    let mut hello = Vec::new();
    Handshake {
        reserved: Reserved::FAST.with(Reserved::EXTENSION),
        info_hash: t.info_hash(),
        peer_id: PeerId([100 + n; 20]),
    }
    .encode(&mut hello);
    Frame::Interested.encode(&mut hello);
    t.handle_bytes(Instant::ZERO, conn, &hello);
    let mut wire = FrameDecoder::new(FrameLimits::default());
    wire.push(&sent_to(t, conn));
    assert!(wire.next_handshake().unwrap().is_some());
    let (mut unchoked, mut allowed_fast) = (false, Vec::new());
    while let Some(f) = wire.next_frame().unwrap() {
        match f {
            Frame::Unchoke => unchoked = true,
            Frame::AllowedFast(piece) => allowed_fast.push(piece),
            _ => {}
        }
    }
    (conn, wire, unchoked, allowed_fast)
}

/// Whether an unchoke is among the frames waiting in `wire`.
fn unchoked(wire: &mut FrameDecoder) -> bool {
    let mut unchoked = false;
    while let Some(f) = wire.next_frame().unwrap() {
        unchoked |= f == Frame::Unchoke;
    }
    unchoked
}

/// A seeder and a peer (`conn`) that has shaken hands, said it is
/// interested and been unchoked.
fn unchoked_peer(data: &[u8]) -> (Torrent, ConnId, FrameDecoder) {
    let mut t = seeder(data, our_config());
    let (conn, wire, unchoked, _) = interested_peer(&mut t, 7);
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

#[test]
fn a_slot_freed_by_a_peer_that_finished_or_left_goes_to_a_waiting_one_at_once() {
    let data = content(2 * PIECE as usize);
    let config = TorrentConfig {
        unchoke_slots: 1,
        optimistic_unchoke: false,
        ..our_config()
    };
    let mut t = seeder(&data, config);
    let (a, _, a_unchoked, _) = interested_peer(&mut t, 1);
    let (b, mut b_wire, b_unchoked, _) = interested_peer(&mut t, 2);
    let (c, mut c_wire, c_unchoked, _) = interested_peer(&mut t, 3);
    assert!(a_unchoked && !b_unchoked && !c_unchoked, "one slot");

    // A has everything now: it is no longer interested, and one of the
    // waiting peers takes its slot without waiting for the choke round.
    let mut done = Vec::new();
    Frame::NotInterested.encode(&mut done);
    t.handle_bytes(Instant::ZERO, a, &done);
    let b_now = {
        b_wire.push(&sent_to(&mut t, b));
        unchoked(&mut b_wire)
    };
    c_wire.push(&sent_to(&mut t, c));
    let c_now = unchoked(&mut c_wire);
    assert!(
        b_now ^ c_now,
        "exactly one waiting peer unchoked: {b_now} {c_now}"
    );

    // The one served leaves: the other gets the slot.
    let (served, mut other_wire, other) = if b_now {
        (b, c_wire, c)
    } else {
        (c, b_wire, b)
    };
    t.handle_closed(Instant::ZERO, served);
    other_wire.push(&sent_to(&mut t, other));
    assert!(unchoked(&mut other_wire), "the last waiting peer unchoked");
}

/// Requests for every block of pieces `pieces`, as one batch.
fn ask(t: &mut Torrent, conn: ConnId, pieces: std::ops::Range<u32>) {
    let mut batch = Vec::new();
    for piece in pieces {
        for i in 0..16 {
            Frame::Request(block(piece, i)).encode(&mut batch);
        }
    }
    t.handle_bytes(t.now, conn, &batch);
}

#[test]
fn a_peer_choked_with_requests_held_is_served_once_unchoked_again() {
    let data = content(24 * PIECE as usize);
    let config = TorrentConfig {
        unchoke_slots: 1,
        optimistic_unchoke: false,
        seed_choking: SeedChoking::RoundRobin,
        ..our_config()
    };
    let mut t = seeder(&data, config);
    let (a, mut a_wire, a_unchoked, allowed_fast) = interested_peer(&mut t, 1);
    let _b = interested_peer(&mut t, 2);
    assert!(a_unchoked);

    // A asks for 6 MiB: a window's worth is read and sent at a time.
    // Choke rounds go round (10 s A, 20 s B, 30 s A); what A's socket
    // took is reported at each.
    ask(&mut t, a, 0..24);
    let mut now = Instant::ZERO;
    let mut choked_at = None;
    for round in 0..4 {
        let asked = reads(&mut t);
        if choked_at.is_some() {
            // BEP 6: requests for its allowed-fast pieces stand.
            assert!(
                asked.iter().all(|s| allowed_fast.contains(&s.piece)),
                "read for A while choked: {asked:?}"
            );
        }
        for s in asked {
            t.handle_read(now, a, s, Some(bytes_of(&data, s)));
        }
        let sent = sent_to(&mut t, a);
        a_wire.push(&sent);
        while let Some(f) = a_wire.next_frame().unwrap() {
            match f {
                Frame::Choke => choked_at = Some(round),
                Frame::Unchoke => choked_at = None,
                _ => {}
            }
        }
        t.handle_sent(now, a, sent.len());
        if round == 3 {
            break;
        }
        now += Duration::from_secs(10);
        t.handle_timeout(now);
    }
    assert_eq!(choked_at, None, "A unchoked again at 30 s");

    // Unchoked again with nothing in flight, A asks anew: it is read at
    // once (after what is left of its allowed-fast pieces), not held
    // behind what it asked before its choke.
    ask(&mut t, a, 0..1);
    let asked = reads(&mut t);
    assert_eq!(asked.last(), Some(&span(0, 0, 16)), "{asked:?}");
    let before = &asked[..asked.len() - 1];
    assert!(
        before.iter().all(|s| allowed_fast.contains(&s.piece)),
        "{asked:?}"
    );
}
