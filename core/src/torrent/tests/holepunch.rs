//! BEP 55 in a torrent, against scripted peers that speak raw frames: the
//! relay's answers (connect to both sides; NoSelf, NotConnected,
//! NoSupport), its per-peer budget, a malformed message ending the peer,
//! private torrents, and the initiator (PEX flag 0x08 → dial fails →
//! rendezvous once → a connect becomes a uTP-only dial; errors reported).

use super::super::holepunch::{OUR_UT_HOLEPUNCH, RELAY_BURST, RELAY_REFILL, RENDEZVOUS_BACKOFF};
use super::*;
use crate::wire::PeerId;
use crate::wire::{
    ExtensionHandshake, Frame, FrameDecoder, FrameLimits, Handshake, HolepunchErrorCode,
    HolepunchMessage, PexMessage,
};

/// The ids our scripted peers want `ut_holepunch` and `ut_pex` under.
const THEIR_HOLEPUNCH: u8 = 9;
const THEIR_PEX: u8 = 8;

/// A peer played by the test: what it heard from the torrent.
struct Raw {
    conn: ConnId,
    decoder: FrameDecoder,
    handshake_seen: bool,
    heard: Vec<HolepunchMessage>,
    closed: bool,
}

struct Bench {
    t: Torrent,
    peers: Vec<Raw>,
    now: Instant,
    events: Vec<TorrentEvent>,
    /// Connects the torrent asked for, in order.
    connects: Vec<(ConnId, SocketAddr)>,
}

fn bench(private: bool) -> Bench {
    let data = content(64 * 1024);
    let mut info = info_for(&data, 16 * 1024);
    info.private = private;
    let config = TorrentConfig {
        peer_id: PeerId([7; 20]),
        ..TorrentConfig::default()
    };
    let t = Torrent::new(
        Instant::ZERO,
        info,
        config,
        StartMode::Fresh,
        Seed::from_u64(55),
    );
    let mut b = Bench {
        t,
        peers: Vec::new(),
        now: Instant::ZERO,
        events: Vec::new(),
        connects: Vec::new(),
    };
    b.pump();
    b
}

fn frame(f: Frame) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode(&mut out);
    out
}

fn extension_handshake(holepunch: bool, port: Option<u16>) -> Vec<u8> {
    let mut messages = vec![("ut_pex".to_owned(), THEIR_PEX)];
    if holepunch {
        messages.push(("ut_holepunch".to_owned(), THEIR_HOLEPUNCH));
    }
    let mut payload = Vec::new();
    ExtensionHandshake {
        messages,
        port,
        ..ExtensionHandshake::default()
    }
    .encode(&mut payload);
    frame(Frame::Extended {
        id: 0,
        payload: payload.into(),
    })
}

impl Bench {
    /// The handshake, extension handshake (with `ut_holepunch` or not,
    /// and `p`) a scripted peer opens with.
    fn hello(&self, holepunch: bool, port: Option<u16>, id: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        Handshake {
            reserved: Reserved::FAST.with(Reserved::EXTENSION),
            info_hash: self.t.info_hash(),
            peer_id: PeerId([id; 20]),
        }
        .encode(&mut bytes);
        bytes.extend(extension_handshake(holepunch, port));
        bytes
    }

    /// A peer connects to the torrent from `addr`.
    fn incoming(&mut self, addr: SocketAddr, holepunch: bool, port: Option<u16>) -> usize {
        let conn = ConnId::new(10_000 + self.peers.len() as u64);
        assert!(self.t.handle_incoming(self.now, conn, addr));
        let hello = self.hello(holepunch, port, self.peers.len() as u8 + 1);
        self.peers.push(Raw {
            conn,
            decoder: FrameDecoder::new(FrameLimits::default()),
            handshake_seen: false,
            heard: Vec::new(),
            closed: false,
        });
        self.t.handle_bytes(self.now, conn, &hello);
        self.pump();
        self.peers.len() - 1
    }

    /// Peer `k` sends a PEX message naming `added`.
    fn pex_from(&mut self, k: usize, added: Vec<(SocketAddr, PexFlags)>) {
        let mut pex = Vec::new();
        PexMessage {
            added,
            dropped: Vec::new(),
        }
        .encode(&mut pex);
        let bytes = frame(Frame::Extended {
            id: OUR_UT_PEX,
            payload: pex.into(),
        });
        self.t.handle_bytes(self.now, self.peers[k].conn, &bytes);
        self.pump();
    }

    /// Peer `k` sends a `ut_holepunch` payload.
    fn send(&mut self, k: usize, payload: &[u8]) {
        let bytes = frame(Frame::Extended {
            id: OUR_UT_HOLEPUNCH,
            payload: payload.to_vec().into(),
        });
        self.t.handle_bytes(self.now, self.peers[k].conn, &bytes);
        self.pump();
    }

    fn rendezvous(&mut self, k: usize, target: SocketAddr) {
        self.send(k, &HolepunchMessage::Rendezvous(target).to_vec());
    }

