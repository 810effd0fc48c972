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
/// data) that loads holds at most `MAX_STATE_NODES` nodes per family, each
/// of its part's family with a non-zero port, re-saves to bytes that load
/// equal, and nodes started with the loaded ids save those ids again.
pub fn dht_state(data: &[u8]) {
    use crate::dht::{Dht, DhtConfig, SavedDht, MAX_STATE_NODES};
    use crate::{Instant, IpFamily, Seed};

    let Some(saved) = SavedDht::decode(data) else {
        return;
    };
    for family in IpFamily::ALL {
        let Some(part) = saved.part(family) else {
            continue;
        };
        assert!(
            part.nodes.len() <= MAX_STATE_NODES,
            "{} {family} nodes loaded",
            part.nodes.len()
        );
        for (_, n) in &part.nodes {
            assert!(family.holds(n) && n.port() != 0, "loaded {n} as {family}");
        }
    }
    assert_eq!(
        SavedDht::decode(&saved.encode()).as_ref(),
        Some(&saved),
        "state did not re-save equal"
    );
    let nodes: Vec<Dht> = IpFamily::ALL
        .iter()
        .filter_map(|&family| {
            let part = saved.part(family)?;
            let mut config = DhtConfig {
                id: Some(part.id),
                ..DhtConfig::default()
            };
            config.table.family = family;
            Some(Dht::new(Instant::ZERO, config, Seed::from_u64(1)))
        })
        .collect();
    let again = SavedDht::decode(&SavedDht::of(&nodes).encode()).expect("our state loads");
    for family in IpFamily::ALL {
        assert_eq!(
            again.part(family).map(|p| p.id),
            saved.part(family).map(|p| p.id),
            "a {family} node started from the state saves another id"
        );
    }
}
