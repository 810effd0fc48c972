//! Command-line parsing and the commands.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bittide_core::metainfo::{Metainfo, MetainfoError};
use bittide_driver::content::{Content, ContentError};
use bittide_driver::units::{self, human, parse_duration, parse_rate, parse_size};
use clap::{Parser, Subcommand};
use serde_json::json;

/// bittide: a BitTorrent client with a deterministic sans-IO core.
#[derive(Parser, Debug)]
#[command(name = "bittide", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what a .torrent file contains.
    Info {
        /// The .torrent file.
        torrent: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a .torrent file from a file or folder.
    Create(CreateArgs),
    /// Download a torrent into a folder (the content goes to DIR/<name>).
    Download(DownloadArgs),
    /// Serve a torrent whose content is in DIR (DIR/<name>) until Ctrl-C.
    Seed {
        /// The .torrent file.
        torrent: PathBuf,
        /// The folder that holds the content.
        dir: PathBuf,
        /// Address to accept peers on.
        #[arg(long, default_value = "0.0.0.0:6881")]
        listen: std::net::SocketAddr,
        /// Peers to connect to directly (repeatable).
        #[arg(long = "peer", value_name = "ADDR")]
        peers: Vec<std::net::SocketAddr>,
        /// Print JSON events, one per line.
        #[arg(long)]
        json: bool,
        /// Verify the data even when resume data says it is complete.
        #[arg(long)]
        recheck: bool,
        /// Upload limit per second, e.g. 500K or 2M (bytes).
        #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "0")]
        upload_limit: u64,
        /// Most connections from one IP address (default 1).
        #[arg(long, value_name = "N")]
        max_peers_per_ip: Option<usize>,
        #[command(flatten)]
        dht: SessionDhtArgs,
    },
    /// Use the Mainline DHT: ping a node, find nodes, find or announce peers.
    Dht {
        #[command(flatten)]
        options: DhtOptions,
        #[command(subcommand)]
        command: DhtCommand,
    },
    /// Talk to trackers, or run one.
    Tracker {
        #[command(subcommand)]
        command: TrackerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TrackerCommand {
    /// Announce to a tracker and print what it says.
    Announce {
        /// Announce URL (http://, https:// or udp://).
        url: String,
        /// The torrent's info-hash (40 hex digits).
        info_hash: String,
        /// The event to send.
        #[arg(long, value_parser = ["started", "stopped", "completed", "none"], default_value = "started")]
        event: String,
        /// The port to announce.
        #[arg(long, default_value_t = 6881)]
        port: u16,
        /// Bytes left to download (0 announces a seed).
        #[arg(long, default_value_t = 1)]
        left: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Ask a tracker for seeders/leechers counts.
    Scrape {
        /// Announce or scrape URL (http://, https:// or udp://).
        url: String,
        /// Info-hashes (40 hex digits).
        #[arg(required = true)]
        info_hashes: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a tracker until Ctrl-C.
    Serve {
        /// HTTP address (serves /announce and /scrape).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// UDP address (BEP 15).
        #[arg(long, value_name = "ADDR")]
        udp: Option<std::net::SocketAddr>,
        /// Announce interval in seconds given to clients.
        #[arg(long, default_value_t = 1800)]
        interval: u64,
        /// Only track these info-hashes (repeatable).
        #[arg(long = "allow", value_name = "INFO_HASH")]
        allow: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct DhtOptions {
    /// A node to join through, host:port (repeatable); without any, the
    /// nodes of the state file, else the public routers.
    #[arg(long = "bootstrap", value_name = "ADDR", global = true)]
    bootstrap: Vec<String>,
    /// UDP port to use (0: any).
    #[arg(long, default_value_t = 0, global = true)]
    port: u16,
    /// Keep our node id and known nodes here between runs.
    #[arg(long, value_name = "PATH", global = true)]
    state_file: Option<PathBuf>,
    /// Accept loopback and private-network nodes (tests, LANs).
    #[arg(long, global = true)]
    dht_allow_local: bool,
    /// Keep nodes whose id does not match their IP (BEP 42) out of the
    /// routing table.
    #[arg(long, global = true)]
    enforce_node_ids: bool,
    /// Print one JSON object.
    #[arg(long, global = true)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum DhtCommand {
    /// Ping a node.
    Ping {
        /// Its address, host:port.
        addr: String,
    },
    /// Find the nodes closest to an id.
    FindNode {
        /// 40 hex digits.
        id: String,
    },
    /// Find peers for a torrent.
    GetPeers {
        /// The info-hash, 40 hex digits.
        info_hash: String,
    },
    /// Announce that we have a torrent on a port.
    Announce {
        /// The info-hash, 40 hex digits.
        info_hash: String,
        /// The port peers should connect to.
        #[arg(value_name = "PORT")]
        peer_port: u16,
    },
    /// Ask one node for a sample of the info-hashes it stores (BEP 51).
    Sample {
        /// Its address, host:port.
        addr: String,
        /// Where in the keyspace to ask for nodes (40 hex digits; default
        /// random).
        #[arg(long)]
        target: Option<String>,
    },
    /// Walk the DHT and print every info-hash found (BEP 51 samples, and
    /// the get_peers/announce_peer queries other nodes send us): one line
    /// each, `INFO_HASH NODE SOURCE` (a JSON object each with --json), and
    /// a stats line a minute on stderr.
    Crawl {
        /// How long to crawl: seconds, or with a unit (90s, 10m, 2h); 0
        /// runs until killed.
        #[arg(long = "for", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
        duration: Duration,
        /// Crawl queries per second (per node).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// DHT nodes to crawl with, each with its own id and port (--port,
        /// --port+1, …, or any), sharing the nodes they meet; an
        /// info-hash is printed once whichever node finds it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        nodes: u16,
    },
    /// Run a node: answer queries, keep the table fresh, save the state
    /// every five minutes. Prints a line once joined, then a stats line a
    /// minute.
    Serve {
        /// Stop after this many seconds (0: run until killed).
        #[arg(long, default_value_t = 0)]
        duration: u64,
    },
}

#[derive(clap::Args, Debug)]
struct DownloadArgs {
    /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:…`; quote
    /// it for the shell).
    #[arg(value_name = "TORRENT|MAGNET")]
    torrent: PathBuf,
    /// For a magnet link: write the .torrent here once the metadata has
    /// arrived, to reuse it later.
    #[arg(long, value_name = "PATH")]
    save_torrent: Option<PathBuf>,
    /// Folder to download into (the content goes to DIR/<name>).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Keep seeding after the download completes (until Ctrl-C).
    #[arg(long)]
    seed: bool,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    listen: std::net::SocketAddr,
    /// Peers to connect to directly (repeatable), besides the trackers'.
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<std::net::SocketAddr>,
    /// Give up (exit 6) when no peer has been of use for this many
    /// seconds: none connected yet, or none sending data any more (all
    /// gone, banned or idle).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Print JSON events, one per line, instead of progress.
    #[arg(long)]
    json: bool,
    /// Verify the data on disk even when resume data says it is complete.
    #[arg(long)]
    recheck: bool,
    /// Download pieces in order (for streaming while downloading).
    #[arg(long)]
    sequential: bool,
    /// Download only these files: indices as `bittide info` lists them,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "INDEX,...")]
    only: Option<Vec<usize>>,
    /// Most connected peers.
    #[arg(long, value_name = "N")]
    max_peers: Option<usize>,
    /// Most connections from one IP address (default 1).
    #[arg(long, value_name = "N")]
    max_peers_per_ip: Option<usize>,
    /// Upload limit per second, e.g. 500K or 2M (bytes).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "0")]
    upload_limit: u64,
    /// Download limit per second, e.g. 500K or 2M (bytes).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "0")]
    download_limit: u64,
    #[command(flatten)]
    dht: SessionDhtArgs,
}

/// The DHT options of `download` and `seed`.
#[derive(clap::Args, Debug)]
struct SessionDhtArgs {
    /// Find peers through trackers and --peer only, not the DHT.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to join through, host:port (repeatable); without any,
    /// the nodes of the DHT state file, else the public routers.
    #[arg(long = "dht-bootstrap", value_name = "ADDR")]
    dht_bootstrap: Vec<String>,
    /// Keep our DHT node id and known nodes here between runs [default:
    /// STATE_DIR/dht.dat].
    #[arg(long, value_name = "PATH")]
    dht_state: Option<PathBuf>,
    /// The state folder: resume data (`torrents/<info-hash>/resume`) and
    /// the DHT state [default: $XDG_STATE_HOME/bittide, else
    /// ~/.local/state/bittide].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Accept loopback and private-network DHT nodes (tests, LANs).
    #[arg(long)]
    dht_allow_local: bool,
}

impl SessionDhtArgs {
    /// The state folder, and the DHT's options.
    fn into_options(self) -> (Option<PathBuf>, Option<bittide_driver::client::SessionDht>) {
        let state = self.state_dir.or_else(default_state_dir);
        if self.no_dht {
            return (state, None);
        }
        let dht = bittide_driver::client::SessionDht {
            bootstrap: self.dht_bootstrap,
            state_file: self
                .dht_state
                .or_else(|| state.as_ref().map(|s| s.join("dht.dat"))),
            allow_local: self.dht_allow_local,
        };
        (state, Some(dht))
    }
}

/// The state folder when none is given (XDG base directories).
fn default_state_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => {
            PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".local/state")
        }
    };
    Some(base.join("bittide"))
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The file or folder to share.
    path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short, long, value_name = "OUT.torrent")]
    output: PathBuf,
    /// Tracker announce URL; repeat for more (each becomes its own tier).
    #[arg(short, long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Piece size in bytes, or with a K/M suffix (power of two, at least
    /// 16K); chosen from the content size when absent.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    piece_size: Option<u32>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(long)]
    private: bool,
    /// Web seed URL (BEP 19); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// A comment stored in the torrent.
    #[arg(long)]
    comment: Option<String>,
    /// Leave out the creation date, so the same content always gives
    /// the same .torrent bytes.
    #[arg(long)]
    no_date: bool,
}

/// A failure of a command: the message and the exit code.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl From<crate::session::SessionError> for Failure {
    fn from(e: crate::session::SessionError) -> Failure {
        Failure::new(e.code, e.message)
    }
}

impl From<DownloadArgs> for crate::session::DownloadArgs {
    fn from(a: DownloadArgs) -> crate::session::DownloadArgs {
        let (state_dir, dht) = a.dht.into_options();
        crate::session::DownloadArgs {
            torrent: a.torrent,
            save_torrent: a.save_torrent,
            output: a.output,
            seed: a.seed,
            listen: a.listen,
            peers: a.peers,
            timeout: a.timeout.map(Duration::from_secs),
            json: a.json,
            recheck: a.recheck,
            max_peers: a.max_peers,
            max_peers_per_ip: a.max_peers_per_ip,
            sequential: a.sequential,
            only: a.only,
            upload_rate: a.upload_limit,
            download_rate: a.download_limit,
            state_dir,
            dht,
        }
    }
}

/// Exit code for an I/O failure (unreadable input, unwritable output).
const EXIT_IO: u8 = 1;
/// Exit code for a bad torrent file (malformed, unsafe paths, unsupported).
const EXIT_BAD_TORRENT: u8 = 3;
/// Exit code for a request the content cannot satisfy (bad piece size,
/// empty content, unsafe names).
const EXIT_BAD_INPUT: u8 = 4;

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with success; usage errors are
            // clap's own message and exit code 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command {
        Command::Info { torrent, json } => info(&torrent, json),
        Command::Create(args) => create(args),
        Command::Tracker { command } => tracker(command),
        Command::Dht { options, command } => dht(options, command),
        Command::Download(args) => crate::session::download(args.into()).map_err(Failure::from),
        Command::Seed {
            torrent,
            dir,
            listen,
            peers,
            json,
            recheck,
            upload_limit,
            max_peers_per_ip,
            dht,
        } => {
            let (state_dir, dht) = dht.into_options();
            crate::session::seed(crate::session::SeedArgs {
                torrent,
                dir,
                listen,
                peers,
                json,
                recheck,
                upload_rate: upload_limit,
                max_peers_per_ip,
                state_dir,
                dht,
            })
            .map_err(Failure::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // One line, whatever the error text held.
            let line = f.message.replace(['\n', '\r'], " ");
            let _ = writeln!(io::stderr(), "bittide: error: {line}");
            ExitCode::from(f.code)
        }
    }
}

fn read_torrent(path: &Path) -> Result<Vec<u8>, Failure> {
    const MAX_TORRENT_FILE: u64 = bittide_core::bencode::MAX_SIZE as u64;
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::new(EXIT_IO, format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_TORRENT_FILE {
        return Err(Failure::new(
            EXIT_BAD_TORRENT,
            format!("{}: too large to be a torrent file", path.display()),
        ));
    }
    std::fs::read(path).map_err(|e| Failure::new(EXIT_IO, format!("{}: {e}", path.display())))
}

fn bad_torrent(path: &Path, e: MetainfoError) -> Failure {
    Failure::new(EXIT_BAD_TORRENT, format!("{}: {e}", path.display()))
}

/// Writes to stdout; a closed pipe (`bittide info x | head`) is not an error.
fn print(text: &str) -> Result<(), Failure> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::new(EXIT_IO, format!("stdout: {e}")))
        }
        _ => Ok(()),
    }
}

fn info(path: &Path, json: bool) -> Result<(), Failure> {
    let bytes = read_torrent(path)?;
    let m = Metainfo::from_bytes(&bytes).map_err(|e| bad_torrent(path, e))?;
    let info = &m.info;
    if json {
        let files: Vec<_> = info
            .files()
            .iter()
            .map(|f| {
                let path = if info.is_single_file() {
                    info.display_name()
                } else {
                    f.display_path()
                };
                json!({ "path": path, "length": f.length, "padding": f.attr.padding })
            })
            .collect();
        let out = json!({
            "name": info.display_name(),
            "info_hash": m.info_hash.to_string(),
            "total_length": info.total_length(),
            "piece_length": info.piece_length(),
            "piece_count": info.piece_count(),
            "private": info.is_private(),
            "hybrid": info.is_hybrid(),
            "single_file": info.is_single_file(),
            "files": files,
            "trackers": m.trackers(),
            "web_seeds": m.url_list,
            "comment": m.comment,
            "created_by": m.created_by,
            "creation_date": m.creation_date,
            "magnet": m.magnet().to_string(),
        });
        return print(&format!("{out}\n"));
    }
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("{k:<12} {v}\n"));
    line(&mut s, "name:", &info.display_name());
    line(&mut s, "info-hash:", &m.info_hash.to_string());
    line(
        &mut s,
        "size:",
        &format!(
            "{} ({} bytes)",
            human(info.total_length()),
            info.total_length()
        ),
    );
    line(
        &mut s,
        "pieces:",
        &format!(
            "{} × {}",
            info.piece_count(),
            human(u64::from(info.piece_length()))
        ),
    );
    line(
        &mut s,
        "private:",
        if info.is_private() { "yes" } else { "no" },
    );
    if info.is_hybrid() {
        line(&mut s, "format:", "hybrid v1+v2 (read as v1)");
    }
    if let Some(c) = m.comment {
        line(&mut s, "comment:", c);
    }
    if let Some(c) = m.created_by {
        line(&mut s, "created by:", c);
    }
    if !m.key_order.is_canonical() {
        line(
            &mut s,
            "warning:",
            "dictionary keys are unsorted or duplicated (accepted; the info-hash is unaffected)",
        );
    }
    let tiers = m.trackers();
    if !tiers.is_empty() {
        s.push_str("trackers:\n");
        for (i, tier) in tiers.iter().enumerate() {
            s.push_str(&format!("  tier {}: {}\n", i + 1, tier.join(" ")));
        }
    }
    for w in &m.url_list {
        line(&mut s, "web seed:", w);
    }
    let shown: Vec<_> = info
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.attr.padding)
        .collect();
    s.push_str(&format!("files ({}, index for --only):\n", shown.len()));
    for (index, f) in shown {
        let path = if info.is_single_file() {
            info.display_name()
        } else {
            f.display_path()
        };
        s.push_str(&format!("  [{index}] {:>10}  {path}\n", human(f.length)));
    }
    print(&s)
}

fn content_failure(e: ContentError) -> Failure {
    let code = match e {
        ContentError::NotUtf8(_) | ContentError::NoName(_) => EXIT_BAD_INPUT,
        _ => EXIT_IO,
    };
    Failure::new(code, e.to_string())
}

fn create(args: CreateArgs) -> Result<(), Failure> {
    let content = Content::scan(&args.path).map_err(content_failure)?;
    let mut builder = content.builder();
    if let Some(n) = args.piece_size {
        builder.set_piece_length(n);
    }
    for t in args.trackers {
        builder.add_tracker_tier(vec![t]);
    }
    for w in args.web_seeds {
        builder.add_web_seed(w);
    }
    builder.set_private(args.private);
    if let Some(c) = args.comment {
        builder.set_comment(c);
    }
    builder.set_created_by(format!("bittide {}", env!("CARGO_PKG_VERSION")));
    if !args.no_date {
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            builder.set_creation_date(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        }
    }
    let layout = builder
        .layout()
        .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("{}: {e}", args.path.display())))?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = AtomicU64::new(0);
    let total = layout.total_length();
    let done = std::sync::atomic::AtomicBool::new(false);
    let bar = (total >= 64 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let hashes = std::thread::scope(|s| {
        if let Some(bar) = bar.clone() {
            let (progress, done) = (&progress, &done);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(progress.load(Ordering::Relaxed));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let r = content.hash_pieces(&layout, threads, &progress);
        done.store(true, Ordering::Relaxed);
        r
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let hashes = hashes.map_err(content_failure)?;
    let bytes = builder
        .build(&hashes)
        .map_err(|e| Failure::new(EXIT_BAD_INPUT, e.to_string()))?;
    // Check what we wrote parses, so a bug here never ships a bad torrent.
    let m = Metainfo::from_bytes_strict(&bytes)
        .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("internal error: {e}")))?;
    write_atomically(&args.output, &bytes)
        .map_err(|e| Failure::new(EXIT_IO, format!("{}: {e}", args.output.display())))?;
    print(&format!(
        "{}\n  info-hash {}, {} files, {} in {} pieces of {}\n",
        args.output.display(),
        m.info_hash,
        m.info.files().len(),
        human(total),
        m.info.piece_count(),
        human(u64::from(m.info.piece_length())),
    ))
}

fn resolve_all(names: &[String]) -> Result<Vec<std::net::SocketAddr>, Failure> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for n in names {
        let addrs = n
            .to_socket_addrs()
            .map_err(|e| Failure::new(EXIT_IO, format!("{n}: {e}")))?;
        out.extend(addrs.filter(std::net::SocketAddr::is_ipv4));
    }
    Ok(out)
}

fn dht(options: DhtOptions, command: DhtCommand) -> Result<(), Failure> {
    use bittide_core::dht::DhtEvent;
    use bittide_core::krpc::NodeId;
    use bittide_driver::dht_client::DhtClient;
    let limit = Duration::from_secs(options.timeout.max(1));
    let bind = std::net::SocketAddr::from(([0, 0, 0, 0], options.port));
    // Long-lived nodes answer; one-shot ones would only leave dead entries
    // in others' tables.
    let read_only = !matches!(command, DhtCommand::Serve { .. } | DhtCommand::Crawl { .. });
    let config = bittide_core::dht::DhtConfig {
        table: bittide_core::dht::routing::TableConfig {
            allow_local: options.dht_allow_local,
            ..Default::default()
        },
        read_only,
        enforce_node_ids: options.enforce_node_ids,
        ..Default::default()
    };
    let mut client = DhtClient::open(bind, config.clone(), options.state_file.clone())
        .map_err(|e| Failure::new(EXIT_IO, format!("udp {bind}: {e}")))?;
    let io = |e: std::io::Error| Failure::new(EXIT_IO, e.to_string());
    let parse_id = |s: &str| parse_hash(s).map(|h| NodeId(h.0));
    let out = match command {
        DhtCommand::Ping { addr } => {
            let to = resolve_one(&addr)?;
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
                pong.ok_or_else(|| Failure::new(EXIT_NO_ANSWER, format!("{to}: no answer")))?;
            json!({"node": node.addr.to_string(), "id": node.id.to_string()})
        }
        DhtCommand::Sample { addr, target } => {
            let to = resolve_one(&addr)?;
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
                return Err(Failure::new(EXIT_NO_ANSWER, format!("{to}: no answer")));
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
        DhtCommand::Serve { duration } => return dht_serve(&mut client, &options, duration),
        DhtCommand::Crawl {
            duration,
            rate,
            nodes,
        } => {
            let mut clients = vec![client];
            for i in 1..nodes {
                let port = if options.port == 0 {
                    0
                } else {
                    options.port.saturating_add(i)
                };
                let bind = std::net::SocketAddr::from(([0, 0, 0, 0], port));
                let c = DhtClient::open(bind, config.clone(), None)
                    .map_err(|e| Failure::new(EXIT_IO, format!("udp {bind}: {e}")))?;
                clients.push(c);
            }
            return dht_crawl(clients, &options, duration, rate);
        }
        command => {
            let size = client
                .join(&dht_bootstrap_nodes(&options)?, limit)
                .map_err(io)?;
            if size == 0 {
                return Err(Failure::new(
                    EXIT_NO_ANSWER,
                    "could not join the DHT: no node answered",
                ));
            }
            let now = client.now();
            let lookup = match &command {
                DhtCommand::FindNode { id } => client.dht().find_node(now, parse_id(id)?),
                DhtCommand::GetPeers { info_hash } => {
                    client.dht().get_peers(now, parse_hash(info_hash)?)
                }
                DhtCommand::Announce {
                    info_hash,
                    peer_port,
                } => client
                    .dht()
                    .announce(now, parse_hash(info_hash)?, *peer_port, false),
                DhtCommand::Ping { .. }
                | DhtCommand::Sample { .. }
                | DhtCommand::Serve { .. }
                | DhtCommand::Crawl { .. } => {
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

/// The nodes to join through: `--bootstrap`, else (without a state file)
/// the public routers.
fn dht_bootstrap_nodes(options: &DhtOptions) -> Result<Vec<std::net::SocketAddr>, Failure> {
    let mut boot = resolve_all(&options.bootstrap)?;
    if boot.is_empty() && options.state_file.is_none() {
        let routers: Vec<String> = bittide_driver::dht_client::PUBLIC_ROUTERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        boot = resolve_all(&routers).unwrap_or_default();
    }
    Ok(boot)
}

fn resolve_one(addr: &str) -> Result<std::net::SocketAddr, Failure> {
    resolve_all(&[addr.to_owned()])?
        .first()
        .copied()
        .ok_or_else(|| Failure::new(2, format!("{addr}: no IPv4 address")))
}

/// `bittide dht serve`: join (alone if nobody answers: the first node of a
/// private network), then answer queries until `duration` ends.
fn dht_serve(
    client: &mut bittide_driver::dht_client::DhtClient,
    options: &DhtOptions,
    duration: u64,
) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::new(EXIT_IO, e.to_string());
    let boot = dht_bootstrap_nodes(options)?;
    let joined = client
        .join(&boot, Duration::from_secs(options.timeout.max(1)))
        .map_err(io)?;
    let addr = client.local_addr().map_err(io)?;
    let id = client.dht().id();
    let stats = |client: &mut bittide_driver::dht_client::DhtClient| {
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
    let end = (duration > 0).then(|| client.now() + Duration::from_secs(duration));
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
        if minutes % 5 == 0 {
            client.save().map_err(io)?;
        }
    }
    client.save().map_err(io)
}

/// `bittide dht crawl`: join, crawl for `duration`, print what it finds.
fn dht_crawl(
    clients: Vec<bittide_driver::dht_client::DhtClient>,
    options: &DhtOptions,
    duration: Duration,
    rate: u64,
) -> Result<(), Failure> {
    use bittide_driver::dht_client::NodeExchange;
    let boot = dht_bootstrap_nodes(options)?;
    let exchange = NodeExchange::new(clients.len());
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
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
                    .unwrap_or_else(|_| Err(Failure::new(EXIT_IO, "a crawl thread panicked")))
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
    mut client: bittide_driver::dht_client::DhtClient,
    options: &DhtOptions,
    boot: &[std::net::SocketAddr],
    exchange: &bittide_driver::dht_client::NodeExchange,
    seen: &std::sync::Mutex<std::collections::HashSet<bittide_core::InfoHash>>,
    duration: Duration,
    rate: u64,
) -> Result<(), Failure> {
    use bittide_core::dht::crawler::{CrawlConfig, HarvestSource};
    use bittide_core::dht::DhtEvent;
    let io = |e: std::io::Error| Failure::new(EXIT_IO, e.to_string());
    let joined = client
        .join(boot, Duration::from_secs(options.timeout.max(1)))
        .map_err(io)?;
    if joined == 0 {
        return Err(Failure::new(
            EXIT_NO_ANSWER,
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

/// Exit code when no DHT node answered.
const EXIT_NO_ANSWER: u8 = 6;

/// Exit code for a tracker that refused or could not be reached.
const EXIT_TRACKER: u8 = 5;

fn parse_hash(text: &str) -> Result<bittide_core::InfoHash, Failure> {
    units::parse_hash(text).map_err(|e| Failure::new(2, e))
}

fn our_peer_id() -> bittide_core::wire::PeerId {
    let mut id = *b"-BT0001-000000000000";
    let mut rng = bittide_core::Rng::new(bittide_driver::clock::os_seed());
    for b in &mut id[8..] {
        *b = b'0' + rng.below(10) as u8;
    }
    bittide_core::wire::PeerId(id)
}

fn tracker(command: TrackerCommand) -> Result<(), Failure> {
    use bittide_core::tracker::{AnnounceEvent, AnnounceRequest};
    use bittide_driver::tracker as client;
    match command {
        TrackerCommand::Announce {
            url,
            info_hash,
            event,
            port,
            left,
            timeout,
            json: as_json,
        } => {
            let mut req = AnnounceRequest::new(parse_hash(&info_hash)?, our_peer_id(), port);
            req.left = left;
            req.numwant = Some(50);
            req.event = match event.as_str() {
                "started" => AnnounceEvent::Started,
                "stopped" => AnnounceEvent::Stopped,
                "completed" => AnnounceEvent::Completed,
                _ => AnnounceEvent::None,
            };
            let r = client::announce(&url, &req, Duration::from_secs(timeout))
                .map_err(|e| Failure::new(EXIT_TRACKER, format!("{url}: {e}")))?;
            let peers: Vec<String> = r.peers.iter().map(ToString::to_string).collect();
            if as_json {
                let out = json!({
                    "interval": r.interval,
                    "min_interval": r.min_interval,
                    "seeders": r.complete,
                    "leechers": r.incomplete,
                    "peers": peers,
                    "warning": r.warning,
                    "external_ip": r.external_ip.map(|ip| ip.to_string()),
                });
                return print(&format!("{out}\n"));
            }
            let mut s = format!(
                "interval {} s, seeders {}, leechers {}, {} peers\n",
                r.interval,
                r.complete.map_or("?".into(), |n| n.to_string()),
                r.incomplete.map_or("?".into(), |n| n.to_string()),
                peers.len()
            );
            if let Some(w) = &r.warning {
                s.push_str(&format!("warning: {w}\n"));
            }
            for p in peers {
                s.push_str(&format!("  {p}\n"));
            }
            print(&s)
        }
        TrackerCommand::Scrape {
            url,
            info_hashes,
            timeout,
            json: as_json,
        } => {
            let hashes = info_hashes
                .iter()
                .map(|h| parse_hash(h))
                .collect::<Result<Vec<_>, _>>()?;
            let entries = client::scrape(&url, &hashes, Duration::from_secs(timeout))
                .map_err(|e| Failure::new(EXIT_TRACKER, format!("{url}: {e}")))?;
            if as_json {
                let files: serde_json::Map<String, serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        (
                            e.info_hash.to_string(),
                            json!({"seeders": e.complete, "completed": e.downloaded, "leechers": e.incomplete}),
                        )
                    })
                    .collect();
                return print(&format!("{}\n", json!({ "files": files })));
            }
            let mut s = String::new();
            for e in entries {
                s.push_str(&format!(
                    "{}  seeders {}  completed {}  leechers {}\n",
                    e.info_hash, e.complete, e.downloaded, e.incomplete
                ));
            }
            print(&s)
        }
        TrackerCommand::Serve {
            http,
            udp,
            interval,
            allow,
        } => {
            if http.is_none() && udp.is_none() {
                return Err(Failure::new(2, "give --http ADDR, --udp ADDR or both"));
            }
            let allow_list = if allow.is_empty() {
                None
            } else {
                Some(
                    allow
                        .iter()
                        .map(|h| parse_hash(h))
                        .collect::<Result<_, _>>()?,
                )
            };
            let config = bittide_core::tracker::server::ServerConfig {
                interval: Duration::from_secs(interval.max(1)),
                allow_list,
                ..Default::default()
            };
            serve_tracker(config, http, udp)
        }
    }
}

fn serve_tracker(
    config: bittide_core::tracker::server::ServerConfig,
    http: Option<std::net::SocketAddr>,
    udp: Option<std::net::SocketAddr>,
) -> Result<(), Failure> {
    use bittide_driver::runtime::Runtime;
    use bittide_driver::tracker_server::{expire, serve_http, serve_udp, Shared};
    use bittide_tokio::runtime::TokioRuntime;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EXIT_IO, format!("runtime: {e}")))?;
    runtime.block_on(async move {
        let rt = TokioRuntime::current();
        let shared = Shared::new(&rt, config);
        let mut lines = Vec::new();
        if let Some(addr) = http {
            let listener = rt
                .listen(addr)
                .await
                .map_err(|e| Failure::new(EXIT_IO, format!("http {addr}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| Failure::new(EXIT_IO, e.to_string()))?;
            lines.push(format!("http://{local}/announce"));
            rt.spawn(Box::pin(serve_http(rt.clone(), shared.clone(), listener)));
        }
        if let Some(addr) = udp {
            let socket = rt
                .bind_udp(addr)
                .await
                .map_err(|e| Failure::new(EXIT_IO, format!("udp {addr}: {e}")))?;
            let local = socket
                .local_addr()
                .map_err(|e| Failure::new(EXIT_IO, e.to_string()))?;
            lines.push(format!("udp://{local}"));
            rt.spawn(Box::pin(serve_udp(shared.clone(), socket)));
        }
        rt.spawn(Box::pin(expire(rt.clone(), shared)));
        print(&format!("serving {}\n", lines.join(" and ")))?;
        let _ = tokio::signal::ctrl_c().await;
        Ok(())
    })
}

/// Writes through a temporary file and a rename, so a crash or a full disk
/// never leaves a truncated .torrent behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
