//! The socket and the connection at their edges: BEP 29's connection ids,
//! the caps on the table, resets, timeouts, keep-alives, a receiver that
//! stops reading.

use std::net::SocketAddr;
use std::time::Duration;

use super::path::PathModel;
use super::syn;
use super::Pair;
use crate::rng::Seed;
use crate::time::Instant;
use crate::utp::{
    CloseReason, Config, Packet, PacketType, SeqNr, SocketEvent, SocketLimits, State, UtpSocket,
};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn socket(seed: u64, limits: SocketLimits) -> UtpSocket {
    UtpSocket::new(Config::default(), limits, Seed::from_u64(seed))
}

fn transmits(s: &mut UtpSocket, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| s.poll_transmit(now))
        .map(|(to, t)| (to, t.payload))
        .collect()
}

fn events(s: &mut UtpSocket) -> Vec<SocketEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Runs `s`'s timers up to `until`, dropping what it sends; returns how
/// many datagrams it sent.
fn run_timers(s: &mut UtpSocket, mut now: Instant, until: Instant) -> usize {
    let mut sent = transmits(s, now).len();
    while let Some(t) = s.poll_timeout() {
        if t > until {
            break;
        }
        now = t.max(now);
        s.handle_timeout(now);
        sent += transmits(s, now).len();
    }
    sent
}

#[test]
fn the_handshake_uses_bep29_connection_ids() {
    let t = Instant::ZERO;
    let (mut a, mut b) = (
        socket(1, SocketLimits::default()),
        socket(2, SocketLimits::default()),
    );
    let id = a.connect(t, addr(2)).unwrap();
    let out = transmits(&mut a, t);
    assert_eq!(out.len(), 1);
    let syn = Packet::decode(&out[0].1).unwrap();
    assert_eq!((syn.kind, syn.seq_nr), (PacketType::Syn, SeqNr(1)));
    let x = syn.conn_id;

    b.handle_datagram(t, addr(1), &out[0].1);
    let [SocketEvent::Incoming(bid, from)] = events(&mut b)[..] else {
        panic!("one incoming connection");
    };
    assert_eq!(from, addr(1));
    let reply = transmits(&mut b, t);
    let state = Packet::decode(&reply[0].1).unwrap();
    assert_eq!(state.kind, PacketType::State);
    assert_eq!(state.conn_id, x, "the acceptor sends on the SYN's id");
    assert_eq!(state.ack_nr, SeqNr(1), "and acknowledges the SYN");
    assert_eq!(b.connection(bid).unwrap().state(), State::SynReceived);

    a.handle_datagram(t, addr(2), &reply[0].1);
    let confirm = transmits(&mut a, t);
    assert_eq!(events(&mut a), [SocketEvent::Connected(id)]);
    let confirm = Packet::decode(&confirm[0].1).unwrap();
    assert_eq!(
        confirm.conn_id,
        x.wrapping_add(1),
        "the initiator sends on id + 1"
    );
    assert_eq!(confirm.ack_nr, state.seq_nr.prev());

    // A resent SYN is answered again, not accepted twice.
    b.handle_datagram(t, addr(1), &out[0].1);
    assert_eq!(transmits(&mut b, t).len(), 1);
    assert!(events(&mut b).is_empty());
    assert_eq!(b.len(), 1);
}

#[test]
fn half_open_handshakes_are_capped_and_expire() {
    let limits = SocketLimits {
        max_half_open: 4,
        ..SocketLimits::default()
    };
    let mut b = socket(3, limits);
    let t = Instant::ZERO;
    for i in 0..10u16 {
        let _ = b.handle_datagram(t, addr(1000 + i), &syn(7));
    }
    assert_eq!(
        transmits(&mut b, t).len(),
        4,
        "SYN-ACKs, no resets for the dropped"
    );
    let all = events(&mut b);
    let incoming = all
        .iter()
        .filter(|e| matches!(e, SocketEvent::Incoming(..)))
        .count();
    let dropped = all
        .iter()
        .filter(|e| matches!(e, SocketEvent::Closed(_, CloseReason::Aborted)))
        .count();
    assert_eq!(
        (incoming, dropped),
        (10, 6),
        "the newest replace the oldest"
    );
    assert_eq!(b.len(), 4, "only the cap is kept");
    let later = t + Config::default().handshake_timeout;
    run_timers(&mut b, t, later);
    let closed = events(&mut b);
    assert_eq!(closed.len(), 4);
    assert!(closed
        .iter()
        .all(|e| matches!(e, SocketEvent::Closed(_, CloseReason::TimedOut))));
    assert!(b.is_empty(), "expired handshakes leave the table");
    b.handle_datagram(later, addr(2000), &syn(7));
    assert_eq!(b.len(), 1, "and make room");
}

