//! `bittide dht crawl`: several DHT nodes harvesting info-hashes together
//! (BEP 51 samples, and the queries other nodes send them), each printed
//! once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bittide_core::dht::crawler::{CrawlConfig, HarvestSource};
use bittide_core::dht::DhtEvent;
use bittide_core::{InfoHash, IpFamily};
use bittide_driver::dht_client::{DhtClient, NodeExchange};
use serde_json::json;

use super::{dht_bootstrap_nodes, Options};
use crate::exit::{Exit, Failure};
use crate::output::print;

/// `bittide dht crawl`: join, crawl for `duration`, print what it finds.
pub(super) fn run(
    clients: Vec<DhtClient>,
    options: &Options,
    duration: Duration,
    rate: u64,
) -> Result<(), Failure> {
    let family = clients.first().map_or(IpFamily::V4, DhtClient::family);
    let boot = dht_bootstrap_nodes(options, family)?;
    let exchange = NodeExchange::new(clients.len());
    let seen = Mutex::new(HashSet::new());
    let results: Vec<Result<(), Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, client)| {
                let (boot, exchange, seen) = (&boot, &exchange, &seen);
                scope.spawn(move || {
                    crawl_node(i, client, options, boot, exchange, seen, duration, rate)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure::new(Exit::Io, "a crawl thread panicked")))
            })
            .collect()
    });
    // The first node's failure to join is the command's; extra nodes that
    // could not join only crawl less.
    results.into_iter().next().unwrap_or(Ok(()))
}

/// One node of `bittide dht crawl`: joins, crawls, prints each info-hash
/// the group has not printed yet, trades nodes with the others every few
/// seconds; node 0 prints the stats line and keeps the state file.
#[allow(clippy::too_many_arguments)]
fn crawl_node(
    i: usize,
    mut client: DhtClient,
    options: &Options,
    boot: &[SocketAddr],
    exchange: &NodeExchange,
    seen: &Mutex<HashSet<InfoHash>>,
    duration: Duration,
    rate: u64,
) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::new(Exit::Io, e.to_string());
    let joined = client.join(boot, options.limit()).map_err(io)?;
    if joined == 0 {
        return Err(Failure::new(
            Exit::NoAnswer,
            "could not join the DHT: no node answered",
        ));
    }
    if i == 0 {
        eprintln!("joined: {joined} nodes in the table; crawling");
    }
    let now = client.now();
    let config = CrawlConfig {
        rate: rate.max(1),
        ..CrawlConfig::default()
    };
    client.dht().crawl(now, config);
    // The crawl's time starts once joined.
    let end = (!duration.is_zero()).then(|| now + duration);
    let mut last_stats = now;
    let mut last_save = now;
    let mut failed: Option<Failure> = None;
    loop {
        let slice = end.map_or(Duration::from_secs(5), |e| {
            (e - client.now()).min(Duration::from_secs(5))
        });
        if slice.is_zero() || failed.is_some() {
            break;
        }
        client
            .run(slice, |_, e| {
                let DhtEvent::Harvested {
                    info_hash,
                    node,
                    source,
                } = e
                else {
                    return false;
                };
                let new = seen.lock().map(|mut s| s.insert(*info_hash)).unwrap_or(true);
                if !new {
                    return false;
                }
                let source = match source {
                    HarvestSource::Sample => "sample",
                    HarvestSource::GetPeers => "get_peers",
                    HarvestSource::AnnouncePeer => "announce_peer",
                };
                let line = if options.json {
                    format!(
                        "{}\n",
                        json!({"info_hash": info_hash.to_string(), "node": node.addr.to_string(), "source": source})
                    )
                } else {
                    format!("{info_hash} {} {source}\n", node.addr)
                };
                if let Err(e) = print(&line) {
                    failed = Some(e);
                    return true;
                }
                false
            })
            .map_err(io)?;
        let now = client.now();
        exchange.trade(i, client.dht(), now);
        if i == 0 && now - last_stats >= Duration::from_secs(60) {
            last_stats = now;
            let total = seen.lock().map(|s| s.len()).unwrap_or(0);
            if let Some(s) = client.dht().crawl_stats() {
                eprintln!(
                    "{total} info-hashes in all; this node: {} nodes known, {} waiting; {} samples and {} find_node sent, {} answers, {} failures",
                    s.nodes_known, s.frontier, s.samples_sent, s.find_nodes_sent, s.answers, s.failures
                );
            }
        }
        if i == 0 && now - last_save >= Duration::from_secs(300) {
            last_save = now;
            client.save().map_err(io)?;
        }
    }
    if i == 0 {
        client.save().map_err(io)?;
    }
    failed.map_or(Ok(()), Err)
}
