//! `bittide download`: one torrent (a .torrent file or a magnet link) into
//! a folder, then exit — or keep seeding with `--seed`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bittide_driver::client::SessionOptions;
use bittide_driver::units::{parse_duration, parse_rate};

use crate::args::{parse_listen, parse_peer, Encryption, LsdArgs, TransportArgs};
use crate::exit::Failure;
use crate::session::{self, SessionDhtArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:…`; quote
    /// it for the shell).
    #[arg(value_name = "TORRENT|MAGNET")]
    torrent: PathBuf,
    /// Folder to download into; the content goes to DIR/<name>.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// For a magnet link: write the .torrent here once the metadata has
    /// arrived, to reuse it later.
    #[arg(long, value_name = "PATH")]
    save_torrent: Option<PathBuf>,
    /// Keep seeding after the download completes (until Ctrl-C).
    #[arg(long)]
    seed: bool,
    /// Address to accept peers on, TCP and UDP (uTP, DHT): PORT, :PORT,
    /// HOST:PORT or [IPv6]:PORT; repeatable, one per address family (a
    /// later port 0 takes the first one's port). Every IPv4 interface
    /// (0.0.0.0, a bare port) means every IPv6 one too [default: port 6881
    /// if free, else any free port, on both families].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: Vec<SocketAddr>,
    /// A peer to connect to directly, HOST:PORT (repeatable), besides
    /// those from trackers and the DHT.
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer)]
    peers: Vec<SocketAddr>,
    /// Give up when no peer has been of use for this long (30s, 10m, 1h;
    /// a bare number is seconds): none connected yet, or none sending data
    /// any more. Exit 6, or 5 when every tracker failed [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Print JSON events, one object per line, instead of progress.
    #[arg(long)]
    json: bool,
    /// Verify the data on disk even when resume data says it is complete.
    #[arg(long)]
    recheck: bool,
    /// Download pieces in order (for streaming while downloading).
    #[arg(long)]
    sequential: bool,
    /// Download only these files: indices as `bittide info` lists them,
    /// comma-separated [default: every file].
    #[arg(long, value_delimiter = ',', value_name = "INDEX,...")]
    only: Option<Vec<usize>>,
    /// Most connected peers [default: 50].
    #[arg(long, value_name = "N")]
    max_peers: Option<usize>,
    /// Most connections from one IP address [default: 1].
    #[arg(long, value_name = "N")]
    max_peers_per_ip: Option<usize>,
    /// Upload limit in bytes per second: 500K, 2M; 0 or none: unlimited
    /// [default: unlimited].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    upload_limit: Option<u64>,
    /// Download limit in bytes per second: 500K, 2M; 0 or none: unlimited
    /// [default: unlimited].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    download_limit: Option<u64>,
    /// Message stream encryption (MSE/PE) of peer connections.
    #[arg(long, value_name = "MODE", value_enum, default_value_t)]
    encryption: Encryption,
    #[command(flatten)]
    transports: TransportArgs,
    #[command(flatten)]
    lsd: LsdArgs,
    /// Nothing from the torrent's web seeds (BEP 19: the HTTP servers in
    /// its `url-list`, or a magnet's `ws=`) [default: used].
    #[arg(long)]
    no_web_seeds: bool,
    #[command(flatten)]
    dht: SessionDhtArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide download ubuntu.iso.torrent -o ~/Downloads
  bittide download 'magnet:?xt=urn:btih:…' -o . --save-torrent t.torrent
  bittide download t.torrent --peer localhost:51001 --no-dht --timeout 30s
  bittide download t.torrent --only 0,2 --upload-limit 500K --seed
  bittide download t.torrent --json | jq .";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let mode = session::Mode::Download {
        keep_seeding: args.seed,
    };
    let torrent = session::torrent_source(&args.torrent)?;
    let (state_dir, dht) = args.dht.into_options();
    let options = SessionOptions {
        torrent,
        save_torrent: args.save_torrent,
        folder: args.output,
        keep_seeding: args.seed,
        listen: args.listen.first().copied(),
        also_listen: args.listen.iter().skip(1).copied().collect(),
        peers: args.peers,
        peer_timeout: args.timeout,
        recheck: args.recheck,
        state_dir,
        max_peers: args.max_peers,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: args.sequential,
        only: args.only,
        upload_rate: args.upload_limit.unwrap_or(0),
        download_rate: args.download_limit.unwrap_or(0),
        dht,
        seed_only: false,
        encryption: args.encryption.into(),
        transports: args.transports.transports()?,
        lsd: args.lsd.enabled(),
        web_seeds: !args.no_web_seeds,
    };
    session::run(options, args.json, mode)
}
