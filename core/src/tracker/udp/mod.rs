//! The UDP tracker protocol (BEP 15, with BEP 41 URL data): packets here,
//! the client's retrying state machine in `client`.
//!
//! A client first obtains a connection id (a cookie proving it can receive
//! at its address), then announces or scrapes with it. Every request
//! carries a random transaction id; answers with another one are ignored.
//! UDP loses packets, so requests are retransmitted after 15·2ⁿ seconds
//! (n = 0..8) before the tracker is declared dead. The connection id is
//! good for one minute on the client's side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{AnnounceEvent, AnnounceRequest};
use crate::coding::Reader;
use crate::compact;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::metainfo::InfoHash;
use crate::wire::PeerId;

/// BEP 15's magic constant opening every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes in one scrape packet (BEP 15: "up to about 74").
pub const MAX_SCRAPE: usize = 74;
/// How long a connection id stays usable on the client's side.
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// Retransmissions after the first send: 15·2ⁿ s for n = 0..=8.
pub const MAX_RETRIES: u32 = 8;
/// Most URL data bytes passed through (BEP 41 chunks of up to 255).
pub const MAX_URL_DATA: usize = 1024;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// A client → tracker packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpRequest {
    /// Ask for a connection id.
    Connect {
        /// Transaction id.
        tx: u32,
    },
    /// Announce.
    Announce {
        /// Connection id.
        conn_id: u64,
        /// Transaction id.
        tx: u32,
        /// What to announce (`tracker_id` is not sent over UDP; `ip` only
        /// for IPv4).
        request: AnnounceRequest,
        /// BEP 41: the path and query of the tracker URL.
        url_data: Vec<u8>,
    },
    /// Scrape.
    Scrape {
        /// Connection id.
        conn_id: u64,
        /// Transaction id.
        tx: u32,
        /// At most [`MAX_SCRAPE`] torrents.
        hashes: Vec<InfoHash>,
    },
}

/// A tracker → client packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpResponse {
    /// A connection id.
    Connect {
        /// Transaction id.
        tx: u32,
        /// The id.
        conn_id: u64,
    },
    /// Peers.
    Announce {
        /// Transaction id.
        tx: u32,
        /// Seconds to the next announce.
        interval: u32,
        /// Leechers.
        leechers: u32,
        /// Seeders.
        seeders: u32,
        /// Peers (of the family the request came over).
        peers: Vec<SocketAddr>,
    },
    /// Counts, in request order.
    Scrape {
        /// Transaction id.
        tx: u32,
        /// (seeders, completed, leechers) per requested torrent.
        counts: Vec<(u32, u32, u32)>,
    },
    /// The tracker refused.
    Error {
        /// Transaction id.
        tx: u32,
        /// Its message.
        message: Vec<u8>,
    },
}

