//! The core's uTP against libtorrent's (python3-libtorrent 2.0.8) over a
//! real UDP socket on 127.0.0.1, libtorrent with TCP off. A minimal
//! peer-wire client and server in this test (handshake, bitfield,
//! interested/unchoke, requests and pieces) run over one `UtpSocket`:
//! downloading from libtorrent (we connect) and seeding to it (it
//! connects). This proves wire compatibility with the reference
//! implementation (connection ids both ways, seq/ack, windows, selective
//! ACKs, timestamps, FIN); the engine does not use uTP yet. (It found that
//! libtorrent sends selective-ACK masks of any length, not only BEP 29's
//! multiples of 4.)

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use bittide_core::utp::{
    CloseReason, Config, SocketEvent, SocketLimits, Stats, UtpConnId, UtpSocket,
};
use bittide_core::wire::{BlockRef, Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};
use bittide_core::{InfoHash, Instant, PieceIndex, Seed};
use bittide_tests::{
    content_bytes, free_port, libtorrent, libtorrent_server, workspace_root, TempDir, DEBIAN_PYTHON,
};
use bytes::Bytes;

const PIECE: u32 = 64 * 1024;
const BLOCK: u32 = 16 * 1024;
const SIZE: usize = 16 << 20;
const LIMIT: Duration = Duration::from_secs(120);

/// A file, its .torrent (made by libtorrent) and its info-hash.
struct Content {
    dir: TempDir,
    data: Vec<u8>,
    torrent: String,
    hash: InfoHash,
}

fn content(tag: &str) -> Content {
    let dir = TempDir::new(tag);
    let data = content_bytes(SIZE, 29);
    let file = dir.path().join("utp.bin");
    std::fs::write(&file, &data).expect("content");
    let torrent = dir.path().join("utp.torrent").display().to_string();
    libtorrent(&[
        "create",
        &file.display().to_string(),
        &torrent,
        &PIECE.to_string(),
        "v1",
    ]);
    let hex = libtorrent(&["hash", &torrent]);
    let mut hash = [0u8; 20];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).expect("hex info-hash");
    }
    Content {
        dir,
        data,
        torrent,
        hash: InfoHash(hash),
    }
}

fn our_handshake(hash: InfoHash) -> Vec<u8> {
    let mut out = Vec::new();
    Handshake {
        reserved: Reserved::default(),
        info_hash: hash,
        peer_id: PeerId(*b"-BT0001-utpinterop00"),
    }
    .encode(&mut out);
    out
}

/// What the application wants after reading.
#[derive(PartialEq)]
enum Then {
    Continue,
    /// Close once everything is written.
    Close,
    /// Reset the connection.
    Abort,
}

/// The application: given a connection and the bytes that arrived on it,
/// the bytes to send on it and what to do next.
type App<'a> = dyn FnMut(UtpConnId, &[u8]) -> (Vec<u8>, Then) + 'a;

/// One `UtpSocket` on a real UDP socket, with every open connection's
/// unsent bytes. libtorrent may dial again while an earlier connection is
/// still open (its leecher reconnects when it counts no peer), so each
/// connection is served on its own, as a real client would.
struct Endpoint {
    udp: UdpSocket,
    socket: UtpSocket,
    epoch: std::time::Instant,
    /// The open connections and the bytes not yet taken by each.
    conns: Vec<(UtpConnId, Vec<u8>)>,
    connected: bool,
    closed: Option<CloseReason>,
    /// The counters of the connection that closed last.
    stats: Option<Stats>,
}

