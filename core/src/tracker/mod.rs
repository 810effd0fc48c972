//! Trackers: the HTTP (BEP 3, 23, 7, 24, 48) and UDP (BEP 15, 41) client
//! codecs and state machines, multitracker tiers (BEP 12), and a tracker
//! server.
//!
//! A tracker is a rendezvous: clients announce the torrent they are in and
//! their listen port, and receive a few other peers. The same request and
//! response types serve both protocols ([`AnnounceRequest`],
//! [`AnnounceResponse`]); the HTTP side is a pure codec (the driver does the
//! HTTP request, with rustls for HTTPS), the UDP side a retrying state
//! machine ([`udp::UdpTrackerClient`]).

pub mod http;
pub mod server;
pub mod tiers;
pub mod udp;
pub mod url;

pub use url::TrackerUrl;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::error::DecodeError;
use crate::metainfo::InfoHash;
use crate::wire::PeerId;

/// Why an announce is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum AnnounceEvent {
    /// A regular announce.
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download finished (sent once).
    Completed,
    /// We are leaving.
    Stopped,
}

impl AnnounceEvent {
    /// The HTTP `event` value (absent for `None`).
    pub fn as_http(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::None => None,
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Stopped => Some("stopped"),
        }
    }

    /// The UDP event code (BEP 15: 0 none, 1 completed, 2 started, 3 stopped).
    pub fn as_udp(self) -> u32 {
        match self {
            AnnounceEvent::None => 0,
            AnnounceEvent::Completed => 1,
            AnnounceEvent::Started => 2,
            AnnounceEvent::Stopped => 3,
        }
    }

    /// From the UDP event code.
    pub fn from_udp(code: u32) -> Option<AnnounceEvent> {
        Some(match code {
            0 => AnnounceEvent::None,
            1 => AnnounceEvent::Completed,
            2 => AnnounceEvent::Started,
            3 => AnnounceEvent::Stopped,
            _ => return None,
        })
    }

    /// From the HTTP `event` value.
    pub fn from_http(value: &[u8]) -> Option<AnnounceEvent> {
        Some(match value {
            b"" | b"empty" | b"paused" => AnnounceEvent::None,
            b"started" => AnnounceEvent::Started,
            b"completed" => AnnounceEvent::Completed,
            b"stopped" => AnnounceEvent::Stopped,
            _ => return None,
        })
    }
}

/// One announce, for either protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our listen port.
    pub port: u16,
    /// Payload bytes uploaded since `started`.
    pub uploaded: u64,
    /// Payload bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still wanted.
    pub left: u64,
    /// Why we announce.
    pub event: AnnounceEvent,
    /// Peers wanted (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// A random key identifying us across address changes.
    pub key: Option<u32>,
    /// The `tracker id` the tracker gave us last time (HTTP).
    pub tracker_id: Option<Vec<u8>>,
    /// Our IPv4 / IPv6 address when we know it (BEP 7 `ipv4`/`ipv6`).
    pub ip: Option<IpAddr>,
}

impl AnnounceRequest {
    /// A request with the counters at zero and no options.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> AnnounceRequest {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            numwant: None,
            key: None,
            tracker_id: None,
            ip: None,
        }
    }
}

/// A tracker's answer to an announce.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Never announce more often than this.
    pub min_interval: Option<u32>,
    /// To send back as `trackerid` next time.
    pub tracker_id: Option<Vec<u8>>,
    /// Seeders.
    pub complete: Option<u32>,
    /// Leechers.
    pub incomplete: Option<u32>,
    /// Peers, IPv4 and IPv6.
    pub peers: Vec<SocketAddr>,
    /// A warning to show the user.
    pub warning: Option<String>,
    /// BEP 24: our address as the tracker sees it.
    pub external_ip: Option<IpAddr>,
}

/// Counts for one torrent from a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeEntry {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// Longest message from a tracker we pass on (failure reason, warning,
/// UDP error); longer ones are cut.
pub const MAX_MESSAGE_LEN: usize = 512;

/// Why a tracker exchange failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackerError {
    /// The tracker answered with `failure reason` / UDP error: its text
    /// (printable characters only, at most [`MAX_MESSAGE_LEN`]).
    Refused(String),
    /// The body is not bencode (or not a dictionary).
    Malformed(DecodeError),
    /// The body looks like an HTML page (a web server error, a captive
    /// portal), not a tracker response.
    Html,
    /// A required field is missing or has the wrong type.
    MissingField(&'static str),
    /// A UDP tracker did not answer after every retransmission.
    TimedOut,
    /// The tracker could not be reached (connection refused, DNS, TLS…);
    /// the driver's description.
    Unreachable(String),
    /// The tracker URL cannot be used (bad scheme, no scrape URL, …).
    BadUrl(&'static str),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Refused(m) => write!(f, "tracker refused: {m}"),
            TrackerError::Malformed(e) => write!(f, "tracker response is not valid bencode: {e}"),
            TrackerError::Html => {
                f.write_str("tracker returned an HTML page instead of a tracker response")
            }
            TrackerError::MissingField(k) => write!(f, "tracker response lacks a valid `{k}`"),
            TrackerError::TimedOut => f.write_str("tracker did not answer"),
            TrackerError::Unreachable(why) => write!(f, "tracker unreachable: {why}"),
            TrackerError::BadUrl(why) => write!(f, "bad tracker URL: {why}"),
        }
    }
}

impl std::error::Error for TrackerError {}

/// Keeps a tracker's text printable and short.
pub(crate) fn clean_message(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_MESSAGE_LEN)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}