#[test]
fn the_connection_table_is_capped() {
    let limits = SocketLimits {
        max_connections: 3,
        ..SocketLimits::default()
    };
    let mut a = socket(4, limits);
    for i in 0..3 {
        a.connect(Instant::ZERO, addr(i)).unwrap();
    }
    assert!(a.connect(Instant::ZERO, addr(9)).is_err());
    a.handle_datagram(Instant::ZERO, addr(10), &syn(1));
    assert_eq!(a.len(), 3, "incoming SYNs count too");
}

#[test]
fn strays_get_a_bounded_number_of_resets() {
    let limits = SocketLimits::default();
    let mut b = socket(5, limits);
    let t = Instant::ZERO;
    let template = syn(40);
    let mut stray = Packet::decode(&template).unwrap();
    stray.kind = PacketType::Data;
    for i in 0..200u16 {
        stray.conn_id = i;
        b.handle_datagram(t, addr(1), &stray.to_vec());
    }
    let resets = transmits(&mut b, t);
    assert_eq!(resets.len(), limits.max_pending_resets);
    let reset = Packet::decode(&resets[0].1).unwrap();
    assert_eq!((reset.kind, reset.conn_id), (PacketType::Reset, 0));
    // A reset for nothing is not answered.
    b.handle_datagram(t, addr(1), &resets[0].1);
    assert!(transmits(&mut b, t).is_empty());
}

#[test]
fn a_reset_refuses_and_a_silent_peer_times_out() {
    let t = Instant::ZERO;
    let mut a = socket(6, SocketLimits::default());
    a.connect(t, addr(2)).unwrap();
    let out = transmits(&mut a, t);
    let mut reset = Packet::decode(&out[0].1).unwrap();
    reset.kind = PacketType::Reset;
    a.handle_datagram(t, addr(2), &reset.to_vec());
    assert!(transmits(&mut a, t).is_empty());
    assert!(matches!(
        events(&mut a)[..],
        [SocketEvent::Closed(_, CloseReason::Refused)]
    ));

    a.connect(t, addr(3)).unwrap();
    let sent = run_timers(&mut a, t, t + Duration::from_secs(60));
    assert_eq!(sent, 4, "a SYN and its 3 retries (1, 2, 4 s apart)");
    assert!(matches!(
        events(&mut a)[..],
        [SocketEvent::Closed(_, CloseReason::TimedOut)]
    ));
    assert!(a.is_empty());
}

#[test]
fn quiet_connections_keep_alive_and_dead_ones_time_out() {
    let mut pair = Pair::new(21, PathModel::clean(Duration::from_millis(10)), 1000, 0);
    pair.hosts[0].close_after_writing = false;
    pair.hosts[1].close_after_writing = false;
    while pair.hosts[1].incoming.len() < 1000 {
        pair.step();
    }
    let sent_before = pair.hosts[0].sent;
    let quiet = pair.now + Duration::from_secs(100);
    while pair.now < quiet {
        pair.step();
    }
    let keepalives = pair.hosts[0].sent - sent_before;
    assert!(
        (3..=4).contains(&keepalives),
        "about one STATE per 29 s, got {keepalives} in 100 s"
    );
    assert_eq!(pair.hosts[0].closed, None, "keep-alives keep it open");

    // The path goes dead: both give up after the idle timeout.
    pair.net.cut = true;
    let cut = pair.now;
    while pair.hosts.iter().any(|h| h.closed.is_none()) {
        pair.step();
    }
    for host in &pair.hosts {
        assert_eq!(host.closed, Some(CloseReason::TimedOut));
    }
    let waited = pair.now - cut;
    let idle = Config::default().idle_timeout;
    assert!(waited <= idle, "gave up after {waited:?}");
    assert!(
        waited + Duration::from_secs(30) >= idle,
        "gave up after {waited:?}"
    );
}

