//! uTP targets: the packet codec, and one connection fed arbitrary
//! datagram sequences.

use std::time::Duration;

use crate::time::Instant;
use crate::utp::{
    is_utp_datagram, Config, Connection, Packet, PacketType, SelectiveAck, SeqNr, State,
};

/// utp_packet: a packet that decodes must re-encode to bytes that decode
/// to the same packet, of the length `encoded_len` says; anything that
/// decodes must also be claimed by the UDP demultiplexing rule.
pub fn utp_packet(data: &[u8]) {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    assert!(
        is_utp_datagram(data),
        "decodes but the demultiplexer refuses it"
    );
    let encoded = packet.to_vec();
    assert_eq!(encoded.len(), packet.encoded_len());
    let again = Packet::decode(&encoded).expect("an encoded packet must decode");
    assert_eq!(again, packet, "round trip changed the packet");
    assert_eq!(again.to_vec(), encoded, "encoding is not idempotent");
}

#[derive(Debug, arbitrary::Arbitrary)]
enum UtpOp {
    /// The peer's data packet number `k` of its stream.
    Data {
        k: u8,
        ack: u16,
        sack: Option<[u8; 4]>,
        wnd: u32,
    },
    /// The peer's FIN after `k` packets.
    Fin {
        k: u8,
        ack: u16,
    },
    /// An ACK.
    State {
        ack: u16,
        sack: Option<[u8; 8]>,
        wnd: u32,
        diff: u32,
    },
    Reset {
        other_id: bool,
    },
    Syn,
    /// Any bytes; a DATA packet for us among them gets its canonical
    /// payload, so the stream oracle stays sound.
    Raw(Vec<u8>),
    Advance(u16),
    Write(u16),
    Read(u16),
    Close,
    Abort,
}

/// The payload of the peer's packet number `k`: its length and bytes
/// depend only on `k`, so the stream is known whatever order they arrive in.
fn canonical_payload(k: u16) -> Vec<u8> {
    let len = usize::from(k % 7) * 3 + 1;
    (0..len)
        .map(|i| (k as u8).wrapping_mul(31) ^ i as u8)
        .collect()
}

/// The peer's stream: canonical payloads in order.
fn expected_stream(bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut k = 0u16;
    while out.len() < bytes {
        out.extend(canonical_payload(k));
        k += 1;
    }
    out.truncate(bytes);
    out
}

