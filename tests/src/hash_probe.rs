//! A bare BEP 52 peer for interop tests: it connects to a v2 peer, hands
//! over a handshake with the v2 bit, sends one `hash request` and returns
//! the answer, reading past whatever else the peer sends first (bitfield,
//! extension handshake). The frames are bittide-core's, so the request is
//! byte for byte the one bittide's torrents send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bittide_core::metainfo::merkle::Hash;
use bittide_core::metainfo::InfoHash;
use bittide_core::wire::{
    Frame, FrameDecoder, FrameLimits, Handshake, HashRequest, PeerId, Reserved,
};

/// Asks the peer at `addr`, for the torrent it knows as `name`, for
/// `request`: the hashes (then their uncles), or `None` for a `hash
/// reject`. Panics when the peer hangs up or says nothing within 20 s.
pub fn ask_hashes(addr: SocketAddr, name: InfoHash, request: HashRequest) -> Option<Vec<Hash>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    // Extension protocol (BEP 10), fast (BEP 6), v2 (BEP 52).
    let mut reserved = [0u8; 8];
    reserved[5] |= 0x10;
    reserved[7] |= 0x04 | 0x10;
    let mut out = Vec::new();
    Handshake {
        reserved: Reserved(reserved),
        info_hash: name,
        peer_id: PeerId(*b"-BT0000-hash-probe-0"),
    }
    .encode(&mut out);
    stream.write_all(&out).expect("handshake");
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    let mut handshaken = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        if !handshaken {
            if decoder
                .next_handshake()
                .expect("the peer's handshake")
                .is_some()
            {
                handshaken = true;
                let mut frame = Vec::new();
                Frame::HashRequest(request).encode(&mut frame);
                stream.write_all(&frame).expect("hash request");
                continue;
            }
        } else {
            while let Some(frame) = decoder.next_frame().expect("the peer's frames") {
                match frame {
                    Frame::Hashes { request: r, hashes } if r == request => {
                        return Some(hashes.to_vec())
                    }
                    Frame::HashReject(r) if r == request => return None,
                    _ => {}
                }
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("{addr} hung up before answering {request:?}"),
            Ok(n) => decoder.push(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading from {addr}: {e}"),
        }
    }
    panic!("{addr} did not answer {request:?} within 20 s");
}