#[test]
fn a_receiver_that_stops_reading_stalls_the_sender_without_loss() {
    let mut pair = Pair::new(22, PathModel::clean(Duration::from_millis(10)), 3 << 20, 0);
    pair.hosts[1].reading = false;
    let pause = Instant::ZERO + Duration::from_secs(5);
    while pair.now < pause {
        pair.step();
    }
    let buffered = pair.hosts[1]
        .conn
        .and_then(|id| pair.hosts[1].socket.connection(id))
        .map(|c| c.readable())
        .unwrap();
    let capacity = Config::default().recv_buffer;
    assert!(
        buffered <= capacity && buffered + 2 * Config::default().max_payload() >= capacity,
        "the window filled: {buffered} of {capacity}"
    );
    pair.hosts[1].reading = true;
    pair.run_to_completion();
    pair.assert_delivered();
}

/// BEP 55 makes two peers dial each other at once: each gets the other's
/// SYN while its own is unanswered. Whichever order the SYNs arrive in,
/// both sides keep the one with the lower connection id, so exactly one
/// connection opens, and the side whose SYN lost hears `Crossed` (no
/// fallback dial) and an incoming connection instead.
#[test]
fn crossing_syns_make_one_connection() {
    for seed in 0..20u64 {
        let t = Instant::ZERO;
        let (mut a, mut b) = (
            socket(100 + seed, SocketLimits::default()),
            socket(200 + seed, SocketLimits::default()),
        );
        let a_dial = a.connect(t, addr(2)).unwrap();
        let b_dial = b.connect(t, addr(1)).unwrap();
        let (a_syn, b_syn) = (transmits(&mut a, t), transmits(&mut b, t));
        let id = |d: &[(SocketAddr, Vec<u8>)]| Packet::decode(&d[0].1).unwrap().conn_id;
        let (a_id, b_id) = (id(&a_syn), id(&b_syn));
        if a_id == b_id {
            continue;
        }
        // Both SYNs cross on the wire.
        b.handle_datagram(t, addr(1), &a_syn[0].1);
        a.handle_datagram(t, addr(2), &b_syn[0].1);
        let mut now = t;
        for _ in 0..20 {
            now += Duration::from_millis(10);
            let from_a = transmits(&mut a, now);
            let from_b = transmits(&mut b, now);
            for (_, d) in from_a {
                b.handle_datagram(now, addr(1), &d);
            }
            for (_, d) in from_b {
                a.handle_datagram(now, addr(2), &d);
            }
        }
        let (ea, eb) = (events(&mut a), events(&mut b));
        let connected = |e: &[SocketEvent]| {
            e.iter()
                .filter(|e| matches!(e, SocketEvent::Connected(_)))
                .count()
        };
        assert_eq!(connected(&ea), 1, "seed {seed}: {ea:?}");
        assert_eq!(connected(&eb), 1, "seed {seed}: {eb:?}");
        let (winner, loser_events, loser_dial) = if a_id < b_id {
            (&mut a, &eb, b_dial)
        } else {
            (&mut b, &ea, a_dial)
        };
        let winner_dial = if a_id < b_id { a_dial } else { b_dial };
        assert_eq!(
            winner.connection(winner_dial).map(|c| c.state()),
            Some(State::Connected),
            "seed {seed}: the lower id's dial opens"
        );
        assert!(loser_events.contains(&SocketEvent::Closed(loser_dial, CloseReason::Crossed)));
        assert!(loser_events
            .iter()
            .any(|e| matches!(e, SocketEvent::Incoming(..))));
        assert_eq!(
            a.len() + b.len(),
            2,
            "seed {seed}: one end each, the lost dial gone"
        );
    }
}

#[test]
fn an_ipv6_peer_is_probed_20_bytes_lower() {
    let c = Config::default();
    let v4: SocketAddr = "10.0.0.1:1".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
    assert_eq!(c.for_peer(&v4), c);
    let six = c.for_peer(&v6);
    // A 1,500-byte link: 1,472 bytes of UDP payload over IPv4, 1,452 over
    // IPv6.
    assert_eq!((six.max_datagram, six.min_datagram), (1452, 1232));
}
