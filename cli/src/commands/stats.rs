//! `bittide stats`: the daemon as a whole — rates, totals, torrents by
//! state, connections, DHT nodes.

use bittide_driver::units::human;
use serde::Deserialize;

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{self, rate, RemoteArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Print the API's JSON object (one line) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide stats
  bittide stats --json";

/// `GET /api/v1/stats`.
#[derive(Deserialize)]
struct Stats {
    download_rate: u64,
    upload_rate: u64,
    downloaded: u64,
    uploaded: u64,
    torrents: usize,
    downloading: usize,
    seeding: usize,
    paused: usize,
    queued: usize,
    connections: usize,
    dht_nodes: Option<usize>,
    uptime: u64,
    listen: String,
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let body = client.get("stats")?;
    if args.json {
        return remote::print_raw(&body);
    }
    let s: Stats = client.parse(&body)?;
    let dht = s
        .dht_nodes
        .map_or("off".to_owned(), |n| format!("{n} nodes"));
    print(&format!(
        "Torrents:    {} ({} downloading, {} seeding, {} paused, {} queued)\n\
         Rates:       down {}, up {}\n\
         Transferred: {} down, {} up (since the daemon started)\n\
         Connections: {}\n\
         DHT:         {dht}\n\
         Listening:   {}\n\
         Uptime:      {}\n",
        s.torrents,
        s.downloading,
        s.seeding,
        s.paused,
        s.queued,
        rate(s.download_rate),
        rate(s.upload_rate),
        human(s.downloaded),
        human(s.uploaded),
        s.connections,
        s.listen,
        remote::eta(Some(s.uptime)),
    ))
}
