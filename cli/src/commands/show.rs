//! `bittide show`: one torrent in detail — its state, files, peers and
//! trackers — or (`--json`) the API's object.

use bittide_driver::units::human;
use serde::Deserialize;

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{self, eta, percent, rate, RemoteArgs, Table, TorrentJson};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The torrent's info-hash, or its first 6 or more hex digits.
    #[arg(value_name = "HASH")]
    hash: String,
    /// Print the API's JSON object (one line, every field, for scripts)
    /// instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide show c1c1c1            (the first 6 or more hex digits are enough)
  bittide show c1c1c1 --json | jq .files";

/// `GET /api/v1/torrents/{hash}`, the parts shown.
#[derive(Deserialize)]
struct Details {
    #[serde(flatten)]
    torrent: TorrentJson,
    #[serde(default)]
    files: Vec<File>,
    #[serde(default)]
    peer_list: Vec<Peer>,
    #[serde(default)]
    trackers: Vec<Tracker>,
    #[serde(default)]
    magnet: String,
}

#[derive(Deserialize)]
struct File {
    index: usize,
    path: String,
    size: u64,
    progress: f64,
    priority: String,
}

#[derive(Deserialize)]
struct Peer {
    addr: String,
    client: Option<String>,
    download_rate: u64,
    upload_rate: u64,
    progress: f64,
    flags: String,
}

#[derive(Deserialize)]
struct Tracker {
    url: String,
    tier: usize,
    peers: usize,
    seeders: Option<u32>,
    leechers: Option<u32>,
    error: Option<String>,
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let hash = client.resolve(std::slice::from_ref(&args.hash))?.remove(0);
    let body = client.get(&format!("torrents/{hash}"))?;
    if args.json {
        return remote::print_raw(&body);
    }
    let details: Details = client.parse(&body)?;
    print(&render(&details))
}

fn render(d: &Details) -> String {
    let t = &d.torrent;
    let limit = |n: u64| if n == 0 { "none".to_owned() } else { rate(n) };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<10} {v}\n"));
    line("Name:", t.name.clone());
    line("Hash:", t.info_hash.clone());
    match &t.error {
        Some(e) => line("State:", format!("{} ({e})", t.state)),
        None => line("State:", t.state.clone()),
    }
    line(
        "Progress:",
        format!(
            "{} of {} wanted ({} in all)",
            percent(t.progress),
            human(t.wanted),
            human(t.size)
        ),
    );
    line(
        "Rates:",
        format!(
            "down {}, up {}; ETA {}",
            rate(t.download_rate),
            rate(t.upload_rate),
            eta(t.eta)
        ),
    );
    line(
        "Transfer:",
        format!(
            "{} down, {} up, ratio {:.2}",
            human(t.downloaded),
            human(t.uploaded),
            t.ratio
        ),
    );
    line("Peers:", t.peers.to_string());
    line("Save path:", t.save_path.clone());
    if let Some(c) = &t.category {
        line("Category:", c.clone());
    }
    if !t.tags.is_empty() {
        line("Tags:", t.tags.join(", "));
    }
    line(
        "Limits:",
        format!(
            "down {}, up {}",
            limit(t.download_limit),
            limit(t.upload_limit)
        ),
    );
    if !d.magnet.is_empty() {
        line("Magnet:", d.magnet.clone());
    }
    if !d.files.is_empty() {
        let mut files = Table::new(&[
            ("#", true),
            ("SIZE", true),
            ("DONE", true),
            ("PRIORITY", false),
            ("PATH", false),
        ]);
        for f in &d.files {
            files.row(vec![
                f.index.to_string(),
                human(f.size),
                percent(f.progress),
                f.priority.clone(),
                f.path.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&files.render());
    }
    if !d.peer_list.is_empty() {
        let mut peers = Table::new(&[
            ("PEER", false),
            ("CLIENT", false),
            ("FLAGS", false),
            ("HAS", true),
            ("DOWN", true),
            ("UP", true),
        ]);
        for p in &d.peer_list {
            peers.row(vec![
                p.addr.clone(),
                p.client.clone().unwrap_or_else(|| "?".into()),
                p.flags.clone(),
                percent(p.progress),
                rate(p.download_rate),
                rate(p.upload_rate),
            ]);
        }
        out.push('\n');
        out.push_str(&peers.render());
    }
    if !d.trackers.is_empty() {
        let mut trackers = Table::new(&[
            ("TIER", true),
            ("PEERS", true),
            ("SEEDS", true),
            ("LEECH", true),
            ("TRACKER", false),
        ]);
        let count = |n: Option<u32>| n.map_or("-".to_owned(), |n| n.to_string());
        for tr in &d.trackers {
            let url = match &tr.error {
                Some(e) => format!("{} ({e})", tr.url),
                None => tr.url.clone(),
            };
            trackers.row(vec![
                tr.tier.to_string(),
                tr.peers.to_string(),
                count(tr.seeders),
                count(tr.leechers),
                url,
            ]);
        }
        out.push('\n');
        out.push_str(&trackers.render());
    }
    out
}