impl Endpoint {
    fn new(bind: SocketAddr) -> Endpoint {
        Endpoint {
            udp: UdpSocket::bind(bind).expect("bind"),
            socket: UtpSocket::new(
                Config::default(),
                SocketLimits::default(),
                Seed::from_u64(29),
            ),
            epoch: std::time::Instant::now(),
            conns: Vec::new(),
            connected: false,
            closed: None,
            stats: None,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }

    /// One turn of the driver loop: the application gets what arrived on
    /// each connection and says what to send (and whether to close), then
    /// datagrams go out, events are read, and one datagram is awaited up to
    /// the next timeout.
    fn turn(&mut self, app: &mut App<'_>) {
        let now = self.now();
        assert!(now.since_epoch() < LIMIT, "timed out");
        let mut buf = vec![0u8; 64 * 1024];
        self.conns.retain_mut(|(id, outgoing)| {
            let Some(c) = self.socket.connection(*id) else {
                return false;
            };
            let n = c.write(outgoing);
            outgoing.drain(..n);
            let mut arrived = Vec::new();
            loop {
                let n = c.read(&mut buf);
                if n == 0 {
                    break;
                }
                arrived.extend_from_slice(&buf[..n]);
            }
            let (reply, then) = app(*id, &arrived);
            outgoing.extend(reply);
            if then == Then::Abort {
                c.abort();
                return false;
            }
            if then == Then::Close && outgoing.is_empty() {
                c.close();
            }
            true
        });
        while let Some((to, t)) = self.socket.poll_transmit(now) {
            match t.probe {
                true => send_probe(&self.udp, &t.payload, to),
                false => self.udp.send_to(&t.payload, to).map(drop).expect("send"),
            }
        }
        while let Some(event) = self.socket.poll_event() {
            match event {
                SocketEvent::Incoming(id, _) => self.conns.push((id, Vec::new())),
                SocketEvent::Connected(_) => self.connected = true,
                SocketEvent::Closed(id, reason) => {
                    self.closed = Some(reason);
                    self.stats = self.socket.connection(id).map(|c| c.stats());
                }
            }
        }
        let wait = self
            .socket
            .poll_timeout()
            .map_or(Duration::from_millis(20), |t| t - self.now())
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        // Wait for one datagram, then take every one already queued, so
        // a fast sender does not overflow the socket's receive buffer.
        self.udp.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 2048];
        if let Ok((n, from)) = self.udp.recv_from(&mut buf) {
            self.socket.handle_datagram(self.now(), from, &buf[..n]);
            self.udp.set_nonblocking(true).expect("nonblocking");
            while let Ok((n, from)) = self.udp.recv_from(&mut buf) {
                self.socket.handle_datagram(self.now(), from, &buf[..n]);
            }
            self.udp.set_nonblocking(false).expect("blocking");
        }
        let now = self.now();
        if self.socket.poll_timeout().is_some_and(|t| t <= now) {
            self.socket.handle_timeout(now);
        }
    }
}

#[test]
fn download_from_libtorrent_over_utp_only() {
    let c = content("utp-from-lt");
    let port = free_port();
    let dir = c.dir.path().display().to_string();
    let _seeder = libtorrent_server(&["seed-utp", &c.torrent, &dir, &port.to_string()]);

    let mut end = Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let seeder = SocketAddr::from(([127, 0, 0, 1], port));
    let conn = end.socket.connect(end.now(), seeder).expect("connect");
    end.conns.push((conn, our_handshake(c.hash)));
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    let (mut handshake_done, mut requested) = (false, false);
    let mut data = vec![0u8; SIZE];
    let mut received = 0;
    let mut app = |id: UtpConnId, bytes: &[u8]| {
        let mut out = Vec::new();
        if id != conn {
            // Only the connection we made carries our download.
            return (out, Then::Abort);
        }
        decoder.push(bytes);
        if !handshake_done {
            let Some(theirs) = decoder.next_handshake().expect("libtorrent's handshake") else {
                return (out, Then::Continue);
            };
            assert_eq!(theirs.info_hash, c.hash, "libtorrent serves our torrent");
            handshake_done = true;
            Frame::Interested.encode(&mut out);
        }
        while let Some(frame) = decoder.next_frame().expect("libtorrent's frames") {
            match frame {
                Frame::Unchoke if !requested => {
                    requested = true;
                    for offset in (0..SIZE as u32).step_by(BLOCK as usize) {
                        let block = BlockRef {
                            piece: PieceIndex(offset / PIECE),
                            offset: offset % PIECE,
                            length: BLOCK,
                        };
                        Frame::Request(block).encode(&mut out);
                    }
                }
                Frame::Piece {
                    piece,
                    offset,
                    data: block,
                } => {
                    let at = (piece.0 * PIECE + offset) as usize;
                    data[at..at + block.len()].copy_from_slice(&block);
                    received += block.len();
                }
                _ => {}
            }
        }
        let then = if received == SIZE {
            Then::Close
        } else {
            Then::Continue
        };
        (out, then)
    };
    while end.closed.is_none() {
        end.turn(&mut app);
    }
    assert!(end.connected, "the uTP handshake completed");
    assert_eq!(received, SIZE);
    assert!(data == c.data, "the bytes differ");
    eprintln!(
        "16 MiB from libtorrent over uTP in {:?}, closed: {:?}, {:?}",
        end.epoch.elapsed(),
        end.closed,
        end.stats
    );
    assert_eq!(end.closed, Some(CloseReason::Finished));
}

