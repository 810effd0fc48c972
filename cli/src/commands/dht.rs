//! `bittide dht`: use the Mainline DHT (BEP 5) from the command line —
//! one-shot queries and lookups (ping, find-node, get-peers, announce, a
//! BEP 51 sample), a long-running node (`serve`), and the info-hash
//! crawler (`crawl`).

mod crawl;
mod index_crawl;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bittide_core::dht::routing::TableConfig;
use bittide_core::dht::{DhtConfig, DhtEvent};
use bittide_core::krpc::NodeId;
use bittide_core::IpFamily;
use bittide_driver::dht_client::{DhtClient, PUBLIC_ROUTERS};
use bittide_driver::units::parse_duration;
use clap::Subcommand;
use serde_json::json;

use crate::args::{parse_hash, parse_listen, resolve_all, resolve_one, LONGEST_WAIT};
use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  bittide dht ping router.bittorrent.com:6881
  bittide dht get-peers 0123456789abcdef0123456789abcdef01234567 --json
  bittide dht serve --listen 6881 --state-dir ~/.local/state/bittide
  bittide dht crawl --duration 1h --nodes 4 --json > hashes.jsonl";

/// The options every `dht` subcommand takes (`global`: before or after
/// the subcommand's name). The names are those of `download` and `seed`
/// for the same things (`docs/cli.md`); the older ones still work.
#[derive(clap::Args, Debug)]
struct Options {
    /// A DHT node to join through, HOST:PORT (repeatable) [default: the
    /// nodes of the DHT state file, else the public routers].
    #[arg(
        long = "dht-bootstrap",
        alias = "bootstrap",
        value_name = "ADDR",
        global = true
    )]
    bootstrap: Vec<String>,
    /// UDP address to use: PORT, :PORT, IPV4:PORT or [IPV6]:PORT; an IPv6
    /// address runs a node of the IPv6 DHT (BEP 32) [default: any free
    /// IPv4 port].
    #[arg(long, alias = "port", value_name = "ADDR", value_parser = parse_listen, global = true)]
    listen: Option<SocketAddr>,
    /// Keep our node id and known nodes in this file between runs
    /// [default: STATE_DIR/dht.dat with --state-dir, else none].
    #[arg(
        long = "dht-state",
        alias = "state-file",
        value_name = "PATH",
        global = true
    )]
    state_file: Option<PathBuf>,
    /// Keep our node id and known nodes in DIR/dht.dat between runs
    /// (`download` and `seed` use ~/.local/state/bittide) [default:
    /// nothing kept].
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Accept loopback and private-network nodes (tests, LANs).
    #[arg(long, global = true)]
    dht_allow_local: bool,
    /// Keep nodes whose id does not match their IP (BEP 42) out of the
    /// routing table.
    #[arg(long, global = true)]
    enforce_node_ids: bool,
    /// Print JSON, one object per line, instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Give up a query or the join after this long (30s, 2m; a bare
    /// number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, global = true)]
    timeout: Duration,
}

impl Options {
    /// The state file: `--dht-state`, else `dht.dat` in `--state-dir`.
    fn state_file(&self) -> Option<PathBuf> {
        self.state_file
            .clone()
            .or_else(|| self.state_dir.as_ref().map(|d| d.join("dht.dat")))
    }

    /// `--timeout`, at least a second.
    fn limit(&self) -> Duration {
        self.timeout.clamp(Duration::from_secs(1), LONGEST_WAIT)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ping a node.
    #[command(after_help = "Example:\n  bittide dht ping router.bittorrent.com:6881 --timeout 5s")]
    Ping {
        /// Its address, HOST:PORT.
        addr: String,
    },
    /// Find the nodes closest to an id.
    #[command(
        after_help = "Example:\n  bittide dht find-node 0123456789abcdef0123456789abcdef01234567"
    )]
    FindNode {
        /// 40 hex digits.
        id: String,
    },
    /// Find peers for a torrent.
    #[command(
        after_help = "Example:\n  bittide dht get-peers 0123456789abcdef0123456789abcdef01234567 --json"
    )]
    GetPeers {
        /// The info-hash, 40 hex digits.
        info_hash: String,
    },
    /// Announce that we have a torrent on a port.
    #[command(
        after_help = "Example:\n  bittide dht announce 0123456789abcdef0123456789abcdef01234567 51001"
    )]
    Announce {
        /// The info-hash, 40 hex digits.
        info_hash: String,
        /// The port peers should connect to.
        #[arg(value_name = "PORT")]
        peer_port: u16,
    },
    /// Ask one node for a sample of the info-hashes it stores (BEP 51).
    #[command(after_help = "Example:\n  bittide dht sample dht.example.org:6881 --json")]
    Sample {
        /// Its address, HOST:PORT.
        addr: String,
        /// Where in the keyspace to ask for nodes (40 hex digits)
        /// [default: random].
        #[arg(long)]
        target: Option<String>,
    },
    /// Walk the DHT and print every info-hash found (BEP 51 samples, and
    /// the get_peers/announce_peer queries other nodes send us): one line
    /// each, `INFO_HASH NODE SOURCE` (with --json, one JSON object per
    /// line), and a stats line a minute on stderr.
    #[command(after_help = "\
