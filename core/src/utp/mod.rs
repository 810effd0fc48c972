//! uTP, the Micro Transport Protocol (BEP 29): reliable, ordered byte
//! streams over UDP with LEDBAT congestion control, so BitTorrent traffic
//! yields to other traffic on the same link and reaches peers behind NATs
//! that only let UDP through.
//!
//! The pieces, one concept per module:
//!
//! - [`packet`]: the wire format (header, extension chain, selective ACK)
//!   and the rule that tells uTP from DHT and UDP-tracker datagrams on the
//!   one UDP socket;
//! - `seq`: 16-bit wrapping sequence numbers;
//! - `send_buffer` / `recv_buffer`: written bytes and the retransmission
//!   queue; the reorder buffer and the ordered stream the application reads;
//! - `rtt`: round-trip estimation and the retransmission timeout;
//! - `ledbat`: the congestion window from one-way delay;
//! - [`Connection`]: the state machine (SYN/STATE/DATA/FIN/RESET);
//! - [`UtpSocket`]: many connections behind one UDP socket, with caps on
//!   connections and half-open handshakes.
//!
//! Path MTU: a connection starts with datagrams of
//! [`Config::min_datagram`] bytes (1,232, which fits IPv6's 1,280-byte
//! minimum MTU) and probes for larger ones up to [`Config::max_datagram`]
//! (1,472, a 1,500-byte Ethernet MTU less the IPv4 and UDP headers); the
//! `mtu` module says how. A probe leaves as a [`Transmit`] marked
//! `probe`, for the driver to send with fragmentation forbidden.
//!
//! Like every machine in the core, nothing here does I/O, reads a clock or
//! draws OS randomness: datagrams and `now` come in, datagrams go out.

use std::fmt;
use std::time::Duration;

mod connection;
mod ledbat;
mod mtu;
pub mod packet;
mod recv_buffer;
mod rtt;
mod send_buffer;
mod seq;
mod socket;
mod timer;

#[cfg(test)]
pub(crate) mod tests;

pub use connection::{Connection, State};
pub use packet::{is_utp_datagram, Packet, PacketType, SelectiveAck};
pub use seq::SeqNr;
pub use socket::{ConnectError, SocketEvent, SocketLimits, UtpConnId, UtpSocket};

/// Tunables of a connection; [`Config::default`] follows BEP 29 and
/// libutp where the BEP is silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest datagram we send to an IPv4 peer, headers included:
    /// path MTU discovery searches up to it (20 bytes less for IPv6,
    /// [`Config::for_peer`]).
    pub max_datagram: usize,
    /// The datagram size a connection starts with, and a new search
    /// starts from: one every path carries.
    pub min_datagram: usize,
    /// Bytes we buffer for the application to read (our advertised window).
    pub recv_buffer: usize,
    /// Bytes the application may have written and not yet had acknowledged.
    pub send_buffer: usize,
    /// LEDBAT's target queuing delay; BEP 29: "CCONTROL_TARGET … 100 ms".
    pub target_delay: Duration,
    /// How long a connection may hear nothing before it is dropped.
    pub idle_timeout: Duration,
    /// How long a handshake may take before it is dropped.
    pub handshake_timeout: Duration,
    /// How long a connection whose FIN was acknowledged waits for more
    /// data or the peer's FIN.
    pub linger: Duration,
    /// How long a finished connection still answers the peer's
    /// retransmitted FIN (TCP's TIME-WAIT).
    pub time_wait: Duration,
    /// How often an otherwise quiet connection sends a STATE, to keep NAT
    /// mappings alive (libutp uses 29 s).
    pub keepalive_interval: Duration,
    /// Retransmissions of the SYN before giving up.
    pub syn_retries: u32,
    /// Retransmission timeouts in a row before giving up.
    pub data_retries: u32,
    /// Packets in flight at most, well under half the sequence space.
    pub max_packets_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_datagram: 1472,
            min_datagram: 1232,
            recv_buffer: 1 << 20,
            send_buffer: 1 << 20,
            target_delay: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(10),
            time_wait: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(29),
            syn_retries: 3,
            data_retries: 8,
            max_packets_in_flight: 4096,
        }
    }
}