    /// Delivers the torrent's outputs to the scripted peers.
    fn pump(&mut self) {
        while let Some(o) = self.t.poll_output() {
            match o {
                TorrentOutput::Send { conn, data } => {
                    let Some(p) = self.peers.iter_mut().find(|p| p.conn == conn) else {
                        continue;
                    };
                    p.decoder.push(&data);
                    if !p.handshake_seen {
                        if let Ok(Some(_)) = p.decoder.next_handshake() {
                            p.handshake_seen = true;
                        }
                    }
                    while let Ok(Some(f)) = p.decoder.next_frame() {
                        if let Frame::Extended {
                            id: THEIR_HOLEPUNCH,
                            payload,
                        } = f
                        {
                            p.heard.push(HolepunchMessage::decode(&payload).unwrap());
                        }
                    }
                }
                TorrentOutput::Close { conn } => {
                    if let Some(p) = self.peers.iter_mut().find(|p| p.conn == conn) {
                        p.closed = true;
                    }
                }
                TorrentOutput::Connect { conn, addr } => self.connects.push((conn, addr)),
                TorrentOutput::Event(e) => self.events.push(e),
                _ => {}
            }
        }
    }

    fn heard(&mut self, k: usize) -> Vec<HolepunchMessage> {
        std::mem::take(&mut self.peers[k].heard)
    }
}

fn at(ip: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, ip], port))
}

fn error(addr: SocketAddr, code: HolepunchErrorCode) -> Vec<HolepunchMessage> {
    vec![HolepunchMessage::Error { addr, code }]
}

#[test]
fn the_relay_introduces_two_peers_by_their_listen_addresses() {
    let mut b = bench(false);
    // A connects from port 40001 but listens on 6881 (its `p`); B sends
    // no `p`, so its connection's port is all we know.
    let a = b.incoming(at(1, 40001), true, Some(6881));
    let bb = b.incoming(at(2, 40002), true, None);
    b.rendezvous(a, at(2, 40002));
    assert_eq!(b.heard(a), vec![HolepunchMessage::Connect(at(2, 40002))]);
    assert_eq!(b.heard(bb), vec![HolepunchMessage::Connect(at(1, 6881))]);
    assert_eq!(b.t.holepunch_stats().relayed, 1);
}

#[test]
fn the_relay_refuses_self_strangers_and_peers_without_support() {
    let mut b = bench(false);
    let a = b.incoming(at(1, 40001), true, Some(6881));
    let plain = b.incoming(at(2, 6881), false, Some(6881));
    // NoSelf, by listen address or by the connection's.
    b.rendezvous(a, at(1, 6881));
    assert_eq!(b.heard(a), error(at(1, 6881), HolepunchErrorCode::NoSelf));
    b.rendezvous(a, at(1, 40001));
    assert_eq!(b.heard(a), error(at(1, 40001), HolepunchErrorCode::NoSelf));
    // Nobody we are connected to.
    b.now += RELAY_REFILL * 2;
    b.rendezvous(a, at(3, 6881));
    assert_eq!(
        b.heard(a),
        error(at(3, 6881), HolepunchErrorCode::NotConnected)
    );
    // Connected, but it does not speak ut_holepunch: it hears nothing.
    b.rendezvous(a, at(2, 6881));
    assert_eq!(
        b.heard(a),
        error(at(2, 6881), HolepunchErrorCode::NoSupport)
    );
    assert!(b.heard(plain).is_empty());
    assert_eq!(b.t.holepunch_stats().refused, 4);
}

#[test]
fn one_peer_cannot_make_the_relay_a_packet_cannon() {
    let mut b = bench(false);
    let a = b.incoming(at(1, 6881), true, None);
    let target = b.incoming(at(2, 6881), true, None);
    for _ in 0..50 {
        b.rendezvous(a, at(2, 6881));
    }
    let burst = RELAY_BURST as usize;
    assert_eq!(b.heard(a).len(), burst, "a burst, then nothing");
    assert_eq!(b.heard(target).len(), burst);
    assert_eq!(b.t.holepunch_stats().over_budget, 50 - burst as u64);
    // The budget refills slowly: one more per refill period.
    b.now += RELAY_REFILL;
    for _ in 0..10 {
        b.rendezvous(a, at(2, 6881));
    }
    assert_eq!(b.heard(a).len(), 1);
    // However many peers ask, a target hears at most its own budget.
    let mut b = bench(false);
    let target = b.incoming(at(2, 6881), true, None);
    let askers: Vec<usize> = (10..30)
        .map(|i| b.incoming(at(i, 6881), true, None))
        .collect();
    for k in askers {
        b.rendezvous(k, at(2, 6881));
    }
    assert_eq!(b.heard(target).len(), burst);
}

#[test]
fn a_malformed_message_ends_the_peer_without_a_panic() {
    let mut b = bench(false);
    let a = b.incoming(at(1, 6881), true, None);
    let other = b.incoming(at(2, 6881), true, None);
    b.send(a, &[0, 0, 1, 2]);
    assert!(b.peers[a].closed);
    assert!(b.events.iter().any(|e| matches!(
        e,
        TorrentEvent::PeerDisconnected {
            reason: CloseReason::Protocol(PeerError::Malformed(_)),
            ..
        }
    )));
    for junk in [&[9u8, 0][..], &[0, 7], &[]] {
        b.send(other, junk);
    }
    assert!(b.peers[other].closed);
}