Examples:
  bittide dht crawl --duration 10m > hashes.txt
  bittide dht crawl --duration 0 --nodes 8 --rate 100 --json --state-dir /var/lib/bittide
  bittide dht crawl --duration 1h --index            # into ~/.local/state/bittide/index.db
  bittide dht crawl --duration 0 --index crawl.db --max-fetches 128")]
    Crawl {
        /// How long to crawl (90s, 10m, 2h; a bare number is seconds); 0
        /// runs until killed.
        #[arg(long, alias = "for", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
        duration: Duration,
        /// Crawl queries per second at most (per node).
        #[arg(long, alias = "max-rps", value_name = "N", default_value_t = 200)]
        rate: u64,
        /// Build an index: fetch each torrent's metadata from its peers
        /// (BEP 9) and store its name and files in LOCATION — a SQLite
        /// file (PATH or sqlite:PATH) or postgres://… [default with no
        /// value: STATE_DIR/index.db]. Prints `INFO_HASH NAME` per torrent
        /// indexed; search it with `bittide index search`.
        #[arg(long, value_name = "LOCATION", num_args = 0..=1, default_missing_value = "")]
        index: Option<String>,
        /// With --index: metadata fetches at once.
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_fetches: usize,
        /// DHT nodes to crawl with, each with its own id and port (the
        /// --listen port, the next one, …, or any), sharing the nodes they
        /// meet; an info-hash is printed once whichever node finds it.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        nodes: u16,
    },
    /// Run a node: answer queries, keep the table fresh, save the state
    /// every five minutes. Prints a line once joined, then a stats line a
    /// minute.
    #[command(after_help = "\
