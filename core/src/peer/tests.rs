//! Two sessions back to back, bytes shuttled by hand on a fake clock.

use std::net::Ipv4Addr;

use super::*;

const PIECES: u32 = 20;
const HASH: InfoHash = InfoHash([7; 20]);

fn all_ext() -> Reserved {
    Reserved::DHT.with(Reserved::FAST).with(Reserved::EXTENSION)
}

fn session(dir: Direction, id: u8, reserved: Reserved) -> PeerSession {
    PeerSession::new(
        Instant::ZERO,
        SessionConfig::default(),
        dir,
        HASH,
        PeerId([id; 20]),
        reserved,
        PIECES,
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
    )
}

/// Moves bytes both ways until quiet; returns each side's events.
fn pump(
    now: Instant,
    a: &mut PeerSession,
    b: &mut PeerSession,
) -> (Vec<PeerEvent>, Vec<PeerEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let mut buf = Vec::new();
        let n1 = a.poll_transmit(&mut buf);
        if n1 > 0 {
            b.handle_bytes(now, &buf);
        }
        let mut buf = Vec::new();
        let n2 = b.poll_transmit(&mut buf);
        if n2 > 0 {
            a.handle_bytes(now, &buf);
        }
        while let Some(e) = a.poll_event() {
            ea.push(e);
        }
        while let Some(e) = b.poll_event() {
            eb.push(e);
        }
        if n1 == 0 && n2 == 0 {
            return (ea, eb);
        }
    }
}

fn connected(reserved: Reserved, seed_pieces: &Bitfield) -> (PeerSession, PeerSession) {
    let mut a = session(Direction::Outgoing, 1, reserved);
    let mut b = session(Direction::Incoming, 2, reserved);
    let (ea, eb) = pump(Instant::ZERO, &mut a, &mut b);
    assert!(matches!(ea[0], PeerEvent::Connected { peer_id, .. } if peer_id == PeerId([2; 20])));
    assert!(matches!(eb[0], PeerEvent::Connected { peer_id, .. } if peer_id == PeerId([1; 20])));
    a.start(Instant::ZERO, &Bitfield::new(PIECES), None);
    b.start(Instant::ZERO, seed_pieces, None);
    pump(Instant::ZERO, &mut a, &mut b);
    (a, b)
}

