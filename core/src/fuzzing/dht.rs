//! DHT targets: a running node under hostile datagrams.

/// dht_datagram: arbitrary datagrams (from a few fixed sources) into a
/// running node with a lookup in flight, crawling. Never panics; the
/// routing table and the crawl stay within their bounds, the table never
/// holds our own id; every datagram the node sends decodes.
pub fn dht_datagram(data: &[u8]) {
    use crate::dht::routing::TableConfig;
    use crate::dht::{Dht, DhtConfig};
    use crate::krpc::{Message, NodeId};
    use crate::{InfoHash, Instant, Seed};

    let config = DhtConfig {
        table: TableConfig {
            allow_local: true,
            ..TableConfig::default()
        },
        ..DhtConfig::default()
    };
    let mut dht = Dht::new(Instant::ZERO, config, Seed::from_u64(5));
    let sources: Vec<std::net::SocketAddr> = (0..4u16)
        .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], 6000 + p)))
        .collect();
    dht.bootstrap(Instant::ZERO, &sources);
    dht.get_peers(Instant::ZERO, InfoHash([3; 20]));
    let crawl = crate::dht::crawler::CrawlConfig {
        max_nodes: 16,
        max_hashes: 16,
        ..Default::default()
    };
    dht.crawl(Instant::ZERO, crawl);
    let mut now = Instant::ZERO;
    for (i, chunk) in data.split(|&b| b == 0xfd).enumerate() {
        now += std::time::Duration::from_millis(300);
        dht.handle_datagram(now, sources[i % sources.len()], chunk);
        if i % 4 == 3 {
            dht.handle_timeout(now);
        }
        while let Some((_, bytes)) = dht.poll_transmit() {
            Message::decode(&bytes).expect("our datagrams decode");
        }
        while dht.poll_event().is_some() {}
        assert!(dht.table().len() <= 160 * 8);
        assert!(dht.table().get(&dht.id()).is_none());
        let stats = dht.crawl_stats().expect("crawling");
        assert!(stats.nodes_known <= 16 && stats.frontier <= 16);
        let _ = NodeId::default();
    }
}

/// dht_state: a saved DHT state (a file the user's disk holds: outside
/// data) that loads holds at most `MAX_STATE_NODES` IPv4 nodes with
/// non-zero ports, re-saves to bytes that load equal, and a node started
/// with the loaded id saves that id again.
pub fn dht_state(data: &[u8]) {
    use crate::dht::{Dht, DhtConfig, MAX_STATE_NODES};
    use crate::krpc::NodeId;
    use crate::{Instant, Seed};

    let Some((id, nodes)) = Dht::load_state(data) else {
        return;
    };
    assert!(
        nodes.len() <= MAX_STATE_NODES,
        "{} nodes loaded",
        nodes.len()
    );
    for n in &nodes {
        assert!(n.is_ipv4() && n.port() != 0, "loaded {n}");
    }
    // The loader keeps only addresses: re-save them under any ids.
    let with_ids: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, a)| (NodeId([i as u8; 20]), *a))
        .collect();
    let saved = Dht::encode_state(id, &with_ids);
    assert_eq!(
        Dht::load_state(&saved),
        Some((id, nodes)),
        "state did not re-save equal"
    );
    let config = DhtConfig {
        id: Some(id),
        ..DhtConfig::default()
    };
    let dht = Dht::new(Instant::ZERO, config, Seed::from_u64(1));
    let again = Dht::load_state(&dht.save_state()).expect("our state loads");
    assert_eq!(
        again.0, id,
        "a node started from the state saves another id"
    );
}
