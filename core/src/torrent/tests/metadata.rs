//! A magnet's torrent among seeders: the metadata phase (honest seeders,
//! liars, liars alone) and the handover that keeps every connection.

use super::*;
use crate::wire::PeerId;
use crate::wire::METADATA_PIECE;

/// A torrent with many files, so its info dictionary spans several 16 KiB
/// metadata pieces; `salt` makes another torrent of the same shape.
fn many_files(files: usize, salt: u8, private: bool) -> (TorrentInfo, Vec<u8>) {
    let mut b = TorrentBuilder::multi_file("m");
    for i in 0..files {
        b.add_file(vec![format!("file-{salt}-{i:05}.bin")], 1000);
    }
    b.set_piece_length(16384);
    b.set_private(private);
    let data = vec![salt; files * 1000];
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let info = TorrentInfo::from_metainfo(&crate::metainfo::Metainfo::from_bytes(&bytes).unwrap());
    (info, data)
}

pub(super) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 6881))
}

pub(super) fn config(id: u8) -> TorrentConfig {
    TorrentConfig {
        peer_id: PeerId([id; 20]),
        ..TorrentConfig::default()
    }
}

/// Node 0 is the magnet of `hash`; the others seed `seeders` (with their
/// data on disk) and know nobody.
fn swarm(hash: InfoHash, seeders: Vec<(TorrentInfo, Vec<u8>)>) -> Vec<Node> {
    let magnet = Torrent::from_magnet(
        Instant::ZERO,
        hash,
        Vec::new(),
        config(100),
        Seed::from_u64(1),
    );
    among_seeders(magnet, seeders)
}

/// Node 0 is `magnet`, which knows the others: they seed `seeders` (with
/// their data on disk) and know nobody.
pub(super) fn among_seeders(magnet: Torrent, seeders: Vec<(TorrentInfo, Vec<u8>)>) -> Vec<Node> {
    let mut nodes = vec![Node::new(magnet, Vec::new(), addr(99))];
    for (i, (info, data)) in seeders.into_iter().enumerate() {
        let n = info.layout.piece_count();
        let t = Torrent::new(
            Instant::ZERO,
            info,
            config(i as u8),
            StartMode::Trusted(Bitfield::full(n)),
            Seed::from_u64(10 + i as u64),
        );
        nodes.push(Node::new(t, data, addr(i)));
    }
    let others: Vec<SocketAddr> = nodes[1..].iter().map(|n| n.addr).collect();
    nodes[0]
        .t
        .add_peers(Instant::ZERO, others, PeerSource::User);
    nodes
}

/// A seeder claiming `real`'s info-hash but serving `fake`'s metadata.
fn liar(real: &TorrentInfo, fake: (TorrentInfo, Vec<u8>)) -> (TorrentInfo, Vec<u8>) {
    let (info, data) = fake;
    (
        TorrentInfo {
            info_hash: real.info_hash,
            ..info
        },
        data,
    )
}

pub(super) fn banned(node: &Node) -> Vec<SocketAddr> {
    node.events
        .iter()
        .filter_map(|e| match e {
            TorrentEvent::PeerBanned(a) => Some(*a),
            _ => None,
        })
        .collect()
}

fn awaiting_start(nodes: &[Node]) -> bool {
    nodes[0].t.state() == TorrentState::AwaitingStart
}

type Links = BTreeMap<(usize, ConnId), (usize, ConnId)>;

/// Runs from the start until node 0 has its metadata (at most `steps`
/// deadlines); the time it had it.
fn fetch(nodes: &mut [Node], steps: usize) -> Option<Instant> {
    let mut links = Links::new();
    run_until(
        nodes,
        &mut links,
        Instant::ZERO,
        &mut 0,
        steps,
        awaiting_start,
    )
}

#[test]
fn fetches_from_honest_seeders() {
    let (real, data) = many_files(1200, 1, false);
    let size = real.metadata.as_ref().unwrap().len();
    assert!(size > 2 * METADATA_PIECE, "spans several pieces: {size}");
    let seeders = vec![(real.clone(), data.clone()); 3];
    let mut nodes = swarm(real.info_hash, seeders);
    let done = fetch(&mut nodes, 100);
    assert!(done.is_some(), "metadata fetched");
    let t = &nodes[0].t;
    assert_eq!(t.metadata(), real.metadata.as_ref());
    assert_eq!(t.info().piece_hashes, real.piece_hashes);
    assert_eq!(t.info().layout.piece_count(), real.layout.piece_count());
    assert!(nodes[0].events.contains(&TorrentEvent::MetadataReceived));
    assert!(banned(&nodes[0]).is_empty());
    // The .torrent around it names the same torrent.
    let file = t.torrent_file().unwrap();
    let m = crate::metainfo::Metainfo::from_bytes(&file).unwrap();
    assert_eq!(m.info_hash, real.info_hash);
}

