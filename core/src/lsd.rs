//! Local Service Discovery (BEP 14): peers on the same network find each
//! other without a tracker or the DHT, by announcing the info-hashes they
//! take part in to a multicast group — `239.192.152.143:6771` for IPv4,
//! `[ff15::efc0:988f]:6771` for IPv6 — in an HTTP-like datagram:
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: <40 hex digits>\r\n      (one or more, consecutive)
//! cookie: <ours>\r\n
//! \r\n
//! \r\n
//! ```
//!
//! [`LsdMessage`] is the codec; [`LocalDiscovery`] the machine: each
//! torrent is announced when added and then every
//! [`ANNOUNCE_INTERVAL`], several info-hashes per datagram (under 1,400
//! bytes, as the BEP asks), and what others announce comes back as peers
//! for the torrents we have. Our own announces, looped back by the
//! multicast group, carry our cookie and are ignored. Anyone on the
//! network can send to the group, so what is read is bounded: a message
//! holds at most [`MAX_HASHES`] info-hashes and at most
//! [`INCOMING_RATE`] messages a second are read (a flood costs the flooder,
//! not us).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::metainfo::InfoHash;
use crate::peer::TokenBucket;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::IpFamily;

/// The port of both groups.
pub const LSD_PORT: u16 = 6771;
/// The IPv4 group (organization-local scope).
pub const GROUP_V4: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 192, 152, 143)), LSD_PORT);
/// The IPv6 group (site-local scope).
pub const GROUP_V6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f)),
    LSD_PORT,
);

/// How often each torrent is announced again.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Most info-hashes read from one message (a full 1,400-byte datagram
/// holds about 28).
pub const MAX_HASHES: usize = 32;
/// Messages read per second (with a burst of as many), from everyone.
pub const INCOMING_RATE: u64 = 20;
/// Largest datagram sent: BEP 14 keeps announces under the usual MTU.
const MAX_DATAGRAM: usize = 1400;
/// Largest datagram read.
const MAX_READ: usize = 4096;

/// The first line, which tells an LSD datagram from the others on a UDP
/// socket (KRPC starts with `d`, uTP with its type and version byte, UDP
/// tracker answers with a zero byte).
const REQUEST_LINE: &[u8] = b"BT-SEARCH * HTTP/1.1\r\n";

/// Whether `datagram` is an LSD announce.
pub fn is_lsd_datagram(datagram: &[u8]) -> bool {
    datagram.starts_with(REQUEST_LINE)
}

/// The group of `family`.
pub fn group(family: IpFamily) -> SocketAddr {
    match family {
        IpFamily::V4 => GROUP_V4,
        IpFamily::V6 => GROUP_V6,
    }
}

/// One announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdMessage {
    /// The port the sender accepts peers on.
    pub port: u16,
    /// The torrents it takes part in.
    pub info_hashes: Vec<InfoHash>,
    /// The sender's cookie, which lets it recognize its own announces.
    pub cookie: Option<String>,
}

/// Why a datagram is no announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LsdError {
    /// It does not start with `BT-SEARCH * HTTP/1.1`.
    NotAnnounce,
    /// Longer than anyone sends.
    TooLong,
    /// A header line without `:`, or not UTF-8.
    BadHeader,
    /// No `Port`, or not a port number (1–65535).
    BadPort,
    /// An `Infohash` that is not 40 hex digits.
    BadInfoHash,
    /// No `Infohash` at all.
    NoInfoHash,
    /// More info-hashes than [`MAX_HASHES`].
    TooManyInfoHashes,
}

impl std::fmt::Display for LsdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LsdError::NotAnnounce => "LSD: not a BT-SEARCH announce",
            LsdError::TooLong => "LSD: announce longer than 4096 bytes",
            LsdError::BadHeader => "LSD: malformed header line",
            LsdError::BadPort => "LSD: missing or invalid Port header",
            LsdError::BadInfoHash => "LSD: Infohash is not 40 hex digits",
            LsdError::NoInfoHash => "LSD: no Infohash header",
            LsdError::TooManyInfoHashes => "LSD: more Infohash headers than 32",
        })
    }
}

impl std::error::Error for LsdError {}

