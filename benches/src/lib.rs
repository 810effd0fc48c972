//! Inputs shared by the criterion benches (`benches/benches/*.rs`).
//!
//! Generated, not committed: each bench builds its input from a fixed
//! description so the figures are reproducible on any machine.

use bittide_core::metainfo::TorrentBuilder;

/// A multi-file .torrent with `files` files in nested folders, hashed with
/// zero-filled placeholder hashes (decoding cost does not depend on them).
pub fn many_files_torrent(files: usize) -> Vec<u8> {
    let mut b = TorrentBuilder::multi_file("many-files");
    for i in 0..files {
        b.add_file(
            vec![
                format!("dir{:03}", i / 100),
                format!("sub{}", i % 7),
                format!("file-{i:05}.dat"),
            ],
            1000 + (i as u64 * 7919) % 100_000,
        );
    }
    b.add_tracker_tier(vec!["http://127.0.0.1:6969/announce".into()]);
    let layout = b.layout().expect("valid by construction");
    let hashes = vec![[0x5a; 20]; layout.piece_count() as usize];
    b.build(&hashes).expect("valid by construction")
}

/// A single-file .torrent whose `pieces` string is `pieces_bytes` long.
pub fn large_pieces_torrent(pieces_bytes: usize) -> Vec<u8> {
    let count = pieces_bytes / 20;
    let mut b = TorrentBuilder::single_file("big.iso", count as u64 * 16384);
    b.set_piece_length(16384);
    let hashes: Vec<[u8; 20]> = (0..count).map(|i| [(i % 251) as u8; 20]).collect();
    b.build(&hashes).expect("valid by construction")
}
