//! The core's uTP against libtorrent's (python3-libtorrent 2.0.8) over a
//! real UDP socket on 127.0.0.1: libtorrent seeds with TCP off, and a
//! minimal peer-wire client in this test (handshake, interested, requests)
//! downloads the whole file through one `UtpSocket` and compares it byte
//! for byte. This proves wire compatibility (connection ids, seq/ack,
//! windows, selective ACKs, timestamps) with the reference implementation;
//! the engine does not use uTP yet.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bittide_core::utp::{CloseReason, Config, SocketEvent, SocketLimits, UtpConnId, UtpSocket};
use bittide_core::wire::{BlockRef, Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};
use bittide_core::{InfoHash, Instant, PieceIndex, Seed};
use bittide_tests::{content_bytes, free_port, libtorrent, libtorrent_server, TempDir};

const PIECE: u32 = 64 * 1024;
const BLOCK: u32 = 16 * 1024;
const LIMIT: Duration = Duration::from_secs(120);

fn info_hash(hex: &str) -> InfoHash {
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex info-hash");
    }
    InfoHash(out)
}

/// The download's peer-wire side, over whatever byte stream it is given.
struct Leecher {
    hash: InfoHash,
    decoder: FrameDecoder,
    handshake_done: bool,
    requested: bool,
    data: Vec<u8>,
    received: usize,
}

impl Leecher {
    /// Reacts to the bytes that arrived; returns the bytes to send.
    fn on_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.decoder.push(bytes);
        if !self.handshake_done {
            let Some(theirs) = self
                .decoder
                .next_handshake()
                .expect("libtorrent's handshake")
            else {
                return out;
            };
            assert_eq!(theirs.info_hash, self.hash, "libtorrent serves our torrent");
            self.handshake_done = true;
            Frame::Interested.encode(&mut out);
        }
        while let Some(frame) = self.decoder.next_frame().expect("libtorrent's frames") {
            match frame {
                Frame::Unchoke if !self.requested => {
                    self.requested = true;
                    let len = self.data.len() as u32;
                    for offset in (0..len).step_by(BLOCK as usize) {
                        Frame::Request(BlockRef {
                            piece: PieceIndex(offset / PIECE),
                            offset: offset % PIECE,
                            length: BLOCK.min(len - offset),
                        })
                        .encode(&mut out);
                    }
                }
                Frame::Piece {
                    piece,
                    offset,
                    data,
                } => {
                    let at = (piece.0 * PIECE + offset) as usize;
                    self.data[at..at + data.len()].copy_from_slice(&data);
                    self.received += data.len();
                }
                _ => {}
            }
        }
        out
    }
}

#[test]
fn download_from_libtorrent_over_utp_only() {
    let dir = TempDir::new("utp-from-lt");
    let content = content_bytes(16 << 20, 29);
    let file = dir.path().join("utp.bin");
    std::fs::write(&file, &content).expect("content");
    let torrent = dir.path().join("utp.torrent");
    let (file_text, torrent_text) = (file.display().to_string(), torrent.display().to_string());
    libtorrent(&[
        "create",
        &file_text,
        &torrent_text,
        &PIECE.to_string(),
        "v1",
    ]);
    let hash = info_hash(libtorrent(&["hash", &torrent_text]).trim());
    let port = free_port();
    let dir_text = dir.path().display().to_string();
    let _seeder = libtorrent_server(&["seed-utp", &torrent_text, &dir_text, &port.to_string()]);

    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let epoch = std::time::Instant::now();
    let clock = || Instant::from_duration(epoch.elapsed());
    let mut socket = UtpSocket::new(
        Config::default(),
        SocketLimits::default(),
        Seed::from_u64(29),
    );
    let seeder = SocketAddr::from(([127, 0, 0, 1], port));
    let id: UtpConnId = socket.connect(clock(), seeder).expect("connect");
    let mut leecher = Leecher {
        hash,
        decoder: FrameDecoder::new(FrameLimits::default()),
        handshake_done: false,
        requested: false,
        data: vec![0; content.len()],
        received: 0,
    };
    let mut outgoing = Vec::new();
    Handshake {
        reserved: Reserved::default(),
        info_hash: hash,
        peer_id: PeerId(*b"-BT0001-utpinterop00"),
    }
    .encode(&mut outgoing);
    let mut connected = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut closed = None;
    while closed.is_none() {
        let now = clock();
        assert!(
            now.since_epoch() < LIMIT,
            "timed out: {} of {} bytes",
            leecher.received,
            content.len()
        );
        if let Some(c) = socket.connection(id) {
            let n = c.write(&outgoing);
            outgoing.drain(..n);
            loop {
                let n = c.read(&mut buf);
                if n == 0 {
                    break;
                }
                outgoing.extend(leecher.on_bytes(&buf[..n]));
            }
            if leecher.received == content.len() && outgoing.is_empty() {
                c.close();
            }
        }
        while let Some((to, datagram)) = socket.poll_transmit(now) {
            udp.send_to(&datagram, to).expect("send");
        }
        while let Some(event) = socket.poll_event() {
            match event {
                SocketEvent::Connected(_) => connected = true,
                SocketEvent::Closed(_, reason) => closed = Some(reason),
                SocketEvent::Incoming(..) => panic!("nobody connects to us"),
            }
        }
        let wait = socket
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| t - clock())
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        udp.set_read_timeout(Some(wait)).expect("timeout");
        if let Ok((n, from)) = udp.recv_from(&mut buf) {
            let datagram = buf[..n].to_vec();
            socket.handle_datagram(clock(), from, &datagram);
        }
        let now = clock();
        if socket.poll_timeout().is_some_and(|t| t <= now) {
            socket.handle_timeout(now);
        }
    }
    assert!(connected, "the uTP handshake completed");
    assert_eq!(leecher.received, content.len());
    assert!(leecher.data == content, "the bytes differ");
    eprintln!(
        "16 MiB from libtorrent over uTP in {:?}, closed: {closed:?}",
        epoch.elapsed()
    );
    assert!(
        matches!(closed, Some(CloseReason::Finished | CloseReason::Reset)),
        "closed with {closed:?}"
    );
}
