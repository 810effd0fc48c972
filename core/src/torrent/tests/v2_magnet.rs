//! A v2-only magnet (`btmh`, BEP 52) among seeders: the metadata must hash
//! to the v2 hash, the piece layers come over `hash request`s checked
//! against each file's root, a seeder sending wrong hashes is banned, and
//! the download then completes byte for byte.

use sha1::Digest;

use super::metadata::{addr, among_seeders, banned, config};
use super::*;
use crate::metainfo::hash_tree::FileTrees;
use crate::metainfo::merkle::Hash;
use crate::metainfo::{Metainfo, TorrentFormat, V2PieceHasher};

pub(super) const PIECE: u32 = 32 * 1024;

/// A v2-only torrent of two files (one of several pieces, one of five
/// and a half) and its bytes on disk (each file padded to a piece).
pub(super) fn v2_torrent() -> (TorrentInfo, Vec<u8>) {
    let files = [("a.bin", 3 * PIECE as usize, 1), ("b.bin", 180_000, 2)];
    build(TorrentFormat::V2, PIECE, &files)
}

/// A torrent of `files` (name, length, a byte pattern) in `format` (v2 or
/// hybrid, whose files are whole pieces here), and its bytes on disk.
pub(super) fn build(
    format: TorrentFormat,
    piece: u32,
    files: &[(&str, usize, u8)],
) -> (TorrentInfo, Vec<u8>) {
    let mut b = TorrentBuilder::multi_file("v2");
    b.set_piece_length(piece);
    b.set_format(format);
    let (mut disk, mut pieces, mut v1) = (Vec::new(), Vec::new(), Vec::new());
    for &(name, len, fill) in files {
        b.add_file(vec![name.to_owned()], len as u64);
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(fill)).collect();
        for chunk in data.chunks(piece as usize) {
            let mut h = V2PieceHasher::new(piece, false);
            h.update(chunk);
            pieces.push(h.finish());
            v1.push(<[u8; 20]>::from(sha1::Sha1::digest(chunk)));
        }
        disk.extend_from_slice(&data);
        disk.resize(disk.len().next_multiple_of(piece as usize), 0);
    }
    let v1 = if format == TorrentFormat::Hybrid {
        v1
    } else {
        Vec::new()
    };
    let bytes = b.build_v2(&v1, &pieces).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    (TorrentInfo::from_metainfo(&m), disk)
}

/// Node 0 is the magnet (v2 hash only); the others seed.
fn swarm(real: &TorrentInfo, seeders: Vec<(TorrentInfo, Vec<u8>)>) -> Vec<Node> {
    let v2 = real.info_hash_v2.unwrap();
    let name = InfoHash::truncated(&v2);
    let mut magnet = Torrent::from_magnet(
        Instant::ZERO,
        name,
        Vec::new(),
        config(100),
        Seed::from_u64(3),
    );
    magnet.set_v2_hash(v2);
    among_seeders(magnet, seeders)
}

/// A seeder whose trees answer for the real roots with a wrong piece
/// layer (every hash flipped).
fn hash_liar(real: &TorrentInfo, data: &[u8]) -> (TorrentInfo, Vec<u8>) {
    let wrong: Vec<(Hash, Vec<u8>)> = real
        .trees
        .piece_layers()
        .map(|(root, layer)| (*root, layer.iter().map(|b| !b).collect()))
        .collect();
    let trees = FileTrees::from_layers(wrong.iter().map(|(r, l)| (r, l.as_slice())), PIECE);
    let info = TorrentInfo {
        trees: std::sync::Arc::new(trees),
        ..real.clone()
    };
    (info, data.to_vec())
}

/// Runs until the magnet has its metadata and layers, starts it fresh,
/// runs until it has everything; its disk then.
fn download(nodes: &mut [Node]) -> Option<Vec<u8>> {
    let (mut links, mut next) = (BTreeMap::new(), 0);
    let at = run_until(nodes, &mut links, Instant::ZERO, &mut next, 300, |n| {
        n[0].t.state() == TorrentState::AwaitingStart
    })?;
    let len = nodes[0].t.info().layout.total_length() as usize;
    nodes[0].disk = vec![0; len];
    nodes[0].t.start(at, StartMode::Fresh);
    run_until(nodes, &mut links, at, &mut next, 400, |n| {
        n[0].t.is_finished()
    })?;
    Some(nodes[0].disk.clone())
}

#[test]
fn a_v2_magnet_fetches_its_layers_and_downloads() {
    let (real, data) = v2_torrent();
    assert!(
        !real.trees.is_empty(),
        "files longer than a piece have layers"
    );
    let mut nodes = swarm(&real, vec![(real.clone(), data.clone())]);
    let got = download(&mut nodes).expect("downloaded");
    assert_eq!(got, data);
    let t = &nodes[0].t;
    assert_eq!(t.info().piece_hashes, real.piece_hashes);
    assert_eq!(*t.info().trees, *real.trees);
    assert!(banned(&nodes[0]).is_empty());
    // Its .torrent carries the layers, so it loads as a .torrent would.
    let file = t.torrent_file().unwrap();
    let m = Metainfo::from_bytes(&file).unwrap();
    assert_eq!(m.info_hash_v2, real.info_hash_v2);
    assert_eq!(m.piece_hashes().as_ref(), Some(&real.piece_hashes));
}

#[test]
fn a_seeder_sending_wrong_hashes_is_banned_and_an_honest_one_completes() {
    let (real, data) = v2_torrent();
    let seeders = vec![hash_liar(&real, &data), (real.clone(), data.clone())];
    let mut nodes = swarm(&real, seeders);
    let got = download(&mut nodes).expect("downloaded");
    assert_eq!(got, data);
    assert_eq!(banned(&nodes[0]), vec![addr(0)]);
}

