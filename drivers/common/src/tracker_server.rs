//! The tracker server's front ends on any [`Runtime`]: HTTP (`GET
//! /announce`, `GET /scrape`) and UDP (BEP 15), both over one core
//! `TrackerServer`. They only move bytes: request parsing, peer selection
//! and answers are the core's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bittide_core::tracker::http::{
    encode_announce_response, encode_failure, encode_scrape_response, parse_announce_query,
    parse_scrape_query,
};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::Instant;

use crate::clock::{os_seed, Clock};
use crate::runtime::{Conn, Listener, Runtime, UdpSocket};

/// Largest HTTP request head read.
const MAX_HEAD: usize = 8 * 1024;
/// A client must send its request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared server state.
#[derive(Clone)]
pub struct Shared {
    server: Arc<Mutex<TrackerServer>>,
    clock: Clock,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tracker_server::Shared")
    }
}

impl Shared {
    /// A server with `config`, keyed from OS randomness.
    pub fn new(config: ServerConfig) -> Shared {
        Shared {
            server: Arc::new(Mutex::new(TrackerServer::new(config, os_seed()))),
            clock: Clock::new(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut TrackerServer, Instant) -> R) -> R {
        let now = self.clock.now();
        let mut guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard, now)
    }
}

/// Answers one HTTP request head; returns (status line, body).
fn answer_http(shared: &Shared, remote: SocketAddr, head: &[u8]) -> (&'static str, Vec<u8>) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let path = match req.parse(head) {
        Ok(httparse::Status::Complete(_)) if req.method == Some("GET") => req.path.unwrap_or("/"),
        _ => return ("400 Bad Request", encode_failure("bad request")),
    };
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    match route {
        "/announce" => match parse_announce_query(query.as_bytes()) {
            Ok(a) => {
                let peer = SocketAddr::new(remote.ip(), a.request.port);
                match shared.with(|s, now| s.announce(now, peer, &a.request)) {
                    Ok(r) => ("200 OK", encode_announce_response(&r, a.compact)),
                    Err(refusal) => ("200 OK", encode_failure(&refusal.to_string())),
                }
            }
            Err(e) => ("200 OK", encode_failure(&e.to_string())),
        },
        "/scrape" => match parse_scrape_query(query.as_bytes()) {
            Ok(hashes) => (
                "200 OK",
                encode_scrape_response(&shared.with(|s, _| s.scrape(&hashes))),
            ),
            Err(e) => ("200 OK", encode_failure(&e.to_string())),
        },
        _ => ("404 Not Found", encode_failure("not found")),
    }
}

/// Reads a request head and answers it.
async fn serve_connection<R: Runtime>(
    rt: R,
    shared: Shared,
    (mut reader, mut writer): Conn,
    remote: SocketAddr,
) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
    let complete = loop {
        let read = crate::driver::first(reader.read(&mut buf), rt.sleep_until(deadline)).await;
        match read {
            Ok(Ok(0) | Err(_)) | Err(()) => break false,
            Ok(Ok(n)) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                    break true;
                }
            }
        }
    };
    if !complete {
        return;
    }
    let (status, body) = answer_http(&shared, remote, &head);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = writer.write_all(response.as_bytes()).await;
    let _ = writer.write_all(&body).await;
    let _ = writer.shutdown().await;
}

/// Serves HTTP on `listener` forever.
pub async fn serve_http<R: Runtime>(rt: R, shared: Shared, mut listener: Box<dyn Listener>) {
    loop {
        let Ok((conn, remote)) = listener.accept().await else {
            continue;
        };
        rt.spawn(Box::pin(serve_connection(
            rt.clone(),
            shared.clone(),
            conn,
            remote,
        )));
    }
}

/// Serves UDP on `socket` forever.
pub async fn serve_udp(shared: Shared, socket: Arc<dyn UdpSocket>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(answer) = shared.with(|s, now| s.handle_udp(now, from, &buf[..n])) {
            let _ = socket.send_to(&answer, from).await;
        }
    }
}

/// Expires idle peers once a minute, forever.
pub async fn expire<R: Runtime>(rt: R, shared: Shared) {
    loop {
        rt.sleep_until(std::time::Instant::now() + Duration::from_secs(60))
            .await;
        shared.with(|s, now| s.handle_timeout(now));
    }
}