#[test]
fn private_torrents_neither_advertise_nor_relay() {
    let mut b = bench(true);
    let a = b.incoming(at(1, 6881), true, None);
    let _target = b.incoming(at(2, 6881), true, None);
    b.rendezvous(a, at(2, 6881));
    assert!(b.heard(a).is_empty());
    assert_eq!(b.t.holepunch_stats(), Default::default());
    let ext = our_extensions(true, true, true);
    assert!(!ext.iter().any(|(n, _)| n == "ut_holepunch"));
    assert!(our_extensions(false, true, true)
        .iter()
        .any(|(n, _)| n == "ut_holepunch"));
}

#[test]
fn the_initiator_asks_the_relay_once_and_dials_the_answer_over_utp() {
    let mut b = bench(false);
    let relay = b.incoming(at(1, 6881), true, None);
    // The relay's PEX names B (holepunch flag) and C (no flag).
    let (peer_b, peer_c) = (at(2, 6881), at(3, 6881));
    let flagged = PexFlags(PexFlags::HOLEPUNCH);
    b.pex_from(relay, vec![(peer_b, flagged), (peer_c, PexFlags(0))]);
    let dials = std::mem::take(&mut b.connects);
    assert_eq!(dials.len(), 2, "{dials:?}");
    for (conn, _) in &dials {
        assert!(!b.t.is_holepunch_dial(*conn), "ordinary dials first");
        b.t.handle_connect_failed(b.now, *conn);
    }
    b.pump();
    assert_eq!(
        b.heard(relay),
        vec![HolepunchMessage::Rendezvous(peer_b)],
        "only the flagged peer"
    );
    // The relay answers: a dial over uTP.
    b.send(relay, &HolepunchMessage::Connect(peer_b).to_vec());
    let (conn, addr) = b.connects.pop().unwrap();
    assert_eq!(addr, peer_b);
    assert!(b.t.is_holepunch_dial(conn));
    // Its failure asks no relay again.
    b.t.handle_connect_failed(b.now, conn);
    b.pump();
    assert!(b.heard(relay).is_empty());
    // An error from the relay is reported.
    b.send(
        relay,
        &HolepunchMessage::Error {
            addr: peer_b,
            code: HolepunchErrorCode::NotConnected,
        }
        .to_vec(),
    );
    assert!(b.events.contains(&TorrentEvent::HolepunchFailed {
        relay: at(1, 6881),
        target: peer_b,
        error: HolepunchErrorCode::NotConnected,
    }));
    assert_eq!(b.t.holepunch_stats().errors_received, 1);
    assert_eq!(b.t.holepunch_stats().rendezvous_sent, 1);
}

#[test]
fn the_initiator_asks_again_only_after_the_back_off() {
    let mut b = bench(false);
    let relay = b.incoming(at(1, 6881), true, None);
    let target = at(2, 6881);
    b.pex_from(relay, vec![(target, PexFlags(PexFlags::HOLEPUNCH))]);
    let mut asked = 0;
    // The list retries the address with its own back-off; the relay is
    // asked at most once per RENDEZVOUS_BACKOFF. The relay keeps talking
    // (keep-alives), so it stays connected.
    let end = b.now + RENDEZVOUS_BACKOFF * 2;
    while b.now < end {
        for (conn, _) in std::mem::take(&mut b.connects) {
            b.t.handle_connect_failed(b.now, conn);
        }
        b.pump();
        asked += b.heard(relay).len();
        b.now += Duration::from_secs(10);
        let keep_alive = [0u8; 4];
        b.t.handle_bytes(b.now, b.peers[relay].conn, &keep_alive);
        b.t.handle_timeout(b.now);
        b.pump();
    }
    assert!(!b.peers[relay].closed);
    assert_eq!(asked, 2, "once, then once more after the back-off");
}

#[test]
fn a_connect_for_a_connected_peer_is_ignored() {
    let mut b = bench(false);
    let relay = b.incoming(at(1, 6881), true, None);
    let _b = b.incoming(at(2, 6881), true, None);
    b.send(relay, &HolepunchMessage::Connect(at(2, 6881)).to_vec());
    b.send(relay, &HolepunchMessage::Connect(at(0, 0)).to_vec());
    assert!(b.connects.is_empty());
    assert_eq!(b.t.holepunch_stats().connects_received, 2);
}

#[test]
fn a_requester_without_ut_holepunch_gets_nothing_relayed() {
    let mut b = bench(false);
    let mute = b.incoming(at(1, 6881), false, None);
    let target = b.incoming(at(2, 6881), true, None);
    b.rendezvous(mute, at(2, 6881));
    assert!(b.heard(target).is_empty(), "no half rendezvous");
    assert_eq!(b.t.holepunch_stats().relayed, 0);
}