impl LsdMessage {
    /// The datagram for `group`.
    pub fn encode(&self, group: SocketAddr) -> Vec<u8> {
        let mut s = String::from_utf8_lossy(REQUEST_LINE).into_owned();
        s.push_str(&format!("Host: {group}\r\nPort: {}\r\n", self.port));
        for h in &self.info_hashes {
            s.push_str(&format!("Infohash: {h}\r\n"));
        }
        if let Some(c) = &self.cookie {
            s.push_str(&format!("cookie: {c}\r\n"));
        }
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    /// Reads an announce. Header names are case-insensitive (HTTP);
    /// `Host` and unknown headers are not checked, as libtorrent does not.
    pub fn decode(datagram: &[u8]) -> Result<LsdMessage, LsdError> {
        let rest = datagram
            .strip_prefix(REQUEST_LINE)
            .ok_or(LsdError::NotAnnounce)?;
        if datagram.len() > MAX_READ {
            return Err(LsdError::TooLong);
        }
        let text = std::str::from_utf8(rest).map_err(|_| LsdError::BadHeader)?;
        let mut port = None;
        let mut info_hashes = Vec::new();
        let mut cookie = None;
        for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or(LsdError::BadHeader)?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("port") {
                port = value.parse::<u16>().ok().filter(|p| *p != 0);
                if port.is_none() {
                    return Err(LsdError::BadPort);
                }
            } else if name.eq_ignore_ascii_case("infohash") {
                if info_hashes.len() == MAX_HASHES {
                    return Err(LsdError::TooManyInfoHashes);
                }
                let h = InfoHash::from_hex(value.as_bytes()).ok_or(LsdError::BadInfoHash)?;
                info_hashes.push(h);
            } else if name.eq_ignore_ascii_case("cookie") {
                cookie = Some(value.to_owned());
            }
        }
        let port = port.ok_or(LsdError::BadPort)?;
        if info_hashes.is_empty() {
            return Err(LsdError::NoInfoHash);
        }
        Ok(LsdMessage {
            port,
            info_hashes,
            cookie,
        })
    }
}

/// A peer another host announced for one of our torrents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalPeer {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Where it accepts peers: the datagram's source address with the
    /// announced port.
    pub addr: SocketAddr,
}

/// The LSD machine; see the module documentation.
#[derive(Debug)]
pub struct LocalDiscovery {
    port: u16,
    families: Vec<IpFamily>,
    cookie: String,
    /// Each torrent's next announce, and whether it runs (a paused,
    /// queued or checking torrent is not announced, as libtorrent does;
    /// it still takes the peers heard for it).
    torrents: BTreeMap<InfoHash, (Instant, bool)>,
    incoming: TokenBucket,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    found: VecDeque<LocalPeer>,
    now: Instant,
}

impl LocalDiscovery {
    /// Announcing that we accept peers on `port`, to the groups of
    /// `families`; the cookie comes from `seed`.
    pub fn new(now: Instant, port: u16, families: &[IpFamily], seed: Seed) -> LocalDiscovery {
        let mut rng = Rng::new(seed);
        LocalDiscovery {
            port,
            families: families.to_vec(),
            cookie: format!("{:016x}", rng.next_u64()),
            torrents: BTreeMap::new(),
            incoming: TokenBucket::with_burst(INCOMING_RATE, INCOMING_RATE, now),
            out: VecDeque::new(),
            found: VecDeque::new(),
            now,
        }
    }

    /// Announces `info_hash` now and every [`ANNOUNCE_INTERVAL`] while it
    /// is active.
    pub fn add(&mut self, now: Instant, info_hash: InfoHash) {
        self.now = now;
        self.torrents.insert(info_hash, (now, true));
    }

    /// The torrent runs again (announced at once) or no longer does (not
    /// announced until it runs).
    pub fn set_active(&mut self, now: Instant, info_hash: &InfoHash, active: bool) {
        self.now = now;
        if let Some((next, was)) = self.torrents.get_mut(info_hash) {
            if active && !*was {
                *next = now;
            }
            *was = active;
        }
    }

    /// Stops announcing `info_hash` and taking peers for it.
    pub fn remove(&mut self, info_hash: &InfoHash) {
        self.torrents.remove(info_hash);
    }

