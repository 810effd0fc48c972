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

use crate::clock::os_seed;
use crate::runtime::{Conn, Listener, Runtime, UdpSocket};

/// Largest HTTP request head read.
pub const MAX_HEAD: usize = 8 * 1024;
/// A client must send its request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared server state.
#[derive(Clone)]
pub struct Shared {
    server: Arc<Mutex<TrackerServer>>,
    /// The runtime's clock.
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tracker_server::Shared")
    }
}

impl Shared {
    /// A server with `config` on `rt`'s clock, keyed from OS randomness.
    pub fn new<R: Runtime>(rt: &R, config: ServerConfig) -> Shared {
        let rt = rt.clone();
        Shared {
            server: Arc::new(Mutex::new(TrackerServer::new(config, os_seed()))),
            clock: Arc::new(move || rt.now()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut TrackerServer, Instant) -> T) -> T {
        let now = (self.clock)();
        let mut guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard, now)
    }
}

/// How far reading a request head has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadState {
    /// More bytes are needed.
    Partial,
    /// The head ends with an empty line: answer it.
    Complete,
    /// [`MAX_HEAD`] bytes and no end in sight: refuse it.
    TooLong,
}

/// Appends what fits of `chunk` to `head` (never more than [`MAX_HEAD`]
/// bytes in all) and says whether the head is complete.
pub fn push_head(head: &mut Vec<u8>, chunk: &[u8]) -> HeadState {
    // The end of the head may straddle the previous chunk.
    let from = head.len().saturating_sub(3);
    let room = MAX_HEAD.saturating_sub(head.len());
    head.extend_from_slice(&chunk[..chunk.len().min(room)]);
    if head[from..].windows(4).any(|w| w == b"\r\n\r\n") {
        HeadState::Complete
    } else if head.len() >= MAX_HEAD {
        HeadState::TooLong
    } else {
        HeadState::Partial
    }
}

/// The whole HTTP response (head and bencoded body) to a request head as
/// [`push_head`] left it: an announce or scrape answer, a bencoded failure
/// with 200 (trackers report refusals in the body), or an error status.
pub fn respond(
    server: &mut TrackerServer,
    now: Instant,
    remote: SocketAddr,
    head: &[u8],
    state: HeadState,
) -> Vec<u8> {
    let (status, body) = match state {
        HeadState::Complete => answer_http(server, now, remote, head),
        HeadState::Partial | HeadState::TooLong => (
            "431 Request Header Fields Too Large",
            encode_failure("request head too long"),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Answers one complete HTTP request head; returns (status line, body).
fn answer_http(
    server: &mut TrackerServer,
    now: Instant,
    remote: SocketAddr,
    head: &[u8],
) -> (&'static str, Vec<u8>) {
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
                match server.announce(now, peer, &a.request) {
                    Ok(r) => ("200 OK", encode_announce_response(&r, a.compact)),
                    Err(refusal) => ("200 OK", encode_failure(&refusal.to_string())),
                }
            }
            Err(e) => ("200 OK", encode_failure(&e.to_string())),
        },
        "/scrape" => match parse_scrape_query(query.as_bytes()) {
            Ok(hashes) => ("200 OK", encode_scrape_response(&server.scrape(&hashes))),
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
    let deadline = rt.now() + REQUEST_TIMEOUT;
    let state = loop {
        let read = crate::driver::first(reader.read(&mut buf), rt.sleep_until(deadline)).await;
        match read {
            Ok(Ok(0) | Err(_)) | Err(()) => return,
            Ok(Ok(n)) => match push_head(&mut head, &buf[..n]) {
                HeadState::Partial => {}
                done => break done,
            },
        }
    };
    let response = shared.with(|s, now| respond(s, now, remote, &head, state));
    let _ = writer.write_all(&response).await;
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
        rt.sleep_until(rt.now() + Duration::from_secs(60)).await;
        shared.with(|s, now| s.handle_timeout(now));
    }
}

#[cfg(test)]
mod tests {
    use bittide_core::Seed;

    use super::*;

    #[test]
    fn the_head_never_grows_past_its_limit() {
        let mut head = Vec::new();
        let chunk = [b'a'; 2048];
        let mut state = HeadState::Partial;
        for _ in 0..10 {
            state = push_head(&mut head, &chunk);
            assert!(head.len() <= MAX_HEAD);
            if state != HeadState::Partial {
                break;
            }
        }
        assert_eq!(state, HeadState::TooLong);
        assert_eq!(head.len(), MAX_HEAD);
        let mut server = TrackerServer::new(ServerConfig::default(), Seed::from_u64(1));
        let remote = SocketAddr::from(([127, 0, 0, 1], 5000));
        let response = respond(&mut server, Instant::ZERO, remote, &head, state);
        assert!(response.starts_with(b"HTTP/1.1 431 "));
    }

    #[test]
    fn a_head_ending_across_reads_completes() {
        let mut head = Vec::new();
        assert_eq!(
            push_head(&mut head, b"GET /x HTTP/1.1\r\n\r"),
            HeadState::Partial
        );
        assert_eq!(push_head(&mut head, b"\n"), HeadState::Complete);
        let mut server = TrackerServer::new(ServerConfig::default(), Seed::from_u64(1));
        let remote = SocketAddr::from(([127, 0, 0, 1], 5000));
        let response = respond(
            &mut server,
            Instant::ZERO,
            remote,
            &head,
            HeadState::Complete,
        );
        assert!(response.starts_with(b"HTTP/1.1 404 "));
        assert!(response.ends_with(b"d14:failure reason9:not founde"));
    }
}