/// Metadata larger than the torrent's `max_metadata_size` (an index's
/// fetch caps it) is never asked for: nothing is allocated or requested,
/// and the torrent says why it waits.
#[test]
fn metadata_over_the_size_cap_is_not_fetched() {
    let (real, data) = many_files(1200, 1, false);
    let size = real.metadata.as_ref().unwrap().len() as u64;
    let capped = TorrentConfig {
        max_metadata_size: size - 1,
        ..config(100)
    };
    let magnet = Torrent::from_magnet(
        Instant::ZERO,
        real.info_hash,
        Vec::new(),
        capped,
        Seed::from_u64(1),
    );
    let mut nodes = among_seeders(magnet, vec![(real.clone(), data.clone()); 2]);
    assert!(fetch(&mut nodes, 60).is_none(), "never fetched");
    assert!(nodes[0].t.metadata_too_large());
    assert!(banned(&nodes[0]).is_empty(), "offering it is no offence");
    // At the limit it is fetched.
    let exact = TorrentConfig {
        max_metadata_size: size,
        ..config(100)
    };
    let magnet = Torrent::from_magnet(
        Instant::ZERO,
        real.info_hash,
        Vec::new(),
        exact,
        Seed::from_u64(1),
    );
    let mut nodes = among_seeders(magnet, vec![(real, data); 2]);
    assert!(fetch(&mut nodes, 100).is_some());
}

#[test]
fn a_liar_is_found_and_the_fetch_completes() {
    let (real, data) = many_files(1200, 1, false);
    for fake in [many_files(1200, 2, false), many_files(500, 3, false)] {
        // The liar first, so it is asked too; same or another size.
        let seeders = vec![
            liar(&real, fake.clone()),
            (real.clone(), data.clone()),
            liar(&real, fake),
        ];
        let mut nodes = swarm(real.info_hash, seeders);
        let done = fetch(&mut nodes, 500);
        assert!(done.is_some(), "metadata fetched despite the liars");
        assert_eq!(nodes[0].t.metadata(), real.metadata.as_ref());
        let banned = banned(&nodes[0]);
        assert!(!banned.is_empty(), "a liar was caught");
        assert!(!banned.contains(&addr(1)), "the honest seeder was banned");
    }
}

#[test]
fn liars_alone_never_complete_and_are_banned() {
    let (real, _) = many_files(1200, 1, false);
    let seeders = vec![liar(&real, many_files(1200, 2, false))];
    let mut nodes = swarm(real.info_hash, seeders);
    let done = fetch(&mut nodes, 60);
    assert!(done.is_none());
    assert_eq!(nodes[0].t.state(), TorrentState::FetchingMetadata);
    assert_eq!(banned(&nodes[0]), vec![addr(0)]);
    assert_eq!(nodes[0].t.peer_count(), 0);
    assert!(nodes[0].t.metadata().is_none());
}

/// Runs node 0 (the magnet) until its metadata is in, checks that every
/// peer is still connected, gives it `disk` and starts it as `mode` says,
/// then runs until `done`.
fn start_once_fetched(
    nodes: &mut [Node],
    disk: Vec<u8>,
    mode: StartMode,
    done: impl Fn(&[Node]) -> bool,
) -> Option<Instant> {
    let (mut links, mut next) = (Links::new(), 0);
    let at = run_until(
        nodes,
        &mut links,
        Instant::ZERO,
        &mut next,
        100,
        awaiting_start,
    )
    .expect("metadata fetched");
    let peers = nodes.len() - 1;
    assert_eq!(
        nodes[0].t.peer_addrs().len(),
        peers,
        "every peer still connected"
    );
    nodes[0].disk = disk;
    nodes[0].t.start(at, mode);
    run_until(nodes, &mut links, at, &mut next, 200, done)
}

/// The whole magnet download: the seeders' bitfields, sent right after the
/// handshakes while the piece count was unknown, are what the download
/// runs on after the handover; exactly one connection per peer.
#[test]
fn a_magnet_download_keeps_its_connections_through_the_handover() {
    let (real, data) = many_files(300, 7, false);
    let seeders = vec![(real.clone(), data.clone()); 2];
    let mut nodes = swarm(real.info_hash, seeders);
    let done = start_once_fetched(&mut nodes, vec![0; data.len()], StartMode::Fresh, |n| {
        n[0].t.is_finished()
    });
    assert!(done.is_some(), "downloaded");
    assert!(nodes[0].disk == data, "identical data");
    assert_eq!(
        nodes[0].connects, 2,
        "one connection per peer, over the whole download"
    );
    let disconnects_before_done = nodes[0]
        .events
        .iter()
        .take_while(|e| **e != TorrentEvent::Finished)
        .filter(|e| matches!(e, TorrentEvent::PeerDisconnected { .. }))
        .count();
    assert_eq!(disconnects_before_done, 0);
}

