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
use bittide_core::tracker::udp::UdpJob;
use bittide_core::tracker::udp::{UdpTrackerClient, UdpTrackerEvent};
use bittide_core::tracker::{
    AnnounceRequest, AnnounceResponse, ScrapeEntry, TrackerError, TrackerUrl,
};
use bittide_core::{InfoHash, Instant, IpFamily};

use crate::clock::{os_seed, Clock};

/// Largest tracker response body read.
const MAX_BODY: u64 = 4 << 20;

/// Fetches `url` and returns the body (any status: trackers put their
/// `failure reason` in error responses too).
pub fn http_get(url: &str, timeout: Duration) -> Result<Vec<u8>, TrackerError> {
    http_get_over(url, timeout, None)
}

/// [`http_get`] connecting over `family` only (`None`: any): an announce
/// made once per family we listen on (BEP 7).
pub fn http_get_over(
    url: &str,
    timeout: Duration,
    family: Option<IpFamily>,
) -> Result<Vec<u8>, TrackerError> {
    get(url, timeout, MAX_BODY, family)
        .map(|(_, body)| body)
        .map_err(TrackerError::Unreachable)
}

/// Fetches a file (a .torrent) from an http(s) URL: the body of a 2xx
/// answer, at most `max` bytes; otherwise why not.
pub fn fetch(url: &str, timeout: Duration, max: u64) -> Result<Vec<u8>, String> {
    let (status, body) = get(url, timeout, max + 1, None).map_err(|e| format!("{url}: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{url}: HTTP status {status}"));
    }
    if body.len() as u64 > max {
        return Err(format!("{url}: larger than {max} bytes"));
    }
    Ok(body)
}

/// One GET over `family` (`None`: any): the status and up to `max` bytes
/// of body, whatever the status.
fn get(
    url: &str,
    timeout: Duration,
    max: u64,
    family: Option<IpFamily>,
) -> Result<(u16, Vec<u8>), String> {
    let mut agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .user_agent(concat!("bittide/", env!("CARGO_PKG_VERSION")));
    if let Some(family) = family {
        agent = agent.resolver(move |netloc: &str| {
            let addrs: Vec<SocketAddr> = netloc
                .to_socket_addrs()?
                .filter(|a| family.holds(a))
                .collect();
            if addrs.is_empty() {
                let why = format!("{netloc} has no {family} address");
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, why));
            }
            Ok(addrs)
        });
    }
    let agent = agent.build();
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(describe(&t)),
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(max)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// What went wrong with a request, without its URL: ureq's own text
/// starts with the whole URL, whose query holds the info-hash and peer id
/// (and whose path may hold a private tracker's passkey). The caller knows
/// which tracker it asked.
pub(crate) fn describe(t: &ureq::Transport) -> String {
    let mut text = t.kind().to_string();
    if let Some(m) = t.message() {
        text.push_str(": ");
        text.push_str(m);
    }
    if let Some(source) = std::error::Error::source(t) {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
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
        while let Some((_, packet)) = client.poll_transmit() {
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

/// The one request of a tool's exchange.
const JOB: UdpJob = UdpJob(1);

/// Runs a UDP tracker exchange until its result or `deadline` passes;
/// `start` gets the client, the time and the URL's BEP 41 data.
fn run_udp(
    host: &str,
    url_data: &[u8],
    start: impl FnOnce(&mut UdpTrackerClient, Instant, &[u8]),
    deadline: Duration,
) -> Result<UdpTrackerEvent, TrackerError> {
    let addr = resolve(host)?;
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
    let mut client = UdpTrackerClient::new(addr, os_seed());
    start(&mut client, clock.now(), url_data);
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
    match TrackerUrl::parse(url)? {
        TrackerUrl::Udp { host, url_data, .. } => {
            let req = request.clone();
            let start =
                |c: &mut UdpTrackerClient, now, data: &[u8]| c.announce(now, JOB, req, data);
            match run_udp(&host, &url_data, start, timeout)? {
                UdpTrackerEvent::Announced(_, r) => Ok(r),
                UdpTrackerEvent::Failed(_, e) => Err(e),
                UdpTrackerEvent::Scraped(..) => Err(TrackerError::MissingField("announce answer")),
            }
        }
        TrackerUrl::Http(url) => {
            let body = http_get(&http::announce_url(&url, request), timeout)?;
            http::parse_announce_response(&body)
        }
    }
}

/// Scrapes `hashes` from the tracker at `url`.
pub fn scrape(
    url: &str,
    hashes: &[InfoHash],
    timeout: Duration,
) -> Result<Vec<ScrapeEntry>, TrackerError> {
    match TrackerUrl::parse(url)? {
        TrackerUrl::Udp { host, url_data, .. } => {
            let h = hashes.to_vec();
            let start = |c: &mut UdpTrackerClient, now, _: &[u8]| c.scrape(now, JOB, h);
            match run_udp(&host, &url_data, start, timeout)? {
                UdpTrackerEvent::Scraped(_, e) => Ok(e),
                UdpTrackerEvent::Failed(_, e) => Err(e),
                UdpTrackerEvent::Announced(..) => Err(TrackerError::MissingField("scrape answer")),
            }
        }
        TrackerUrl::Http(url) => {
            let scrape = scrape_url(&url).ok_or(TrackerError::BadUrl(
                "tracker does not support scrape (BEP 48)",
            ))?;
            let body = http_get(&scrape_request_url(&scrape, hashes), timeout)?;
            http::parse_scrape_response(&body)
        }
    }
}