impl UdpRequest {
    /// Appends the packet.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            UdpRequest::Connect { tx } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
            }
            UdpRequest::Announce {
                conn_id,
                tx,
                request: r,
                url_data,
            } => {
                out.extend_from_slice(&conn_id.to_be_bytes());
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                out.extend_from_slice(&r.info_hash.0);
                out.extend_from_slice(&r.peer_id.0);
                out.extend_from_slice(&r.downloaded.to_be_bytes());
                out.extend_from_slice(&r.left.to_be_bytes());
                out.extend_from_slice(&r.uploaded.to_be_bytes());
                out.extend_from_slice(&r.event.as_udp().to_be_bytes());
                let ip = match r.ip {
                    Some(IpAddr::V4(ip)) => u32::from(ip),
                    _ => 0,
                };
                out.extend_from_slice(&ip.to_be_bytes());
                out.extend_from_slice(&r.key.unwrap_or(0).to_be_bytes());
                let numwant = r
                    .numwant
                    .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&r.port.to_be_bytes());
                // BEP 41: URLData options (type 2) of up to 255 bytes each.
                for chunk in url_data[..url_data.len().min(MAX_URL_DATA)].chunks(255) {
                    out.push(2);
                    out.push(chunk.len() as u8);
                    out.extend_from_slice(chunk);
                }
            }
            UdpRequest::Scrape {
                conn_id,
                tx,
                hashes,
            } => {
                out.extend_from_slice(&conn_id.to_be_bytes());
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                for h in hashes.iter().take(MAX_SCRAPE) {
                    out.extend_from_slice(&h.0);
                }
            }
        }
    }

    /// Decodes a client packet (the server side).
    pub fn decode(bytes: &[u8]) -> Result<UdpRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        let conn_id = r.be_u64("connection id")?;
        let action = r.be_u32("action")?;
        let tx = r.be_u32("transaction id")?;
        match action {
            CONNECT if conn_id == PROTOCOL_ID => Ok(UdpRequest::Connect { tx }),
            ANNOUNCE => {
                let info_hash = InfoHash(r.array("info_hash")?);
                let peer_id = PeerId(r.array("peer_id")?);
                let downloaded = r.be_u64("downloaded")?;
                let left = r.be_u64("left")?;
                let uploaded = r.be_u64("uploaded")?;
                let event = AnnounceEvent::from_udp(r.be_u32("event")?)
                    .ok_or_else(|| r.error(DecodeErrorKind::UnexpectedByte, "event"))?;
                let ip = r.be_u32("ip")?;
                let key = r.be_u32("key")?;
                let numwant = r.be_u32("num_want")? as i32;
                let port = r.be_u16("port")?;
                let mut url_data = Vec::new();
                // BEP 41 options; anything unparsable after the fixed part is
                // ignored, as older clients send other trailing bytes.
                while let Ok(kind) = r.u8("option") {
                    match kind {
                        0 => break,
                        1 => continue,
                        2 => {
                            let Ok(len) = r.u8("option length") else {
                                break;
                            };
                            let Ok(data) = r.take(usize::from(len), "url data") else {
                                break;
                            };
                            if url_data.len() + data.len() <= MAX_URL_DATA {
                                url_data.extend_from_slice(data);
                            }
                        }
                        _ => break,
                    }
                }
                Ok(UdpRequest::Announce {
                    conn_id,
                    tx,
                    request: AnnounceRequest {
                        info_hash,
                        peer_id,
                        port,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        numwant: u32::try_from(numwant).ok(),
                        key: Some(key),
                        tracker_id: None,
                        ip: (ip != 0).then(|| IpAddr::V4(Ipv4Addr::from(ip))),
                    },
                    url_data,
                })
            }
            SCRAPE => {
                let n = r.left() / 20;
                if n == 0 || n > MAX_SCRAPE {
                    return Err(r.error(DecodeErrorKind::LengthLimit, "scrape info-hashes"));
                }
                let hashes = (0..n)
                    .map(|_| r.array("info_hash").map(InfoHash))
                    .collect::<Result<_, _>>()?;
                Ok(UdpRequest::Scrape {
                    conn_id,
                    tx,
                    hashes,
                })
            }
            _ => Err(DecodeError::new(
                DecodeErrorKind::UnexpectedByte,
                8,
                "action",
            )),
        }
    }
}

impl UdpResponse {
    /// Transaction id.
    pub fn tx(&self) -> u32 {
        match self {
            UdpResponse::Connect { tx, .. }
            | UdpResponse::Announce { tx, .. }
            | UdpResponse::Scrape { tx, .. }
            | UdpResponse::Error { tx, .. } => *tx,
        }
    }

    /// Decodes a tracker packet; `ipv6` says which peer format an announce
    /// answer uses (that of the address family the request went over).
    pub fn decode(bytes: &[u8], ipv6: bool) -> Result<UdpResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        let action = r.be_u32("action")?;
        let tx = r.be_u32("transaction id")?;
        match action {
            CONNECT => Ok(UdpResponse::Connect {
                tx,
                conn_id: r.be_u64("connection id")?,
            }),
            ANNOUNCE => {
                let interval = r.be_u32("interval")?;
                let leechers = r.be_u32("leechers")?;
                let seeders = r.be_u32("seeders")?;
                let rest = r.rest();
                let peers = if ipv6 {
                    compact::decode_v6(rest).collect()
                } else {
                    compact::decode_v4(rest).collect()
                };
                Ok(UdpResponse::Announce {
                    tx,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE => {
                let rest = r.rest();
                let counts = rest
                    .chunks_exact(12)
                    .map(|c| {
                        let n = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                        (n(0), n(4), n(8))
                    })
                    .collect();
                Ok(UdpResponse::Scrape { tx, counts })
            }
            ERROR => Ok(UdpResponse::Error {
                tx,
                message: r.rest().to_vec(),
            }),
            _ => Err(DecodeError::new(
                DecodeErrorKind::UnexpectedByte,
                0,
                "action",
            )),
        }
    }

    /// Appends the packet.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            UdpResponse::Connect { tx, conn_id } => {
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                out.extend_from_slice(&conn_id.to_be_bytes());
            }
            UdpResponse::Announce {
                tx,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                for p in peers {
                    compact::encode(out, p);
                }
            }
            UdpResponse::Scrape { tx, counts } => {
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                for (s, c, l) in counts {
                    out.extend_from_slice(&s.to_be_bytes());
                    out.extend_from_slice(&c.to_be_bytes());
                    out.extend_from_slice(&l.to_be_bytes());
                }
            }
            UdpResponse::Error { tx, message } => {
                out.extend_from_slice(&ERROR.to_be_bytes());
                out.extend_from_slice(&tx.to_be_bytes());
                out.extend_from_slice(message);
            }
        }
    }
}