/// 513 pieces: the layer comes in two chunks of 512 hashes, the second
/// (one real hash and padding) proved by an uncle.
#[test]
fn a_layer_of_more_than_512_pieces_comes_in_chunks_proved_by_uncles() {
    let piece = 16 * 1024;
    let (real, data) = build(
        TorrentFormat::V2,
        piece,
        &[("big.bin", 513 * piece as usize, 3)],
    );
    let mut nodes = swarm(&real, vec![(real.clone(), data.clone())]);
    let got = download(&mut nodes).expect("downloaded");
    assert_eq!(got, data);
    assert_eq!(nodes[0].t.info().piece_hashes, real.piece_hashes);
}

/// A hybrid's magnet with both names takes a peer of its v2 swarm while
/// its metadata comes (BEP 52): the seeder dials it under the v2 name.
#[test]
fn a_hybrid_magnet_takes_a_peer_dialling_its_v2_name() {
    let files = [
        ("a.bin", 4 * PIECE as usize, 5),
        ("b.bin", 2 * PIECE as usize, 6),
    ];
    let (real, data) = build(TorrentFormat::Hybrid, PIECE, &files);
    let v2 = real.info_hash_v2.unwrap();
    let mut magnet = Torrent::from_magnet(
        Instant::ZERO,
        real.info_hash,
        Vec::new(),
        config(100),
        Seed::from_u64(4),
    );
    magnet.set_v2_hash(v2);
    let n = real.layout.piece_count();
    let mut seeder = Torrent::new(
        Instant::ZERO,
        real.clone(),
        config(1),
        StartMode::Trusted(Bitfield::full(n)),
        Seed::from_u64(5),
    );
    let v2_name = InfoHash::truncated(&v2);
    assert_ne!(v2_name, real.info_hash);
    seeder.add_peers_named(Instant::ZERO, [addr(99)], PeerSource::User, v2_name);
    assert_eq!(seeder.dial_name(&addr(99)), v2_name);
    let mut nodes = vec![
        Node::new(magnet, Vec::new(), addr(99)),
        Node::new(seeder, data.clone(), addr(0)),
    ];
    let got = download(&mut nodes).expect("downloaded");
    assert_eq!(got, data);
    assert_eq!(nodes[0].t.info().info_hash_v2, Some(v2));
    assert_eq!(nodes[0].t.info().other_hash(), Some(v2_name));
}

/// The metadata's SHA-256 must be the link's `btmh`.
#[test]
fn a_magnet_whose_btmh_is_not_the_metadatas_is_refused() {
    let files = [("a.bin", 4 * PIECE as usize, 5)];
    let (real, data) = build(TorrentFormat::Hybrid, PIECE, &files);
    let mut magnet = Torrent::from_magnet(
        Instant::ZERO,
        real.info_hash,
        Vec::new(),
        config(100),
        Seed::from_u64(6),
    );
    magnet.set_v2_hash([7; 32]);
    let mut nodes = among_seeders(magnet, vec![(real, data)]);
    let (mut links, mut next) = (BTreeMap::new(), 0);
    let _ = run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 50, |n| {
        n[0].t.state() == TorrentState::Stopped
    });
    assert!(nodes[0].events.contains(&TorrentEvent::MetadataInvalid(
        crate::metainfo::MetainfoError::V2HashMismatch
    )));
    assert_eq!(nodes[0].t.state(), TorrentState::Stopped);
}

#[test]
fn with_only_a_liar_the_torrent_never_starts() {
    let (real, data) = v2_torrent();
    let mut nodes = swarm(&real, vec![hash_liar(&real, &data)]);
    let (mut links, mut next) = (BTreeMap::new(), 0);
    let started = run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 100, |n| {
        n[0].t.state() == TorrentState::AwaitingStart
    });
    assert_eq!(started, None);
    assert_eq!(banned(&nodes[0]), vec![addr(0)]);
    assert_eq!(nodes[0].t.state(), TorrentState::FetchingMetadata);
}

/// A hybrid added by its v2 name alone (a `btmh` magnet) goes by that
/// name, and learns its v1 name from the metadata: its second swarm, now
/// and after a restart from its saved .torrent.
#[test]
fn a_hybrid_known_by_its_v2_name_has_its_v1_hash_as_other_name() {
    let files = [("a.bin", 4 * PIECE as usize, 9)];
    let (real, data) = build(TorrentFormat::Hybrid, PIECE, &files);
    let v2_name = InfoHash::truncated(&real.info_hash_v2.unwrap());
    let mut nodes = swarm(&real, vec![(real.clone(), data.clone())]);
    let got = download(&mut nodes).expect("downloaded");
    assert_eq!(got, data);
    let info = nodes[0].t.info();
    assert_eq!(info.info_hash, v2_name);
    assert_eq!(info.other_hash(), Some(real.info_hash));
    assert_eq!(info.names(), vec![v2_name, real.info_hash]);
    // Reloaded from its .torrent under the name it goes by.
    let file = nodes[0].t.torrent_file().unwrap();
    let reloaded = TorrentInfo {
        info_hash: v2_name,
        ..TorrentInfo::from_metainfo(&Metainfo::from_bytes(&file).unwrap())
    };
    assert_eq!(reloaded.other_hash(), Some(real.info_hash));
    // A v1 torrent and a v2-only one have one name.
    let (v2_only, _) = v2_torrent();
    assert_eq!(v2_only.other_hash(), None);
}