    /// A datagram that [`is_lsd_datagram`] claimed, from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.now = now;
        if !self.incoming.try_take(now, 1) {
            return;
        }
        let Ok(msg) = LsdMessage::decode(datagram) else {
            return;
        };
        if msg.cookie.as_deref() == Some(self.cookie.as_str()) {
            return;
        }
        // The sender's address with its scope kept: an IPv6 announce
        // comes from a link-local address, reachable only through the
        // interface it arrived on.
        let mut addr = from;
        addr.set_port(msg.port);
        for info_hash in msg.info_hashes {
            if self.torrents.contains_key(&info_hash) {
                self.found.push_back(LocalPeer { info_hash, addr });
            }
        }
    }

    /// Sends the announces that are due: the due info-hashes, as many to a
    /// datagram as fit, to each group.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let due: Vec<InfoHash> = self
            .torrents
            .iter()
            .filter(|(_, (at, active))| *active && *at <= now)
            .map(|(h, _)| *h)
            .collect();
        if due.is_empty() {
            return;
        }
        for h in &due {
            self.torrents.insert(*h, (now + ANNOUNCE_INTERVAL, true));
        }
        for &family in &self.families {
            let group = group(family);
            let mut msg = LsdMessage {
                port: self.port,
                info_hashes: Vec::new(),
                cookie: Some(self.cookie.clone()),
            };
            for h in &due {
                msg.info_hashes.push(*h);
                if msg.encode(group).len() > MAX_DATAGRAM {
                    let last = msg.info_hashes.pop();
                    self.out.push_back((group, msg.encode(group)));
                    msg.info_hashes = last.into_iter().collect();
                }
            }
            self.out.push_back((group, msg.encode(group)));
        }
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next peer found.
    #[must_use]
    pub fn poll_peer(&mut self) -> Option<LocalPeer> {
        self.found.pop_front()
    }

    /// When the next announce is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.torrents
            .values()
            .filter(|(_, active)| *active)
            .map(|(at, _)| *at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn an_announce_round_trips_and_reads_as_the_bep_writes_it() {
        let m = LsdMessage {
            port: 6881,
            info_hashes: vec![hash(1), hash(0xab)],
            cookie: Some("c00c1e".into()),
        };
        let bytes = m.encode(GROUP_V4);
        assert!(is_lsd_datagram(&bytes));
        assert_eq!(LsdMessage::decode(&bytes), Ok(m));
        let text = "BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\nPORT: 51413\r\n\
                    INFOHASH: 0123456789ABCDEF0123456789abcdef01234567\r\n\r\n\r\n";
        let m = LsdMessage::decode(text.as_bytes()).unwrap();
        assert_eq!(m.port, 51413);
        assert_eq!(
            m.info_hashes[0].to_string(),
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(m.cookie, None);
        assert_eq!(GROUP_V6.to_string(), "[ff15::efc0:988f]:6771");
    }

    #[test]
    fn malformed_announces_say_why() {
        let head = "BT-SEARCH * HTTP/1.1\r\n";
        let ih = "Infohash: 0123456789abcdef0123456789abcdef01234567\r\n";
        let cases: [(String, LsdError); 6] = [
            ("M-SEARCH * HTTP/1.1\r\n".into(), LsdError::NotAnnounce),
            (format!("{head}Port: 0\r\n{ih}\r\n"), LsdError::BadPort),
            (format!("{head}{ih}\r\n"), LsdError::BadPort),
            (format!("{head}Port: 1\r\n\r\n"), LsdError::NoInfoHash),
            (
                format!("{head}Port: 1\r\nInfohash: zz\r\n"),
                LsdError::BadInfoHash,
            ),
            (format!("{head}Port 1\r\n"), LsdError::BadHeader),
        ];
        for (text, want) in cases {
            assert_eq!(LsdMessage::decode(text.as_bytes()), Err(want), "{text:?}");
        }
        let many = format!("{head}Port: 1\r\n{}\r\n", ih.repeat(MAX_HASHES + 1));
        assert_eq!(
            LsdMessage::decode(many.as_bytes()),
            Err(LsdError::TooManyInfoHashes)
        );
        let long = format!("{head}Port: 1\r\n{ih}X: {}\r\n", "x".repeat(MAX_READ));
        assert_eq!(LsdMessage::decode(long.as_bytes()), Err(LsdError::TooLong));
    }

    #[test]
    fn torrents_are_announced_at_once_then_every_interval_packed_under_1400_bytes() {
        let t0 = Instant::ZERO;
        let mut lsd = LocalDiscovery::new(t0, 6881, &IpFamily::ALL, Seed::from_u64(1));
        for i in 0..40 {
            lsd.add(t0, hash(i));
        }
        assert_eq!(lsd.poll_timeout(), Some(t0));
        lsd.handle_timeout(t0);
        let mut sent = Vec::new();
        while let Some(d) = lsd.poll_transmit() {
            sent.push(d);
        }
        for family in IpFamily::ALL {
            let datagrams: Vec<&Vec<u8>> = sent
                .iter()
                .filter(|(to, _)| *to == group(family))
                .map(|(_, d)| d)
                .collect();
            assert_eq!(datagrams.len(), 2, "40 hashes take two datagrams");
            let hashes: usize = datagrams
                .iter()
                .map(|d| {
                    assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
                    LsdMessage::decode(d).unwrap().info_hashes.len()
                })
                .sum();
            assert_eq!(hashes, 40);
        }
        lsd.handle_timeout(t0 + Duration::from_secs(1));
        assert!(lsd.poll_transmit().is_none(), "nothing due again yet");
        assert_eq!(lsd.poll_timeout(), Some(t0 + ANNOUNCE_INTERVAL));
    }

    #[test]
    fn a_torrent_that_does_not_run_is_not_announced_until_it_runs_again() {
        let t0 = Instant::ZERO;
        let mut lsd = LocalDiscovery::new(t0, 6881, &[IpFamily::V4], Seed::from_u64(4));
        lsd.add(t0, hash(1));
        lsd.set_active(t0, &hash(1), false);
        assert_eq!(lsd.poll_timeout(), None);
        lsd.handle_timeout(t0 + ANNOUNCE_INTERVAL);
        assert!(lsd.poll_transmit().is_none(), "paused: not announced");
        let t1 = t0 + ANNOUNCE_INTERVAL * 2;
        lsd.set_active(t1, &hash(1), true);
        assert_eq!(lsd.poll_timeout(), Some(t1), "resumed: announced at once");
        lsd.handle_timeout(t1);
        assert!(lsd.poll_transmit().is_some());
    }

    #[test]
    fn others_announces_become_peers_ours_and_unknown_torrents_do_not() {
        let t0 = Instant::ZERO;
        let mut lsd = LocalDiscovery::new(t0, 6881, &[IpFamily::V4], Seed::from_u64(2));
        lsd.add(t0, hash(1));
        lsd.handle_timeout(t0);
        let (_, ours) = lsd.poll_transmit().unwrap();
        let from: SocketAddr = "192.168.1.20:6771".parse().unwrap();
        lsd.handle_datagram(t0, from, &ours);
        assert_eq!(lsd.poll_peer(), None, "our own announce, looped back");
        let theirs = LsdMessage {
            port: 51413,
            info_hashes: vec![hash(1), hash(2)],
            cookie: Some("other".into()),
        };
        lsd.handle_datagram(t0, from, &theirs.encode(GROUP_V4));
        assert_eq!(
            lsd.poll_peer(),
            Some(LocalPeer {
                info_hash: hash(1),
                addr: "192.168.1.20:51413".parse().unwrap()
            })
        );
        assert_eq!(lsd.poll_peer(), None, "hash 2 is not ours");
        lsd.remove(&hash(1));
        lsd.handle_datagram(t0, from, &theirs.encode(GROUP_V4));
        assert_eq!(lsd.poll_peer(), None, "removed");
    }

    #[test]
    fn a_link_local_sender_keeps_its_interface() {
        let t0 = Instant::ZERO;
        let mut lsd = LocalDiscovery::new(t0, 6881, &[IpFamily::V6], Seed::from_u64(5));
        lsd.add(t0, hash(1));
        let from = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            6771,
            0,
            3,
        ));
        let theirs = LsdMessage {
            port: 7003,
            info_hashes: vec![hash(1)],
            cookie: None,
        };
        lsd.handle_datagram(t0, from, &theirs.encode(GROUP_V6));
        let peer = lsd.poll_peer().expect("a peer");
        let SocketAddr::V6(v6) = peer.addr else {
            panic!("{peer:?}")
        };
        assert_eq!(
            (v6.port(), v6.scope_id()),
            (7003, 3),
            "reachable through interface 3"
        );
    }

    #[test]
    fn a_flood_is_read_at_the_incoming_rate() {
        let t0 = Instant::ZERO;
        let mut lsd = LocalDiscovery::new(t0, 6881, &[IpFamily::V4], Seed::from_u64(3));
        lsd.add(t0, hash(1));
        let msg = LsdMessage {
            port: 1000,
            info_hashes: vec![hash(1)],
            cookie: None,
        }
        .encode(GROUP_V4);
        for i in 0..1000u32 {
            let from = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6771));
            lsd.handle_datagram(t0, from, &msg);
        }
        let mut n = 0;
        while lsd.poll_peer().is_some() {
            n += 1;
        }
        assert_eq!(n, INCOMING_RATE as usize);
    }
}