mod client;
pub use client::{UdpJob, UdpTrackerClient, UdpTrackerEvent};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;
    use crate::time::Instant;
    use crate::tracker::TrackerError;

    const JOB: UdpJob = UdpJob(1);

    fn tracker() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 6969))
    }

    fn request() -> AnnounceRequest {
        let mut r = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
        r.left = 77;
        r.event = AnnounceEvent::Started;
        r.key = Some(5);
        r.numwant = Some(30);
        r
    }

    /// A tiny tracker answering whatever the client sends.
    fn answer(packet: &[u8], conn_id: u64) -> Vec<u8> {
        let mut out = Vec::new();
        match UdpRequest::decode(packet).unwrap() {
            UdpRequest::Connect { tx } => UdpResponse::Connect { tx, conn_id }.encode(&mut out),
            UdpRequest::Announce { tx, conn_id: c, .. } => {
                assert_eq!(c, conn_id);
                UdpResponse::Announce {
                    tx,
                    interval: 1800,
                    leechers: 2,
                    seeders: 3,
                    peers: vec!["10.0.0.1:6881".parse().unwrap()],
                }
                .encode(&mut out)
            }
            UdpRequest::Scrape { tx, hashes, .. } => UdpResponse::Scrape {
                tx,
                counts: hashes.iter().map(|_| (1, 2, 3)).collect(),
            }
            .encode(&mut out),
        }
        out
    }

    #[test]
    fn packets_round_trip_with_url_data() {
        let p = UdpRequest::Announce {
            conn_id: 42,
            tx: 7,
            request: AnnounceRequest {
                tracker_id: None,
                ..request()
            },
            url_data: b"/announce?passkey=".repeat(20),
        };
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(&out[..8], &42u64.to_be_bytes());
        let back = UdpRequest::decode(&out).unwrap();
        assert_eq!(back, p);
        let mut c = Vec::new();
        UdpRequest::Connect { tx: 9 }.encode(&mut c);
        assert_eq!(&c[..8], &[0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80]);
        assert_eq!(
            UdpRequest::decode(&c).unwrap(),
            UdpRequest::Connect { tx: 9 }
        );
        let v6 = UdpResponse::Announce {
            tx: 1,
            interval: 2,
            leechers: 3,
            seeders: 4,
            peers: vec!["[::1]:80".parse().unwrap()],
        };
        let mut b = Vec::new();
        v6.encode(&mut b);
        assert_eq!(UdpResponse::decode(&b, true).unwrap(), v6);
    }

    #[test]
    fn connect_then_announce_then_reuse_the_connection() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(1));
        let t = Instant::ZERO;
        c.announce(t, JOB, request(), b"");
        let connect = c.poll_transmit().unwrap().1;
        c.handle_datagram(t, &answer(&connect, 99));
        let announce = c.poll_transmit().unwrap().1;
        assert!(matches!(
            UdpRequest::decode(&announce).unwrap(),
            UdpRequest::Announce { conn_id: 99, .. }
        ));
        c.handle_datagram(t, &answer(&announce, 99));
        match c.poll_event() {
            Some(UdpTrackerEvent::Announced(JOB, r)) => {
                assert_eq!(
                    (r.interval, r.complete, r.incomplete),
                    (1800, Some(3), Some(2))
                );
                assert_eq!(r.peers.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        // Within a minute the connection id is reused for a scrape.
        let t2 = t + Duration::from_secs(30);
        c.scrape(t2, JOB, vec![InfoHash([1; 20]), InfoHash([2; 20])]);
        let scrape = c.poll_transmit().unwrap().1;
        assert!(matches!(
            UdpRequest::decode(&scrape).unwrap(),
            UdpRequest::Scrape { .. }
        ));
        c.handle_datagram(t2, &answer(&scrape, 99));
        assert!(matches!(c.poll_event(), Some(UdpTrackerEvent::Scraped(JOB, e)) if e.len() == 2));
        // After a minute it connects again first.
        c.announce(t + Duration::from_secs(61), JOB, request(), b"");
        assert!(matches!(
            UdpRequest::decode(&c.poll_transmit().unwrap().1).unwrap(),
            UdpRequest::Connect { .. }
        ));
    }

    #[test]
    fn wrong_transaction_ids_are_ignored() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(2));
        c.announce(Instant::ZERO, JOB, request(), b"");
        let connect = c.poll_transmit().unwrap().1;
        let mut forged = answer(&connect, 5);
        forged[7] ^= 1;
        c.handle_datagram(Instant::ZERO, &forged);
        c.handle_datagram(Instant::ZERO, b"\x00\x00\x00\x01junk");
        assert_eq!(c.ignored(), 2);
        assert!(c.poll_transmit().is_none(), "nothing sent on forged input");
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn retransmits_through_the_whole_ladder_then_fails() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(3));
        let mut now = Instant::ZERO;
        c.announce(now, JOB, request(), b"");
        let _ = c.poll_transmit().unwrap().1;
        let mut waits = Vec::new();
        loop {
            let deadline = c.poll_timeout().unwrap();
            waits.push((deadline - now).as_secs());
            now = deadline;
            c.handle_timeout(now);
            if let Some(e) = c.poll_event() {
                assert_eq!(e, UdpTrackerEvent::Failed(JOB, TrackerError::TimedOut));
                break;
            }
            assert!(c.poll_transmit().is_some(), "retransmitted");
        }
        assert_eq!(waits, vec![15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
        assert!(!c.is_busy());
    }

    #[test]
    fn an_answer_of_the_wrong_kind_keeps_the_request_pending() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(5));
        c.announce(Instant::ZERO, JOB, request(), b"");
        let connect = c.poll_transmit().unwrap().1;
        c.handle_datagram(Instant::ZERO, &answer(&connect, 1));
        let announce = c.poll_transmit().unwrap().1;
        let UdpRequest::Announce { tx, .. } = UdpRequest::decode(&announce).unwrap() else {
            panic!()
        };
        let mut wrong = Vec::new();
        UdpResponse::Scrape {
            tx,
            counts: vec![(1, 1, 1)],
        }
        .encode(&mut wrong);
        c.handle_datagram(Instant::ZERO, &wrong);
        assert_eq!(c.ignored(), 1);
        assert!(c.is_busy());
        c.handle_datagram(Instant::ZERO, &answer(&announce, 1));
        assert!(matches!(
            c.poll_event(),
            Some(UdpTrackerEvent::Announced(JOB, _))
        ));
    }

    #[test]
    fn error_action_is_the_trackers_message() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(4));
        c.announce(Instant::ZERO, JOB, request(), b"");
        let connect = c.poll_transmit().unwrap().1;
        let UdpRequest::Connect { tx } = UdpRequest::decode(&connect).unwrap() else {
            panic!()
        };
        let mut e = Vec::new();
        UdpResponse::Error {
            tx,
            message: b"unregistered torrent".to_vec(),
        }
        .encode(&mut e);
        c.handle_datagram(Instant::ZERO, &e);
        assert_eq!(
            c.poll_event(),
            Some(UdpTrackerEvent::Failed(
                JOB,
                TrackerError::Refused("unregistered torrent".into())
            ))
        );
    }

    #[test]
    fn torrents_on_one_tracker_share_a_connect_and_get_their_own_answers() {
        let mut c = UdpTrackerClient::new(tracker(), Seed::from_u64(8));
        let t = Instant::ZERO;
        let mut other = request();
        other.info_hash = InfoHash([9; 20]);
        c.announce(t, UdpJob(1), request(), b"/a");
        c.announce(t, UdpJob(2), other, b"/b");
        let (to, connect) = c.poll_transmit().unwrap();
        assert_eq!(to, tracker());
        assert!(c.poll_transmit().is_none(), "one connect for both");
        c.handle_datagram(t, &answer(&connect, 77));
        let first = c.poll_transmit().unwrap().1;
        let second = c.poll_transmit().unwrap().1;
        let hash_of = |p: &[u8]| match UdpRequest::decode(p).unwrap() {
            UdpRequest::Announce {
                request, url_data, ..
            } => (request.info_hash, url_data),
            other => panic!("{other:?}"),
        };
        assert_eq!(hash_of(&first), (InfoHash([1; 20]), b"/a".to_vec()));
        assert_eq!(hash_of(&second), (InfoHash([9; 20]), b"/b".to_vec()));
        // Answers in the other order reach their own jobs.
        c.handle_datagram(t, &answer(&second, 77));
        c.handle_datagram(t, &answer(&first, 77));
        assert!(matches!(
            c.poll_event(),
            Some(UdpTrackerEvent::Announced(UdpJob(2), _))
        ));
        assert!(matches!(
            c.poll_event(),
            Some(UdpTrackerEvent::Announced(UdpJob(1), _))
        ));
        // The connection id is reused by a later torrent.
        c.announce(t + Duration::from_secs(10), UdpJob(3), request(), b"");
        assert!(matches!(
            UdpRequest::decode(&c.poll_transmit().unwrap().1).unwrap(),
            UdpRequest::Announce { conn_id: 77, .. }
        ));
        c.cancel(UdpJob(3));
        assert!(!c.is_busy());
    }
}