impl Config {
    /// Payload bytes per packet: the datagram less the header and the
    /// largest selective ACK we send.
    pub fn max_payload(&self) -> usize {
        payload_room(self.max_datagram)
    }

    /// The settings for a connection with `peer`: the datagram sizes
    /// count an IPv4 header, and an IPv6 one is 20 bytes longer (a
    /// 1,500-byte link carries 1,452 bytes of UDP payload over IPv6), so
    /// no probe is sure to fail.
    pub fn for_peer(&self, peer: &std::net::SocketAddr) -> Config {
        let mut c = *self;
        if peer.is_ipv6() {
            c.max_datagram = c.max_datagram.saturating_sub(IPV6_EXTRA_HEADER).max(1);
            c.min_datagram = c.min_datagram.min(c.max_datagram);
        }
        c
    }
}

/// How much longer an IPv6 header is than an IPv4 one.
const IPV6_EXTRA_HEADER: usize = 20;

/// Payload bytes in a datagram of `datagram` bytes, less the header and
/// the largest selective ACK we send.
fn payload_room(datagram: usize) -> usize {
    datagram
        .saturating_sub(packet::HEADER_LEN + packet::MAX_SACK_EXTENSION_LEN)
        .max(1)
}

/// A datagram a connection wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// The bytes.
    pub payload: Vec<u8>,
    /// A path MTU probe: send it with fragmentation forbidden (IPv4's
    /// "don't fragment" bit, IPv6's `DONTFRAG`), so a path too narrow for
    /// it loses it instead of splitting it. A driver that cannot may drop
    /// it: the connection then keeps its starting size.
    pub probe: bool,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Our FIN was acknowledged: everything we wrote arrived.
    Finished,
    /// The peer sent `ST_RESET`.
    Reset,
    /// The peer answered our SYN with `ST_RESET`.
    Refused,
    /// Retransmissions went unanswered, or nothing arrived for too long.
    TimedOut,
    /// We aborted it, or closed it before it was established.
    Aborted,
    /// Our SYN crossed the peer's and lost the tie-break
    /// ([`UtpSocket`](socket::UtpSocket) keeps one of two simultaneous
    /// opens): the peer's connection, accepted instead, carries the
    /// stream, so nothing is to be dialled again.
    Crossed,
}

impl CloseReason {
    /// Whether the connection ended abnormally.
    pub fn is_error(self) -> bool {
        self != CloseReason::Finished
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Finished => "uTP connection closed normally",
            CloseReason::Reset => "uTP peer reset the connection",
            CloseReason::Refused => "uTP peer refused the connection",
            CloseReason::TimedOut => "uTP connection timed out",
            CloseReason::Aborted => "uTP connection aborted locally",
            CloseReason::Crossed => "uTP connection replaced by the peer's simultaneous one",
        })
    }
}

impl std::error::Error for CloseReason {}

/// What a connection reports to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Event {
    /// The handshake completed; data may flow.
    Connected,
    /// The connection is over.
    Closed(CloseReason),
}

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent.
    pub sent: u64,
    /// Packets for this connection received.
    pub received: u64,
    /// Packets resent (after a timeout or a detected loss).
    pub retransmits: u64,
    /// Losses detected from duplicate or selective ACKs.
    pub fast_retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Data packets received twice.
    pub duplicates: u64,
    /// Data packets refused for lack of room.
    pub dropped: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// The datagram size the path is known to carry (path MTU
    /// discovery's floor).
    pub datagram_size: usize,
    /// Path MTU probes that got through.
    pub probes_acked: u32,
    /// Path MTU probes lost (the path is narrower).
    pub probes_lost: u32,
}