Examples:
  bittide dht serve --listen 6881 --state-dir ~/.local/state/bittide
  bittide dht serve --listen 127.0.0.1:7000 --dht-allow-local --duration 1h")]
    Serve {
        /// Stop after this long (90s, 10m, 2h; a bare number is seconds);
        /// 0 runs until killed.
        #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
        duration: Duration,
    },
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let Args { options, command } = args;
    let limit = options.limit();
    let bind = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    if let Command::Crawl {
        duration,
        rate,
        index: Some(index),
        max_fetches,
        nodes,
    } = &command
    {
        if *nodes > 1 {
            return Err(Failure::new(
                Exit::Usage,
                "--index crawls with one node (run more crawlers into the same index instead)",
            ));
        }
        let location = super::index::location(Some(index), options.state_dir.clone())?;
        let crawl = index_crawl::IndexCrawl {
            bind,
            duration: *duration,
            rate: *rate,
            location,
            max_fetches: *max_fetches,
        };
        return index_crawl::run(&options, crawl);
    }
    // One node on one socket: it reaches the nodes of its family (the
    // IPv6 DHT of BEP 32 with an IPv6 `--listen`).
    let family = IpFamily::of(&bind);
    // Long-lived nodes answer; one-shot ones would only leave dead entries
    // in others' tables.
    let read_only = !matches!(command, Command::Serve { .. } | Command::Crawl { .. });
    let config = DhtConfig {
        table: TableConfig {
            allow_local: options.dht_allow_local,
            ..Default::default()
        },
        read_only,
        enforce_node_ids: options.enforce_node_ids,
        ..Default::default()
    };
    let mut client = DhtClient::open(bind, config.clone(), options.state_file())
        .map_err(|e| Failure::new(Exit::Io, format!("udp {bind}: {e}")))?;
    let io = |e: std::io::Error| Failure::new(Exit::Io, e.to_string());
    let parse_id = |s: &str| parse_hash(s).map(|h| NodeId(h.0));
    let out = match command {
        Command::Ping { addr } => {
            let to = resolve_one(&addr, family)?;
            let now = client.now();
            client.dht().ping(now, to);
            let mut pong = None;
            client
                .run(limit, |_, e| {
                    if let DhtEvent::Pong { node } = e {
                        pong = Some(*node);
                    }
                    pong.is_some()
                })
                .map_err(io)?;
            let node =
                pong.ok_or_else(|| Failure::new(Exit::NoAnswer, format!("{to}: no answer")))?;
            json!({"node": node.addr.to_string(), "id": node.id.to_string()})
        }
        Command::Sample { addr, target } => {
            let to = resolve_one(&addr, family)?;
            let target = match target {
                Some(t) => parse_id(&t)?,
                None => {
                    let mut id = [0u8; 20];
                    bittide_core::Rng::new(bittide_driver::clock::os_seed()).fill(&mut id);
                    NodeId(id)
                }
            };
            let now = client.now();
            client.dht().sample_infohashes(now, to, target);
            let mut answer = None;
            client
                .run(limit, |_, e| {
                    if let DhtEvent::Samples { .. } = e {
                        answer = Some(e.clone());
                    }
                    answer.is_some()
                })
                .map_err(io)?;
            let Some(DhtEvent::Samples {
                node,
                hashes,
                num,
                interval,
                nodes,
            }) = answer
            else {
                return Err(Failure::new(Exit::NoAnswer, format!("{to}: no answer")));
            };
            json!({
                "node": node.addr.to_string(),
                "id": node.id.to_string(),
                "samples": hashes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "num": num,
                "interval": interval,
                "closest": nodes.iter().map(|n| format!("{} {}", n.id, n.addr)).collect::<Vec<_>>(),
            })
        }
        Command::Serve { duration } => return serve::run(&mut client, &options, duration),
        Command::Crawl {
            duration,
            rate,
            nodes,
            ..
        } => {
            let mut clients = vec![client];
            for i in 1..nodes {
                let port = match bind.port() {
                    0 => 0,
                    p => p.saturating_add(i),
                };
                let bind = SocketAddr::new(bind.ip(), port);
                let c = DhtClient::open(bind, config.clone(), None)
                    .map_err(|e| Failure::new(Exit::Io, format!("udp {bind}: {e}")))?;
                clients.push(c);
            }
            return crawl::run(clients, &options, duration, rate);
        }
        command => {
            let size = client
                .join(&dht_bootstrap_nodes(&options, family)?, limit)
                .map_err(io)?;
            if size == 0 {
                return Err(Failure::new(
                    Exit::NoAnswer,
                    "could not join the DHT: no node answered",
                ));
            }
            let now = client.now();
            let lookup = match &command {
                Command::FindNode { id } => client.dht().find_node(now, parse_id(id)?),
                Command::GetPeers { info_hash } => {
                    client.dht().get_peers(now, parse_hash(info_hash)?)
                }
                Command::Announce {
                    info_hash,
                    peer_port,
                } => client
                    .dht()
                    .announce(now, parse_hash(info_hash)?, *peer_port, false),
                Command::Ping { .. }
                | Command::Sample { .. }
                | Command::Serve { .. }
                | Command::Crawl { .. } => {
                    unreachable!("handled above")
                }
            };
            let mut peers: Vec<String> = Vec::new();
            let mut closest: Vec<String> = Vec::new();
            let mut announced = None;
            let mut done = false;
            client
                .run(limit, |_, e| {
                    match e {
                        DhtEvent::Peers {
                            lookup: l,
                            peers: p,
                            ..
                        } if *l == lookup => {
                            peers.extend(p.iter().map(ToString::to_string));
                        }
                        DhtEvent::Announced { lookup: l, nodes } if *l == lookup => {
                            announced = Some(*nodes)
                        }
                        DhtEvent::LookupDone {
                            lookup: l,
                            closest: c,
                            ..
                        } if *l == lookup => {
                            closest = c.iter().map(|n| format!("{} {}", n.id, n.addr)).collect();
                            done = true;
                        }
                        _ => {}
                    }
                    done
                })
                .map_err(io)?;
            json!({"table": size, "peers": peers, "closest": closest, "announced_to": announced})
        }
    };
    let _ = client.save();
    if options.json {
        return print(&format!("{out}\n"));
    }
    let mut s = String::new();
    if let Some(samples) = out.get("samples").and_then(|v| v.as_array()) {
        s.push_str(&format!(
            "{} of {} info-hashes from {}; ask again in {} s\n",
            samples.len(),
            out["num"],
            out["node"].as_str().unwrap_or("?"),
            out["interval"]
        ));
        for h in samples {
            s.push_str(&format!("sample {}\n", h.as_str().unwrap_or("?")));
        }
        for c in out["closest"].as_array().into_iter().flatten() {
            s.push_str(&format!("node {}\n", c.as_str().unwrap_or("?")));
        }
    } else if let Some(id) = out.get("id").and_then(|v| v.as_str()) {
        s.push_str(&format!(
            "pong from {} (id {id})\n",
            out["node"].as_str().unwrap_or("?")
        ));
    } else {
        s.push_str(&format!("joined: {} nodes in the table\n", out["table"]));
        if let Some(n) = out["announced_to"].as_u64() {
            s.push_str(&format!("announced to {n} nodes\n"));
        }
        for p in out["peers"].as_array().into_iter().flatten() {
            s.push_str(&format!("peer {}\n", p.as_str().unwrap_or("?")));
        }
        for c in out["closest"].as_array().into_iter().flatten() {
            s.push_str(&format!("node {}\n", c.as_str().unwrap_or("?")));
        }
    }
    print(&s)
}

/// The nodes to join through: `--dht-bootstrap`, else (without a state file)
/// the public routers.
fn dht_bootstrap_nodes(options: &Options, family: IpFamily) -> Result<Vec<SocketAddr>, Failure> {
    let mut boot = resolve_all(&options.bootstrap, family)?;
    if boot.is_empty() && options.state_file().is_none() {
        let routers: Vec<String> = PUBLIC_ROUTERS.iter().map(|s| (*s).to_owned()).collect();
        boot = resolve_all(&routers, family).unwrap_or_default();
    }
    Ok(boot)
}
