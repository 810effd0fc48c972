//! A v2 piece that fails its check names its bad blocks' senders (BEP 52
//! leaf hashes): a seeder serving wrong bytes is banned, and the honest
//! seeder whose blocks shared its pieces keeps its trust; leaf answers
//! with proof up to the file's root prove it.

use super::metadata::{addr, among_seeders, banned, config};
use super::v2_magnet::build;
use super::*;
use crate::metainfo::hash_tree::implied_root;
use crate::metainfo::merkle::{self, LEAF};
use crate::metainfo::TorrentFormat;
use crate::torrent::leaves::leaf_answer;
use crate::wire::HashRequest;

const PIECE: u32 = 128 * 1024;
/// The file's length: 24 pieces and a bit.
const LENGTH: usize = 24 * PIECE as usize + 30_000;

/// A v2-only torrent of one file, and its bytes on disk (padded to a
/// piece).
fn torrent() -> (TorrentInfo, Vec<u8>) {
    build(TorrentFormat::V2, PIECE, &[("f.bin", LENGTH, 7)])
}

/// Node 0 downloads `info`; node 1 seeds `data`, node 2 `bad`.
fn swarm(info: &TorrentInfo, data: &[u8], bad: Vec<u8>) -> Vec<Node> {
    let leecher = Torrent::new(
        Instant::ZERO,
        info.clone(),
        config(100),
        StartMode::Fresh,
        Seed::from_u64(5),
    );
    let mut nodes = among_seeders(
        leecher,
        vec![(info.clone(), data.to_vec()), (info.clone(), bad)],
    );
    nodes[0].disk = vec![0; data.len()];
    nodes
}

fn bad_blocks(node: &Node) -> Vec<(PieceIndex, Vec<SocketAddr>)> {
    node.events
        .iter()
        .filter_map(|e| match e {
            TorrentEvent::BadBlocks { piece, senders } => Some((*piece, senders.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_liar_is_named_by_the_leaves_and_its_co_senders_keep_their_trust() {
    let (info, data) = torrent();
    let bad: Vec<u8> = data.iter().map(|b| !b).collect();
    let mut nodes = swarm(&info, &data, bad);
    // The liar is slow: a few of its blocks arrive (its bucket's burst)
    // in pieces the honest seeder completes.
    nodes[2].t.set_rate_limits(Instant::ZERO, 32 * 1024, 0);
    let (mut links, mut next) = (BTreeMap::new(), 0);
    // Until the blame is settled too: the leaves may come after the last
    // piece.
    run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 400, |n| {
        n[0].t.is_finished() && !n[0].t.leaves.is_waiting()
    })
    .expect("downloaded");
    assert_eq!(nodes[0].disk, data);
    let (honest, liar) = (addr(0), addr(1));
    assert_eq!(banned(&nodes[0]), vec![liar]);
    let blamed = bad_blocks(&nodes[0]);
    assert!(!blamed.is_empty(), "no piece had blocks from both");
    for (piece, senders) in &blamed {
        assert_eq!(senders, &vec![liar], "piece {piece:?}");
    }
    assert!(
        !nodes[0].t.list.on_parole(&honest),
        "the honest seeder lost trust"
    );
}

/// Leaf answers carry uncles up to any proof layer below the root: from
/// the piece's own subtree, then from the file's tree above it; requests
/// it cannot answer are refused before any read.
#[test]
fn leaf_answers_prove_the_file_root_and_bad_requests_are_refused() {
    let (info, data) = torrent();
    let n = info.layout.piece_count();
    let mut seeder = Torrent::new(
        Instant::ZERO,
        info,
        config(1),
        StartMode::Trusted(Bitfield::full(n)),
        Seed::from_u64(1),
    );
    let root = merkle::root_of_data(&data[..LENGTH], 0);
    let per_piece = PIECE / LEAF as u32;
    let request = |index, length, proof_layers| HashRequest {
        pieces_root: root,
        base_layer: 0,
        index,
        length,
        proof_layers,
    };
    // 25 pieces (32 in the padded layer) of 8 leaves: 8 layers below the
    // root.
    let cases = [
        (0, 8, 7),
        (8, 8, 3),
        (192, 8, 7),
        (193, 1, 7),
        (194, 2, 5),
        (120, 8, 0),
        (16, 8, 1),
    ];
    for (index, length, proof) in cases {
        let r = request(index, length, proof);
        let (piece, upper) = seeder.leaf_piece(&r).expect("answerable");
        assert_eq!(piece, index / per_piece);
        let start = piece as usize * PIECE as usize;
        let bytes = &data[start..LENGTH.min(start + PIECE as usize)];
        let mut leaves: Vec<merkle::Hash> = bytes.chunks(LEAF).map(merkle::leaf).collect();
        leaves.resize(per_piece as usize, [0; 32]);
        let answer = leaf_answer(leaves, &r, per_piece, &upper);
        assert_eq!(answer.len() as u32, length + r.uncle_count(), "{r:?}");
        if proof == 7 {
            assert_eq!(implied_root(&r, &answer, [0; 32]), Some(root), "{r:?}");
        }
    }
    for bad in [
        request(0, 16, 0),  // more than a piece
        request(2, 4, 0),   // not aligned
        request(0, 3, 0),   // not a power of two
        request(200, 8, 0), // a padding piece past the file's end
        request(0, 8, 8),   // proof past the root
        HashRequest {
            pieces_root: [9; 32],
            ..request(0, 8, 0)
        },
    ] {
        assert_eq!(seeder.leaf_piece(&bad), None, "{bad:?}");
    }
}