/// utp_connection: one accepted connection fed an arbitrary sequence of
/// the peer's packets (well-formed ones, and raw bytes), clock steps and
/// application commands. It must never panic; what the application reads
/// must always be a prefix of the peer's stream (never out of order, never
/// twice); every datagram it sends must decode, carry the peer's id and
/// fit the configured size; the timeout never lies before the clock.
pub fn utp_connection(data: &[u8]) {
    const PEER_ID: u16 = 0x1234;
    const MAX_OPS: usize = 10_000;
    const OUR_FIRST_SEQ: SeqNr = SeqNr(1000);
    // The peer's SYN is seq 1, so its packet k has seq 2 + k.
    let peer_seq = |k: u16| SeqNr(2u16.wrapping_add(k));

    // Ops are read one after another until the input runs out (rather
    // than as one length-prefixed list), so random bytes already make long
    // sequences.
    let mut u = arbitrary::Unstructured::new(data);
    let ops = std::iter::from_fn(|| {
        if u.is_empty() {
            return None;
        }
        u.arbitrary::<UtpOp>().ok()
    })
    .take(MAX_OPS);
    let config = Config {
        recv_buffer: 4096,
        send_buffer: 4096,
        ..Config::default()
    };
    let mut now = Instant::ZERO;
    let syn = Packet {
        kind: PacketType::Syn,
        conn_id: PEER_ID,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 1 << 16,
        seq_nr: SeqNr(1),
        ack_nr: SeqNr(0),
        selective_ack: None,
        payload: &[],
    };
    let mut conn = Connection::accept(now, config, &syn, OUR_FIRST_SEQ);
    let mut read = Vec::new();
    for op in ops {
        let header = |kind, seq_nr, ack: u16, wnd| Packet {
            kind,
            conn_id: PEER_ID.wrapping_add(1),
            timestamp_us: (now.as_nanos() / 1000) as u32,
            timestamp_diff_us: 0,
            wnd_size: wnd,
            seq_nr,
            ack_nr: OUR_FIRST_SEQ.plus(ack),
            selective_ack: None,
            payload: &[],
        };
        match op {
            UtpOp::Data { k, ack, sack, wnd } => {
                let payload = canonical_payload(u16::from(k));
                let mut p = Packet {
                    payload: &payload,
                    ..header(PacketType::Data, peer_seq(u16::from(k)), ack, wnd)
                };
                p.selective_ack = sack.map(|bytes| {
                    let mut s = SelectiveAck::new(4);
                    for bit in (0..32).filter(|b| bytes[b / 8] & (1 << (b % 8)) != 0) {
                        s.set(bit);
                    }
                    s
                });
                conn.handle_datagram(now, &p.to_vec());
            }
            UtpOp::Fin { k, ack } => {
                let p = header(PacketType::Fin, peer_seq(u16::from(k)), ack, 1 << 16);
                conn.handle_datagram(now, &p.to_vec());
            }
            UtpOp::State {
                ack,
                sack,
                wnd,
                diff,
            } => {
                let mut p = header(PacketType::State, peer_seq(0), ack, wnd);
                p.timestamp_diff_us = diff;
                p.selective_ack = sack.map(|bytes| {
                    let mut s = SelectiveAck::new(8);
                    for bit in (0..64).filter(|b| bytes[b / 8] & (1 << (b % 8)) != 0) {
                        s.set(bit);
                    }
                    s
                });
                conn.handle_datagram(now, &p.to_vec());
            }
            UtpOp::Reset { other_id } => {
                let mut p = header(PacketType::Reset, peer_seq(0), 0, 0);
                if other_id {
                    p.conn_id = PEER_ID.wrapping_add(7);
                }
                conn.handle_datagram(now, &p.to_vec());
            }
            UtpOp::Syn => conn.handle_datagram(now, &syn.to_vec()),
            UtpOp::Raw(bytes) => match Packet::decode(&bytes) {
                Ok(p) if p.kind == PacketType::Data => {
                    let payload = canonical_payload(p.seq_nr.distance_from(peer_seq(0)));
                    let p = Packet {
                        payload: &payload,
                        ..p
                    };
                    conn.handle_datagram(now, &p.to_vec());
                }
                _ => conn.handle_datagram(now, &bytes),
            },
            UtpOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                }
            }
            UtpOp::Write(n) => {
                let data = vec![0x5a; usize::from(n)];
                assert!(conn.write(&data) <= data.len());
            }
            UtpOp::Read(n) => {
                let mut buf = vec![0; usize::from(n)];
                let got = conn.read(&mut buf);
                read.extend_from_slice(&buf[..got]);
                assert_eq!(read, expected_stream(read.len()), "bytes out of order");
            }
            UtpOp::Close => conn.close(),
            UtpOp::Abort => conn.abort(),
        }
        while let Some(transmit) = conn.poll_transmit(now) {
            let datagram = transmit.payload;
            assert!(datagram.len() <= config.max_datagram, "datagram too large");
            let p = Packet::decode(&datagram).expect("we send what we can decode");
            let expected_id = if p.kind == PacketType::Syn {
                PEER_ID.wrapping_add(1)
            } else {
                PEER_ID
            };
            assert_eq!(p.conn_id, expected_id, "sent with the wrong id");
        }
        while conn.poll_event().is_some() {}
        if let Some(t) = conn.poll_timeout() {
            let closed = matches!(conn.state(), State::Closed(_));
            assert!(t >= now || closed, "timeout in the past");
        }
        assert!(conn.readable() <= config.recv_buffer + config.max_datagram);
    }
    let mut buf = vec![0; 1 << 16];
    let got = conn.read(&mut buf);
    read.extend_from_slice(&buf[..got]);
    assert_eq!(read, expected_stream(read.len()), "bytes out of order");
}
