//! Talking to trackers from a driver: the HTTP(S) request the core's HTTP
//! codec asks for (ureq with rustls), and a small loop that runs the core's
//! UDP tracker client over a socket.
//!
//! These are blocking calls: command-line tools call them directly, event
//! loops call them on their blocking pool.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use bittide_core::tracker::http::{self, scrape_request_url, scrape_url};
use bittide_core::tracker::udp::{UdpTrackerClient, UdpTrackerEvent};
use bittide_core::tracker::{AnnounceRequest, AnnounceResponse, ScrapeEntry, TrackerError};
use bittide_core::{InfoHash, Instant};

use crate::clock::{os_seed, Clock};

/// Largest tracker response body read.
const MAX_BODY: u64 = 4 << 20;

/// Fetches `url` and returns the body (any status: trackers put their
/// `failure reason` in error responses too).
pub fn http_get(url: &str, timeout: Duration) -> Result<Vec<u8>, TrackerError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .user_agent(concat!("bittide/", env!("CARGO_PKG_VERSION")))
        .build();
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return Err(TrackerError::Unreachable(t.to_string()));
        }
    };
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .map_err(|e| TrackerError::Unreachable(e.to_string()))?;
    Ok(body)
}

/// The `host:port` and BEP 41 URL data (path and query) of a `udp://` URL.
pub fn split_udp_url(url: &str) -> Result<(String, Vec<u8>), TrackerError> {
    let rest = url
        .strip_prefix("udp://")
        .ok_or(TrackerError::BadUrl("not a udp:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(TrackerError::BadUrl("no host"));
    }
    Ok((authority.to_owned(), path.as_bytes().to_vec()))
}

fn resolve(authority: &str) -> Result<SocketAddr, TrackerError> {
    authority
        .to_socket_addrs()
        .map_err(|e| TrackerError::Unreachable(e.to_string()))?
        .next()
        .ok_or(TrackerError::BadUrl("host did not resolve"))
}

/// What a UDP tracker exchange needs from the outside: a clock and a
/// connected datagram socket (a real one in [`run_udp`], a simulated one
/// in the fuzz target).
pub trait UdpPort {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Sends a datagram to the tracker (errors are lost packets).
    fn send(&mut self, packet: &[u8]);
    /// Waits up to `wait` for a datagram into `buf`.
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> Received;
}

/// What waiting for a datagram came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A datagram of this many bytes.
    Datagram(usize),
    /// Nothing within the wait.
    TimedOut,
    /// A socket error (ICMP port unreachable shows up here): waited out
    /// like a lost packet.
    Failed,
}

/// Runs `client`'s exchange over `port` until its result or `end`.
pub fn exchange(
    client: &mut UdpTrackerClient,
    port: &mut impl UdpPort,
    end: Instant,
) -> Result<UdpTrackerEvent, TrackerError> {
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(packet) = client.poll_transmit() {
            port.send(&packet);
        }
        if let Some(event) = client.poll_event() {
            return Ok(event);
        }
        let now = port.now();
        if now >= end {
            return Err(TrackerError::TimedOut);
        }
        let wake = client.poll_timeout().unwrap_or(end).min(end);
        let wait = (wake - now).max(Duration::from_millis(1));
        match port.recv(&mut buf, wait) {
            Received::Datagram(n) => client.handle_datagram(port.now(), &buf[..n.min(buf.len())]),
            Received::TimedOut => client.handle_timeout(port.now()),
            Received::Failed => {}
        }
    }
}

/// A connected UDP socket and the OS clock.
struct SocketPort {
    socket: UdpSocket,
    clock: Clock,
}

impl UdpPort for SocketPort {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn send(&mut self, packet: &[u8]) {
        let _ = self.socket.send(packet);
    }

    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> Received {
        if self.socket.set_read_timeout(Some(wait)).is_err() {
            std::thread::sleep(wait.min(Duration::from_millis(200)));
            return Received::Failed;
        }
        match self.socket.recv(buf) {
            Ok(n) => Received::Datagram(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Received::TimedOut
            }
            Err(_) => {
                std::thread::sleep(wait.min(Duration::from_millis(200)));
                Received::Failed
            }
        }
    }
}

/// Runs a UDP tracker exchange until its result or `deadline` passes.
fn run_udp(
    url: &str,
    start: impl FnOnce(&mut UdpTrackerClient, &Clock),
    deadline: Duration,
) -> Result<UdpTrackerEvent, TrackerError> {
    let (authority, url_data) = split_udp_url(url)?;
    let addr = resolve(&authority)?;
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().map_err(|_| TrackerError::BadUrl("bind"))?
    } else {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| TrackerError::BadUrl("bind"))?
    };
    let socket = UdpSocket::bind(bind).map_err(|e| TrackerError::Unreachable(e.to_string()))?;
    socket
        .connect(addr)
        .map_err(|e| TrackerError::Unreachable(e.to_string()))?;
    let clock = Clock::new();
    let mut client = UdpTrackerClient::new(addr.is_ipv6(), url_data, os_seed());
    start(&mut client, &clock);
    let end = clock.now() + deadline;
    exchange(&mut client, &mut SocketPort { socket, clock }, end)
}

/// Announces `request` to the tracker at `url` (http, https or udp),
/// giving up after `timeout`.
pub fn announce(
    url: &str,
    request: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    if url.starts_with("udp://") {
        let req = request.clone();
        match run_udp(url, |c, clock| c.announce(clock.now(), req), timeout)? {
            UdpTrackerEvent::Announced(r) => Ok(r),
            UdpTrackerEvent::Failed(e) => Err(e),
            UdpTrackerEvent::Scraped(_) => Err(TrackerError::MissingField("announce answer")),
        }
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let body = http_get(&http::announce_url(url, request), timeout)?;
        http::parse_announce_response(&body)
    } else {
        Err(TrackerError::BadUrl("scheme must be http, https or udp"))
    }
}

/// Scrapes `hashes` from the tracker at `url`.
pub fn scrape(
    url: &str,
    hashes: &[InfoHash],
    timeout: Duration,
) -> Result<Vec<ScrapeEntry>, TrackerError> {
    if url.starts_with("udp://") {
        let h = hashes.to_vec();
        match run_udp(url, |c, clock| c.scrape(clock.now(), h), timeout)? {
            UdpTrackerEvent::Scraped(e) => Ok(e),
            UdpTrackerEvent::Failed(e) => Err(e),
            UdpTrackerEvent::Announced(_) => Err(TrackerError::MissingField("scrape answer")),
        }
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let scrape = scrape_url(url).ok_or(TrackerError::BadUrl(
            "tracker does not support scrape (BEP 48)",
        ))?;
        let body = http_get(&scrape_request_url(&scrape, hashes), timeout)?;
        http::parse_scrape_response(&body)
    } else {
        Err(TrackerError::BadUrl("scheme must be http, https or udp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_urls_split_into_address_and_url_data() {
        assert_eq!(
            split_udp_url("udp://tracker.example:1337/announce?passkey=x").unwrap(),
            (
                "tracker.example:1337".to_owned(),
                b"/announce?passkey=x".to_vec()
            )
        );
        assert_eq!(
            split_udp_url("udp://127.0.0.1:6969").unwrap().1,
            Vec::<u8>::new()
        );
        assert!(split_udp_url("http://x").is_err());
        assert!(split_udp_url("udp:///x").is_err());
    }
}
