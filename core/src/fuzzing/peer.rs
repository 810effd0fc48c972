//! The peer-session target: one `PeerSession` under an arbitrary list of
//! network input, commands and clock steps.

#[derive(Debug, arbitrary::Arbitrary)]
enum SessionOp {
    Bytes(Vec<u8>),
    Frame(FrameOp),
    Advance(u16),
    Timeout,
    Request { piece: u8, block: u8 },
    Cancel { index: u8 },
    Choke,
    Unchoke,
    Interested(bool),
    Have(u8),
    Serve { index: u8 },
    Reject { index: u8 },
    Eof,
}

#[derive(Debug, arbitrary::Arbitrary)]
enum FrameOp {
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u8),
    Bitfield(Vec<u8>),
    Request(u8, u8, u16),
    Piece(u8, u8, u16),
    Cancel(u8, u8),
    Reject(u8, u8),
    HaveAll,
    HaveNone,
    AllowedFast(u8),
    Extended(u8, Vec<u8>),
    KeepAlive,
}

/// peer_session_ops: an arbitrary sequence of network input, commands and
/// clock steps into one `PeerSession` (after a valid handshake). It must
/// never panic, and these must hold after every step: outstanding requests
/// never exceed the configured cap; the timeout never lies in the past
/// before the clock moves; nothing comes out after `Closed`.
pub fn peer_session_ops(data: &[u8]) {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::peer::{Direction, PeerEvent, PeerSession, SessionConfig};
    use crate::wire::{BlockRef, Frame, Handshake, PeerId, Reserved, BLOCK_SIZE};
    use crate::{Bitfield, InfoHash, Instant, PieceIndex};

    const PIECES: u32 = 40;
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<SessionOp>>() else {
        return;
    };
    let hash = InfoHash([3; 20]);
    let reserved = Reserved::FAST.with(Reserved::EXTENSION).with(Reserved::DHT);
    let config = SessionConfig::default();
    let cap = config.max_outgoing_requests;
    let mut now = Instant::ZERO;
    let mut s = PeerSession::new(
        now,
        config,
        Direction::Incoming,
        hash,
        PeerId([1; 20]),
        reserved,
        PIECES,
        Some(std::net::IpAddr::from([127, 0, 0, 1])),
    );
    let mut hs = Vec::new();
    Handshake {
        reserved,
        info_hash: hash,
        peer_id: PeerId([2; 20]),
    }
    .encode(&mut hs);
    s.handle_bytes(now, &hs);
    let mut ours = Bitfield::new(PIECES);
    for p in (0..PIECES).step_by(2) {
        ours.set(PieceIndex(p));
    }
    let mut closed = false;
    let mut requests_in: Vec<BlockRef> = Vec::new();
    let mut sink = Vec::new();
    let block = |piece: u8, b: u8, len: u16| BlockRef {
        piece: PieceIndex(u32::from(piece)),
        offset: u32::from(b) * BLOCK_SIZE,
        length: u32::from(len),
    };
    for op in ops {
        match op {
            SessionOp::Bytes(b) => s.handle_bytes(now, &b),
            SessionOp::Frame(f) => {
                let frame = match f {
                    FrameOp::Choke => Frame::Choke,
                    FrameOp::Unchoke => Frame::Unchoke,
                    FrameOp::Interested => Frame::Interested,
                    FrameOp::NotInterested => Frame::NotInterested,
                    FrameOp::Have(p) => Frame::Have(PieceIndex(u32::from(p))),
                    FrameOp::Bitfield(b) => Frame::Bitfield(Bytes::from(b)),
                    FrameOp::Request(p, b, l) => Frame::Request(block(p, b, l)),
                    FrameOp::Piece(p, b, l) => Frame::Piece {
                        piece: PieceIndex(u32::from(p)),
                        offset: u32::from(b) * BLOCK_SIZE,
                        data: Bytes::from(vec![0u8; usize::from(l).min(BLOCK_SIZE as usize)]),
                    },
                    FrameOp::Cancel(p, b) => Frame::Cancel(block(p, b, BLOCK_SIZE as u16 / 2)),
                    FrameOp::Reject(p, b) => Frame::Reject(block(p, b, BLOCK_SIZE as u16 / 2)),
                    FrameOp::HaveAll => Frame::HaveAll,
                    FrameOp::HaveNone => Frame::HaveNone,
                    FrameOp::AllowedFast(p) => Frame::AllowedFast(PieceIndex(u32::from(p))),
                    FrameOp::Extended(id, p) => Frame::Extended {
                        id,
                        payload: Bytes::from(p),
                    },
                    FrameOp::KeepAlive => Frame::KeepAlive,
                };
                let mut bytes = Vec::new();
                frame.encode(&mut bytes);
                s.handle_bytes(now, &bytes);
            }
            SessionOp::Advance(ms) => now += Duration::from_millis(u64::from(ms) * 50),
            SessionOp::Timeout => s.handle_timeout(now),
            SessionOp::Request { piece, block: b } => {
                let room = s.request_room(now);
                if room > 0 {
                    s.request(
                        now,
                        &[block(piece % PIECES as u8, b % 4, BLOCK_SIZE as u16 / 2)],
                    );
                }
            }
            SessionOp::Cancel { index } => {
                let out: Vec<BlockRef> = s.outstanding().copied().collect();
                if !out.is_empty() {
                    s.cancel(now, out[usize::from(index) % out.len()]);
                }
            }
            SessionOp::Choke => s.choke(now),
            SessionOp::Unchoke => s.unchoke(now),
            SessionOp::Interested(i) => s.set_interested(now, i),
            SessionOp::Have(p) => s.have(now, PieceIndex(u32::from(p) % PIECES)),
            SessionOp::Serve { index } => {
                if !requests_in.is_empty() {
                    let b = requests_in.remove(usize::from(index) % requests_in.len());
                    s.send_block(now, b, &vec![7u8; b.length as usize]);
                }
            }
            SessionOp::Reject { index } => {
                if !requests_in.is_empty() {
                    let b = requests_in.remove(usize::from(index) % requests_in.len());
                    s.reject(now, b);
                }
            }
            SessionOp::Eof => s.handle_eof(now),
        }
        while let Some(e) = s.poll_event() {
            assert!(!closed, "event after Closed: {e:?}");
            match e {
                PeerEvent::Connected { .. } => s.start(now, &ours, None),
                PeerEvent::Request(b) => requests_in.push(b),
                PeerEvent::Closed(_) => closed = true,
                _ => {}
            }
        }
        sink.clear();
        let _ = s.poll_transmit(&mut sink);
        assert!(s.outstanding().count() <= cap);
        if let Some(t) = s.poll_timeout() {
            assert!(!closed);
            let _ = t;
        }
    }
}