#[test]
fn handshake_bitfield_interest_unchoke_request_block() {
    let (mut a, mut b) = connected(all_ext(), &Bitfield::full(PIECES));
    assert_eq!(*a.remote_pieces(), RemotePieces::All);
    assert!(a.remote_extensions().is_some());
    a.set_interested(Instant::ZERO, true);
    let (_, eb) = pump(Instant::ZERO, &mut a, &mut b);
    assert_eq!(eb, vec![PeerEvent::Interested]);
    b.unchoke(Instant::ZERO);
    let (ea, _) = pump(Instant::ZERO, &mut a, &mut b);
    assert!(ea.contains(&PeerEvent::Unchoked));
    let room = a.request_room(Instant::ZERO);
    assert!(room >= 4, "{room}");
    let blk = BlockRef {
        piece: PieceIndex(3),
        offset: 0,
        length: BLOCK_SIZE,
    };
    a.request(Instant::ZERO, &[blk]);
    let (_, eb) = pump(Instant::ZERO, &mut a, &mut b);
    assert_eq!(eb, vec![PeerEvent::Request(blk)]);
    b.send_block(Instant::ZERO, blk, &vec![5u8; BLOCK_SIZE as usize]);
    let (ea, _) = pump(Instant::ZERO, &mut a, &mut b);
    match &ea[..] {
        [PeerEvent::Block { block, data }] => {
            assert_eq!(*block, blk);
            assert!(data.iter().all(|&x| x == 5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.totals().0, u64::from(BLOCK_SIZE));
    assert_eq!(b.totals().1, u64::from(BLOCK_SIZE));
}

#[test]
fn wrong_torrent_and_self_connections_are_refused() {
    let mut a = session(Direction::Outgoing, 1, all_ext());
    let mut other = PeerSession::new(
        Instant::ZERO,
        SessionConfig::default(),
        Direction::Incoming,
        InfoHash([8; 20]),
        PeerId([2; 20]),
        all_ext(),
        PIECES,
        None,
    );
    let (_, eb) = pump(Instant::ZERO, &mut a, &mut other);
    assert_eq!(
        eb,
        vec![PeerEvent::Closed(CloseReason::Protocol(
            PeerError::WrongInfoHash
        ))]
    );

    let mut a = session(Direction::Outgoing, 1, all_ext());
    let mut me = session(Direction::Incoming, 1, all_ext());
    let (_, eb) = pump(Instant::ZERO, &mut a, &mut me);
    assert_eq!(
        eb,
        vec![PeerEvent::Closed(CloseReason::Protocol(
            PeerError::ConnectedToSelf
        ))]
    );
}

#[test]
fn choke_without_fast_drops_requests_and_with_fast_rejects() {
    // Without BEP 6: the choke itself drops our requests.
    let (mut a, mut b) = connected(Reserved::NONE, &Bitfield::full(PIECES));
    a.set_interested(Instant::ZERO, true);
    b.unchoke(Instant::ZERO);
    pump(Instant::ZERO, &mut a, &mut b);
    let blk = BlockRef {
        piece: PieceIndex(1),
        offset: 0,
        length: BLOCK_SIZE,
    };
    a.request(Instant::ZERO, &[blk]);
    pump(Instant::ZERO, &mut a, &mut b);
    b.choke(Instant::ZERO);
    let (ea, _) = pump(Instant::ZERO, &mut a, &mut b);
    assert_eq!(
        ea,
        vec![PeerEvent::Choked, PeerEvent::RequestsDropped(vec![blk])]
    );

    // With BEP 6: the chokers rejects each pending request explicitly.
    let (mut a, mut b) = connected(all_ext(), &Bitfield::full(PIECES));
    a.set_interested(Instant::ZERO, true);
    b.unchoke(Instant::ZERO);
    pump(Instant::ZERO, &mut a, &mut b);
    // Use a piece outside the allowed-fast set.
    let allowed = allowed_fast_set(Ipv4Addr::LOCALHOST, &HASH, PIECES, 10);
    let piece = (0..PIECES)
        .map(PieceIndex)
        .find(|p| !allowed.contains(p))
        .unwrap();
    let blk = BlockRef {
        piece,
        offset: 0,
        length: BLOCK_SIZE,
    };
    a.request(Instant::ZERO, &[blk]);
    pump(Instant::ZERO, &mut a, &mut b);
    b.choke(Instant::ZERO);
    let (ea, _) = pump(Instant::ZERO, &mut a, &mut b);
    assert_eq!(
        ea,
        vec![PeerEvent::Choked, PeerEvent::RequestsDropped(vec![blk])]
    );
}

#[test]
fn allowed_fast_pieces_can_be_requested_while_choked() {
    let (mut a, mut b) = connected(all_ext(), &Bitfield::full(PIECES));
    let allowed = allowed_fast_set(Ipv4Addr::LOCALHOST, &HASH, PIECES, 10);
    assert_eq!(a.allowed_fast_in(), &allowed[..]);
    a.set_interested(Instant::ZERO, true);
    pump(Instant::ZERO, &mut a, &mut b);
    assert!(a.peer_choking());
    assert!(a.request_room(Instant::ZERO) > 0);
    let blk = BlockRef {
        piece: allowed[0],
        offset: 0,
        length: BLOCK_SIZE,
    };
    a.request(Instant::ZERO, &[blk]);
    let (_, eb) = pump(Instant::ZERO, &mut a, &mut b);
    assert_eq!(eb, vec![PeerEvent::Request(blk)]);
}

#[test]
fn requests_time_out_and_the_peer_is_snubbed() {
    let (mut a, mut b) = connected(all_ext(), &Bitfield::full(PIECES));
    a.set_interested(Instant::ZERO, true);
    b.unchoke(Instant::ZERO);
    pump(Instant::ZERO, &mut a, &mut b);
    let blocks: Vec<BlockRef> = (0..3)
        .map(|i| BlockRef {
            piece: PieceIndex(i),
            offset: 0,
            length: BLOCK_SIZE,
        })
        .collect();
    a.request(Instant::ZERO, &blocks);
    pump(Instant::ZERO, &mut a, &mut b);
    let t = a.poll_timeout().unwrap();
    assert_eq!(t, Instant::ZERO + Duration::from_secs(30));
    a.handle_timeout(t);
    assert_eq!(
        a.poll_event(),
        Some(PeerEvent::RequestsDropped(blocks.clone()))
    );
    assert!(a.is_snubbed());
    assert_eq!(a.request_room(t), 1);
    // A late block is tolerated, and ends the snub.
    b.send_block(t, blocks[0], &vec![0u8; BLOCK_SIZE as usize]);
    let (ea, _) = pump(t, &mut a, &mut b);
    assert!(matches!(ea[0], PeerEvent::Block { .. }));
    assert!(!a.is_snubbed());
}

#[test]
fn keepalives_and_inactivity() {
    let (mut a, mut b) = connected(all_ext(), &Bitfield::new(PIECES));
    let t = a.poll_timeout().unwrap();
    assert_eq!(t, Instant::ZERO + Duration::from_secs(120));
    a.handle_timeout(t);
    let mut buf = Vec::new();
    let _ = a.poll_transmit(&mut buf);
    assert_eq!(buf, vec![0, 0, 0, 0]);
    b.handle_bytes(t, &buf);
    // `a` hears nothing: after the inactivity limit it gives up.
    let end = Instant::ZERO + Duration::from_secs(300);
    a.handle_timeout(end);
    assert_eq!(
        a.poll_event(),
        Some(PeerEvent::Closed(CloseReason::Protocol(
            PeerError::Inactive
        )))
    );
    assert!(a.is_closed());
}

#[test]
fn unrequested_blocks_past_the_tolerance_drop_the_peer() {
    let (mut a, _) = connected(all_ext(), &Bitfield::full(PIECES));
    let mut bytes = Vec::new();
    for i in 0..=SessionConfig::default().unrequested_tolerance {
        Frame::Piece {
            piece: PieceIndex(i % PIECES),
            offset: 0,
            data: Bytes::from_static(&[1; 16]),
        }
        .encode(&mut bytes);
    }
    a.handle_bytes(Instant::ZERO, &bytes);
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(
        events,
        vec![PeerEvent::Closed(CloseReason::Protocol(
            PeerError::UnrequestedPiece
        ))]
    );
}

#[test]
fn protocol_violations_close_with_a_reason() {
    let cases: Vec<(Vec<u8>, PeerError)> = vec![
        (
            {
                let mut v = Vec::new();
                Frame::Have(PieceIndex(PIECES)).encode(&mut v);
                v
            },
            PeerError::RequestOutOfRange,
        ),
        (
            {
                let mut v = Vec::new();
                Frame::Request(BlockRef {
                    piece: PieceIndex(0),
                    offset: 0,
                    length: BLOCK_SIZE + 1,
                })
                .encode(&mut v);
                v
            },
            PeerError::RequestOutOfRange,
        ),
        (
            {
                let mut v = Vec::new();
                Frame::Reject(BlockRef {
                    piece: PieceIndex(0),
                    offset: 0,
                    length: 1,
                })
                .encode(&mut v);
                v
            },
            PeerError::UnexpectedMessage,
        ),
        (
            vec![0, 0, 0, 2, 0, 0xff],
            PeerError::Malformed(crate::DecodeError::new(
                crate::DecodeErrorKind::InvalidLength,
                0,
                "message without payload",
            )),
        ),
    ];
    for (bytes, expected) in cases {
        let (mut a, _) = connected(all_ext(), &Bitfield::full(PIECES));
        a.handle_bytes(Instant::ZERO, &bytes);
        let last = std::iter::from_fn(|| a.poll_event()).last();
        match (last, expected) {
            (
                Some(PeerEvent::Closed(CloseReason::Protocol(PeerError::Malformed(_)))),
                PeerError::Malformed(_),
            ) => {}
            (Some(PeerEvent::Closed(CloseReason::Protocol(e))), x) => assert_eq!(e, x),
            (other, x) => panic!("expected {x:?}, got {other:?}"),
        }
    }
}

#[test]
fn bytes_one_at_a_time_give_the_same_events() {
    let mut a = session(Direction::Outgoing, 1, all_ext());
    let mut b = session(Direction::Incoming, 2, all_ext());
    let mut buf = Vec::new();
    let _ = a.poll_transmit(&mut buf);
    for byte in &buf {
        b.handle_bytes(Instant::ZERO, std::slice::from_ref(byte));
    }
    assert!(matches!(b.poll_event(), Some(PeerEvent::Connected { .. })));
}

#[test]
fn a_later_bitfield_counts_as_haves() {
    let (mut a, mut b) = connected(all_ext(), &Bitfield::new(PIECES));
    let mut first = Bitfield::new(PIECES);
    first.set(PieceIndex(1));
    let mut bytes = Vec::new();
    Frame::Bitfield(Bytes::copy_from_slice(first.as_bytes())).encode(&mut bytes);
    // `b` said have-none at start (fast extension); aria2 then sends a
    // bitfield with what it has gained.
    let _ = pump(Instant::ZERO, &mut a, &mut b);
    a.handle_bytes(Instant::ZERO, &bytes);
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(events, vec![PeerEvent::Have(PieceIndex(1))]);
    assert!(a.remote_has(PieceIndex(1)));
    assert!(!a.is_closed());
}

/// A magnet's session (no piece count yet) facing a seeder that sends
/// `seed_pieces` and then `have`s for `haves`.
fn metadata_session_with(reserved: Reserved, seed_pieces: &Bitfield, haves: &[u32]) -> PeerSession {
    let mut a = PeerSession::new_for_metadata(
        Instant::ZERO,
        SessionConfig::default(),
        Direction::Outgoing,
        HASH,
        PeerId([1; 20]),
        reserved,
        None,
    );
    let mut b = session(Direction::Incoming, 2, reserved);
    let _ = pump(Instant::ZERO, &mut a, &mut b);
    a.start(Instant::ZERO, &Bitfield::new(0), None);
    b.start(Instant::ZERO, seed_pieces, None);
    let _ = pump(Instant::ZERO, &mut a, &mut b);
    let mut bytes = Vec::new();
    for &p in haves {
        Frame::Have(PieceIndex(p)).encode(&mut bytes);
    }
    a.handle_bytes(Instant::ZERO, &bytes);
    a
}

#[test]
fn pieces_told_before_the_metadata_are_kept_and_checked_once_it_is_in() {
    let mut some = Bitfield::new(PIECES);
    some.set(PieceIndex(3));
    for reserved in [Reserved::EXTENSION, all_ext()] {
        let mut a = metadata_session_with(reserved, &some, &[5]);
        assert!(!a.is_closed());
        assert_eq!(
            *a.remote_pieces(),
            RemotePieces::None,
            "unknown until the count is"
        );
        a.learn_piece_count(PIECES);
        let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert_eq!(events, vec![PeerEvent::PiecesKnown]);
        assert!(a.remote_has(PieceIndex(3)) && a.remote_has(PieceIndex(5)));
        assert!(!a.remote_has(PieceIndex(4)));
    }
    // Have-all (BEP 6) becomes a seed.
    let mut a = metadata_session_with(all_ext(), &Bitfield::full(PIECES), &[]);
    a.learn_piece_count(PIECES);
    assert_eq!(*a.remote_pieces(), RemotePieces::All);
}

#[test]
fn a_bitfield_of_the_wrong_length_or_a_have_out_of_range_closes_once_the_count_is_known() {
    let mut a = metadata_session_with(Reserved::EXTENSION, &Bitfield::full(PIECES), &[]);
    // The metadata says 100 pieces: a 20-piece bitfield is 3 bytes, not 13.
    a.learn_piece_count(100);
    assert!(a.is_closed());
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(matches!(
        events.last(),
        Some(PeerEvent::Closed(CloseReason::Protocol(_)))
    ));

    let mut a = metadata_session_with(all_ext(), &Bitfield::new(PIECES), &[30]);
    a.learn_piece_count(PIECES);
    assert!(a.is_closed());
}