#[test]
fn seed_to_libtorrent_over_utp_only() {
    let c = content("utp-to-lt");
    let port = free_port();
    let us = SocketAddr::from(([127, 0, 0, 1], port));
    let mut end = Endpoint::new(us);
    let save = TempDir::new("utp-to-lt-save");
    let mut leecher = Command::new(DEBIAN_PYTHON)
        .arg(workspace_root().join("tests/interop/lt_tool.py"))
        .args(["leech-utp", &c.torrent])
        .arg(save.path())
        .arg(us.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the libtorrent leecher");
    let pieces = SIZE.div_ceil(PIECE as usize);
    // Each connection's decoder, and whether its handshake is done.
    let mut peers: HashMap<UtpConnId, (FrameDecoder, bool)> = HashMap::new();
    let (mut served, mut encrypted_attempts) = (0, 0);
    let mut app = |id: UtpConnId, bytes: &[u8]| {
        let mut out = Vec::new();
        let (decoder, handshake_done) = peers.entry(id).or_insert_with(|| {
            let mut decoder = FrameDecoder::new(FrameLimits::default());
            decoder.set_piece_count(pieces as u32);
            (decoder, false)
        });
        decoder.push(bytes);
        if !*handshake_done {
            // libtorrent's default policy tries MSE first on outgoing
            // connections and retries in plaintext when refused.
            let Ok(theirs) = decoder.next_handshake() else {
                encrypted_attempts += 1;
                peers.remove(&id);
                return (out, Then::Abort);
            };
            let Some(theirs) = theirs else {
                return (out, Then::Continue);
            };
            assert_eq!(theirs.info_hash, c.hash, "libtorrent wants our torrent");
            *handshake_done = true;
            out = our_handshake(c.hash);
            Frame::Bitfield(Bytes::from(vec![0xff; pieces / 8])).encode(&mut out);
            Frame::Unchoke.encode(&mut out);
        }
        while let Some(frame) = decoder.next_frame().expect("libtorrent's frames") {
            if let Frame::Request(b) = frame {
                let at = (b.piece.0 * PIECE + b.offset) as usize;
                let block = Bytes::copy_from_slice(&c.data[at..at + b.length as usize]);
                served += block.len();
                Frame::Piece {
                    piece: b.piece,
                    offset: b.offset,
                    data: block,
                }
                .encode(&mut out);
            }
        }
        (out, Then::Continue)
    };
    let status = loop {
        end.turn(&mut app);
        if let Some(status) = leecher.try_wait().expect("leecher status") {
            break status;
        }
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut leecher.stdout.take().expect("stdout"), &mut said)
        .expect("leecher output");
    eprintln!(
        "16 MiB to libtorrent over uTP in {:?} (served {served} bytes, \
         {encrypted_attempts} encrypted attempts refused): {}",
        end.epoch.elapsed(),
        said.trim()
    );
    let mut why = String::new();
    if let Some(mut e) = leecher.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut why);
    }
    // A libtorrent that dies mid-transfer (seen about once in twenty full
    // runs, with the machine loaded) says why here.
    assert!(
        status.success(),
        "the libtorrent leecher ended with {status}: {why}"
    );
    assert_eq!(said.trim(), "done", "libtorrent verified every piece");
    assert!(served >= SIZE, "every byte was served ({served})");
}

/// A path MTU probe, sent as the driver sends it: fragmentation forbidden
/// (loopback carries any size, so it arrives).
fn send_probe(udp: &std::net::UdpSocket, payload: &[u8], to: std::net::SocketAddr) {
    bittide_driver::sockets::forbid_fragmentation(udp, to.is_ipv6(), true).expect("DF");
    udp.send_to(payload, to).expect("send a probe");
    bittide_driver::sockets::forbid_fragmentation(udp, to.is_ipv6(), false).expect("no DF");
}
