//! Entry points for the fuzz targets, one per target (rustls's approach:
//! the logic lives in the library, `fuzz/fuzz_targets/*.rs` are one-liners).
//!
//! Each checks an oracle stronger than "did not panic": decoded values must
//! survive an encode → decode round trip unchanged. The same functions
//! replay the committed seeds and regressions under `cargo test`
//! (`tests/tests/fuzz_replay.rs`), so a crash once found stays fixed on
//! stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::bencode::{self, Decoder};
use crate::metainfo::{Magnet, Metainfo, PieceIndex};

/// bencode: lenient decode; if it succeeds, the canonical encoding must
/// decode strictly to the same value and re-encode to the same bytes; and
/// input that was canonical must round-trip byte for byte.
pub fn bencode(data: &[u8]) {
    let Ok(doc) = Decoder::new().decode(data) else {
        return;
    };
    let encoded = doc.root.to_vec();
    let again = bencode::decode_strict(&encoded).expect("canonical encoding must decode strictly");
    assert_eq!(again.to_vec(), encoded, "encoding is not idempotent");
    if doc.key_order.is_canonical() {
        assert_eq!(encoded, data, "canonical input did not round-trip");
    }
    assert_eq!(doc.root.raw(), data, "root span must cover the input");
}

/// metainfo: a torrent that parses must re-encode (canonically) to a
/// torrent that parses to the same content, and its layout must cover every
/// piece exactly.
pub fn metainfo(data: &[u8]) {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(m.info_hash, crate::InfoHash::of_info(m.info.raw()));
    let layout = m.info.layout();
    let mut covered = 0u64;
    for p in 0..layout.piece_count().min(4096) {
        let size = layout.piece_size(PieceIndex(p));
        let sum: u64 = layout.piece_slices(PieceIndex(p)).map(|s| s.length).sum();
        assert_eq!(sum, u64::from(size));
        covered += sum;
    }
    if layout.piece_count() <= 4096 {
        assert_eq!(covered, layout.total_length());
    }
    let reencoded = bencode::decode(data).unwrap().to_vec();
    let m2 = Metainfo::from_bytes_strict(&reencoded).expect("re-encoded torrent must parse");
    assert_eq!(m2.info.files(), m.info.files());
    assert_eq!(m2.info.name(), m.info.name());
    assert_eq!(m2.info.piece_length(), m.info.piece_length());
    assert_eq!(m2.info.piece_count(), m.info.piece_count());
    assert_eq!(m2.trackers(), m.trackers());
    if m.key_order.is_canonical() {
        assert_eq!(m2.info_hash, m.info_hash);
    }
}

/// magnet: a magnet that parses must format to a URI that parses back
/// equal.
pub fn magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Magnet::parse(text) else {
        return;
    };
    let formatted = m.to_string();
    let again = Magnet::parse(&formatted).expect("formatted magnet must parse");
    assert_eq!(again, m, "magnet did not round-trip through {formatted}");
}