/// Started with [`StartMode::Check`] over data already on disk: what the
/// check finds is told to the peers met during the fetch with `have`s,
/// and a fresh leecher among them downloads it all from us.
#[test]
fn what_the_start_check_finds_is_told_with_haves() {
    let (real, data) = many_files(300, 8, false);
    let n = real.layout.piece_count();
    let mut nodes = swarm(real.info_hash, vec![(real.clone(), data.clone())]);
    // Node 2: a leecher with nothing, known to the magnet only.
    let leecher = Torrent::new(
        Instant::ZERO,
        real.clone(),
        config(50),
        StartMode::Fresh,
        Seed::from_u64(50),
    );
    nodes.push(Node::new(leecher, vec![0; data.len()], addr(50)));
    nodes[0]
        .t
        .add_peers(Instant::ZERO, [addr(50)], PeerSource::User);
    let done = start_once_fetched(&mut nodes, data.clone(), StartMode::Check, |n| {
        n[2].t.is_finished()
    });
    assert!(done.is_some(), "the leecher got everything from the magnet");
    assert_eq!(nodes[0].t.have().count(), n);
    assert_eq!(nodes[0].t.state(), TorrentState::Seeding);
    assert!(nodes[2].disk == data, "identical data");
    assert_eq!(nodes[0].connects, 2);
}

#[test]
fn a_magnet_learns_from_its_metadata_that_it_is_private() {
    let (real, data) = many_files(10, 9, true);
    let mut nodes = swarm(real.info_hash, vec![(real.clone(), data)]);
    assert!(!nodes[0].t.is_private(), "unknown until the metadata is in");
    let done = fetch(&mut nodes, 100);
    assert!(done.is_some());
    // From now on: no PEX (BEP 27); the engine stops its DHT lookups.
    assert!(nodes[0].t.is_private());
}

/// Metadata that hashes right but is no info dictionary (the link names a
/// broken torrent): reported, and the torrent stops.
#[test]
fn metadata_that_hashes_right_but_does_not_parse_stops_the_torrent() {
    use sha1::{Digest, Sha1};
    let (real, data) = many_files(10, 4, false);
    let bogus = Bytes::from_static(b"d3:fooi1ee");
    let hash = InfoHash(Sha1::digest(&bogus).into());
    let seeder = TorrentInfo {
        info_hash: hash,
        metadata: Some(bogus),
        ..real
    };
    let mut nodes = swarm(hash, vec![(seeder, data)]);
    let mut links = Links::new();
    let stopped = |n: &[Node]| n[0].t.state() == TorrentState::Stopped;
    let done = run_until(&mut nodes, &mut links, Instant::ZERO, &mut 0, 100, stopped);
    assert!(done.is_some());
    assert!(nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, TorrentEvent::MetadataInvalid(_))));
    assert!(!nodes[0].events.contains(&TorrentEvent::MetadataReceived));
    assert_eq!(nodes[0].t.peer_count(), 0);
}

/// Paused while fetching: every connection closes; resumed, it fetches
/// again from the start of its peer list.
#[test]
fn a_magnet_paused_while_fetching_resumes_fetching() {
    let (real, data) = many_files(1200, 5, false);
    let mut nodes = swarm(real.info_hash, vec![(real.clone(), data)]);
    nodes[0].t.pause(Instant::ZERO);
    assert_eq!(nodes[0].t.state(), TorrentState::Paused);
    let mut links = Links::new();
    run(&mut nodes, &mut links, Instant::ZERO, &mut 0);
    assert_eq!(nodes[0].t.peer_count(), 0);
    assert_eq!(nodes[0].t.poll_timeout(), None);
    nodes[0].t.resume(Instant::ZERO);
    assert_eq!(nodes[0].t.state(), TorrentState::FetchingMetadata);
    let done = run_until(
        &mut nodes,
        &mut links,
        Instant::ZERO,
        &mut 0,
        200,
        awaiting_start,
    );
    assert!(done.is_some(), "fetched after the resume");
    assert_eq!(nodes[0].t.metadata(), real.metadata.as_ref());
}
