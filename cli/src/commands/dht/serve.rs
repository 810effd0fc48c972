//! `bittide dht serve`: a long-running DHT node.

use std::time::Duration;

use bittide_driver::dht_client::DhtClient;
use serde_json::json;

use super::{dht_bootstrap_nodes, Options};
use crate::exit::{Exit, Failure};
use crate::output::print;

/// `bittide dht serve`: join (alone if nobody answers: the first node of a
/// private network), then answer queries until `duration` ends.
pub(super) fn run(
    client: &mut DhtClient,
    options: &Options,
    duration: Duration,
) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::new(Exit::Io, e.to_string());
    let boot = dht_bootstrap_nodes(options, client.dht().family())?;
    let joined = client.join(&boot, options.limit()).map_err(io)?;
    let addr = client.local_addr().map_err(io)?;
    let id = client.dht().id();
    let stats = |client: &mut DhtClient| {
        let dht = client.dht();
        let r = dht.reply_stats();
        json!({
            "table": dht.table().len(),
            "torrents": dht.store().torrents(),
            "peers": dht.store().len(),
            "dropped_queries": dht.dropped_queries(),
            "unmatched_replies": dht.unmatched_replies(),
            "queries": r.queries,
            "query_bytes": r.query_bytes,
            "replies": r.replies,
            "reply_bytes": r.reply_bytes,
            "dropped_by_source": r.dropped_by_source,
            "dropped_by_budget": r.dropped_by_budget,
            "blocked_sources": r.blocks,
        })
    };
    if options.json {
        print(&format!(
            "{}\n",
            json!({"serving": addr.to_string(), "id": id.to_string(), "table": joined})
        ))?;
    } else {
        print(&format!(
            "serving on {addr} (id {id}), {joined} nodes in the table\n"
        ))?;
    }
    let end = (!duration.is_zero()).then(|| client.now() + duration);
    let mut minutes = 0u64;
    loop {
        let slice = end.map_or(Duration::from_secs(60), |e| {
            (e - client.now()).min(Duration::from_secs(60))
        });
        if slice.is_zero() {
            break;
        }
        client.run(slice, |_, _| false).map_err(io)?;
        minutes += 1;
        let s = stats(client);
        if options.json {
            print(&format!("{s}\n"))?;
        } else {
            print(&format!(
                "table {} nodes, {} torrents / {} peers stored; {} queries in ({} bytes), \
                 {} answers out ({} bytes), dropped {} over a source's rate and {} over \
                 the byte budget\n",
                s["table"],
                s["torrents"],
                s["peers"],
                s["queries"],
                s["query_bytes"],
                s["replies"],
                s["reply_bytes"],
                s["dropped_by_source"],
                s["dropped_by_budget"],
            ))?;
        }
        if minutes.is_multiple_of(5) {
            client.save().map_err(io)?;
        }
    }
    client.save().map_err(io)
}
