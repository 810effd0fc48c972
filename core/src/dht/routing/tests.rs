use std::net::SocketAddr;

use super::*;
use crate::rng::{Rng, Seed};

fn public(i: u32) -> SocketAddr {
    SocketAddr::from(([20, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
}

fn random_id(rng: &mut Rng) -> NodeId {
    let mut id = [0u8; 20];
    rng.fill(&mut id);
    NodeId(id)
}

fn node(id: NodeId, addr: SocketAddr) -> CompactNode {
    CompactNode { id, addr }
}

#[test]
fn buckets_split_only_near_us_and_closest_is_exact() {
    let mut rng = Rng::new(Seed::from_u64(1));
    let own = random_id(&mut rng);
    let mut t = RoutingTable::new(own, TableConfig::default());
    let now = Instant::ZERO;
    let mut all = Vec::new();
    for i in 0..2000 {
        let n = node(random_id(&mut rng), public(i));
        if t.insert(now, n, true) == Insert::Added {
            all.push(n);
        }
    }
    assert!(t.len() > 8 * 8, "{} nodes", t.len());
    assert!(t.bucket_count() > 5);
    for _ in 0..50 {
        let target = random_id(&mut rng);
        let got = t.closest(now, &target, 8);
        let mut expected: Vec<CompactNode> = t.nodes().map(|e| e.node).collect();
        expected.sort_by_key(|n| n.id.distance(&target));
        expected.truncate(8);
        assert_eq!(got, expected);
    }
}

#[test]
fn one_node_per_ip_and_no_bogons() {
    let own = NodeId([0; 20]);
    let mut t = RoutingTable::new(own, TableConfig::default());
    let now = Instant::ZERO;
    let a = node(NodeId([1; 20]), "20.0.0.1:1000".parse().unwrap());
    assert_eq!(t.insert(now, a, true), Insert::Added);
    let same_ip = node(NodeId([2; 20]), "20.0.0.1:2000".parse().unwrap());
    assert_eq!(
        t.insert(now, same_ip, true),
        Insert::Rejected(Rejection::AddressTaken)
    );
    let moved = node(NodeId([1; 20]), "20.0.0.9:1000".parse().unwrap());
    assert_eq!(
        t.insert(now, moved, true),
        Insert::Rejected(Rejection::IdMoved)
    );
    for bogon in [
        "127.0.0.1:1",
        "10.1.2.3:1",
        "192.168.1.1:1",
        "172.20.0.1:1",
        "224.0.0.1:1",
    ] {
        let n = node(NodeId([3; 20]), bogon.parse().unwrap());
        assert_eq!(
            t.insert(now, n, true),
            Insert::Rejected(Rejection::IgnoredNetwork),
            "{bogon}"
        );
    }
    assert_eq!(
        t.insert(now, node(own, public(5)), true),
        Insert::Rejected(Rejection::OwnId)
    );

    // With local addresses allowed, the port tells nodes apart.
    let mut local = RoutingTable::new(
        own,
        TableConfig {
            allow_local: true,
            ..TableConfig::default()
        },
    );
    let l1 = node(NodeId([4; 20]), "127.0.0.1:7001".parse().unwrap());
    let l2 = node(NodeId([5; 20]), "127.0.0.1:7002".parse().unwrap());
    assert_eq!(local.insert(now, l1, true), Insert::Added);
    assert_eq!(local.insert(now, l2, true), Insert::Added);
}

#[test]
fn states_replacement_and_full_buckets() {
    // All nodes far from us land in bucket 0; it never splits (it does not
    // contain our id once a second bucket exists).
    let own = NodeId([0; 20]);
    let mut t = RoutingTable::new(own, TableConfig::default());
    let t0 = Instant::ZERO;
    let mut far = Vec::new();
    for i in 0..20u32 {
        let mut id = [0xff; 20];
        id[19] = i as u8;
        far.push(node(NodeId(id), public(i)));
    }
    // One node near us makes bucket 0 the far half after a split.
    for n in &far[..8] {
        assert_eq!(t.insert(t0, *n, true), Insert::Added);
    }
    let mut near_id = [0u8; 20];
    near_id[19] = 1;
    let near = node(NodeId(near_id), public(999));
    assert_eq!(t.insert(t0, near, true), Insert::Added);
    assert!(t.bucket_count() >= 2);
    // Bucket 0 is full of good nodes: a newcomer waits, nothing to ping yet.
    assert_eq!(t.insert(t0, far[8], true), Insert::Full { ping: None });
    // 16 minutes later they are questionable: the oldest is to be pinged.
    let later = t0 + Duration::from_secs(16 * 60);
    assert_eq!(
        t.get(&far[0].id).unwrap().state(later),
        NodeState::Questionable
    );
    assert!(matches!(
        t.insert(later, far[9], true),
        Insert::Full { ping: Some(_) }
    ));
    // Three timeouts make it bad; the newest replacement takes its place.
    for _ in 0..3 {
        t.failed(later, &far[0].id);
    }
    assert!(t.get(&far[0].id).is_none());
    assert!(t.get(&far[9].id).is_some());
    // A node answering once and querying us recently is good.
    let mut e = t.get(&far[1].id).unwrap().clone();
    e.last_query = Some(later);
    assert_eq!(e.state(later), NodeState::Good);
}

#[test]
fn random_ids_fall_in_their_bucket() {
    let mut rng = Rng::new(Seed::from_u64(2));
    let own = random_id(&mut rng);
    let mut t = RoutingTable::new(own, TableConfig::default());
    for i in 0..3000 {
        let _ = t.insert(Instant::ZERO, node(random_id(&mut rng), public(i)), true);
    }
    for b in 0..t.bucket_count() {
        let mut r = [0u8; 20];
        rng.fill(&mut r);
        let id = t.random_id_in_bucket(b, r);
        assert_eq!(common_prefix(&own, &id).min(t.bucket_count() - 1), b);
    }
    assert_eq!(
        t.stale_buckets(Instant::ZERO + Duration::from_secs(1))
            .len(),
        t.bucket_count()
    );
}

#[test]
fn a_node_answering_under_a_new_id_replaces_its_old_entry() {
    let mut t = RoutingTable::new(NodeId([0; 20]), TableConfig::default());
    let now = Instant::ZERO;
    let addr = public(1);
    let old = node(NodeId([1; 20]), addr);
    let new = node(NodeId([2; 20]), addr);
    assert_eq!(t.insert(now, old, true), Insert::Added);
    // A query under another id proves nothing: refused.
    assert_eq!(
        t.insert(now, new, false),
        Insert::Rejected(Rejection::AddressTaken)
    );
    // Another port of the same IP (another node behind one NAT): refused.
    let neighbour = node(NodeId([3; 20]), SocketAddr::new(addr.ip(), 7000));
    assert_eq!(
        t.insert(now, neighbour, true),
        Insert::Rejected(Rejection::AddressTaken)
    );
    // An answer to our query from the same socket: the node changed id.
    assert_eq!(t.insert(now, new, true), Insert::Added);
    assert!(t.get(&old.id).is_none());
    assert_eq!(t.len(), 1);
}

#[test]
fn answers_give_out_only_nodes_that_answered_and_have_not_failed_since() {
    let mut rng = Rng::new(Seed::from_u64(6));
    let mut t = RoutingTable::new(random_id(&mut rng), TableConfig::default());
    let now = Instant::ZERO;
    let target = random_id(&mut rng);
    let (asked, answered, failed) = (
        node(random_id(&mut rng), public(1)),
        node(random_id(&mut rng), public(2)),
        node(random_id(&mut rng), public(3)),
    );
    // `asked` only queried us (its source may be forged).
    assert_eq!(t.insert(now, asked, false), Insert::Added);
    assert_eq!(t.insert(now, answered, true), Insert::Added);
    assert_eq!(t.insert(now, failed, true), Insert::Added);
    t.failed(now, &failed.id);
    assert_eq!(t.closest(now, &target, 8).len(), 3, "lookups may try all");
    assert_eq!(t.closest_answered(&target, 8), vec![answered]);
    // Once it answers, the querier is given out too.
    assert_eq!(t.insert(now, asked, true), Insert::Updated);
    let mut got = t.closest_answered(&target, 8);
    got.sort_by_key(|n| n.addr);
    assert_eq!(got, vec![asked, answered]);
}

#[test]
fn each_family_has_its_own_table() {
    // BEP 32: an IPv4 node's table holds IPv4 nodes only, an IPv6 node's
    // IPv6 nodes only; bogons are refused in both.
    let now = Instant::ZERO;
    let v6 = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let mut t4 = RoutingTable::new(NodeId([0; 20]), TableConfig::default());
    assert_eq!(
        t4.insert(now, node(NodeId([1; 20]), v6("[2606:4700::1]:6881")), true),
        Insert::Rejected(Rejection::OtherFamily)
    );
    let config = TableConfig {
        family: IpFamily::V6,
        ..TableConfig::default()
    };
    let mut t6 = RoutingTable::new(NodeId([0; 20]), config);
    assert_eq!(
        t6.insert(now, node(NodeId([1; 20]), public(1)), true),
        Insert::Rejected(Rejection::OtherFamily)
    );
    assert_eq!(
        t6.insert(now, node(NodeId([2; 20]), v6("[::1]:1")), true),
        Insert::Rejected(Rejection::IgnoredNetwork)
    );
    for bogon in [
        "[::ffff:10.0.0.1]:1",
        "[::ffff:127.0.0.1]:1",
        "[2001:db8::1]:1",
        "[ff02::1]:1",
    ] {
        assert_eq!(
            t6.insert(now, node(NodeId([4; 20]), v6(bogon)), true),
            Insert::Rejected(Rejection::IgnoredNetwork),
            "{bogon}"
        );
    }
    assert!(!matches!(
        t6.insert(now, node(NodeId([3; 20]), v6("[2606:4700::1]:6881")), true),
        Insert::Rejected(_)
    ));
    assert_eq!(t6.len(), 1);
}
