//! `bittide seed`: serve a torrent whose content is already on disk until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use bittide_driver::client::{SessionOptions, TorrentSource};
use bittide_driver::units::parse_rate;

use crate::args::{parse_listen, parse_peer, Encryption, LsdArgs, TransportArgs};
use crate::exit::Failure;
use crate::session::{self, SessionDhtArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder the content is in, as `download -o DIR` left it: the
    /// content is DIR/<name>.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// The content folder as a second argument (the older form of -o).
    #[arg(value_name = "DIR", hide = true, conflicts_with = "output")]
    dir: Option<PathBuf>,
    /// Address to accept peers on, TCP and UDP (uTP, DHT): PORT, :PORT,
    /// HOST:PORT or [IPv6]:PORT; repeatable, one per address family (a
    /// later port 0 takes the first one's port). Every IPv4 interface
    /// (0.0.0.0, a bare port) means every IPv6 one too [default: port 6881
    /// if free, else any free port, on both families].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: Vec<SocketAddr>,
    /// A peer to connect to directly, HOST:PORT (repeatable).
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer)]
    peers: Vec<SocketAddr>,
    /// Print JSON events, one object per line, instead of progress.
    #[arg(long)]
    json: bool,
    /// Verify the data even when resume data says it is complete.
    #[arg(long)]
    recheck: bool,
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
    /// Message stream encryption (MSE/PE) of peer connections.
    #[arg(long, value_name = "MODE", value_enum, default_value_t)]
    encryption: Encryption,
    #[command(flatten)]
    transports: TransportArgs,
    #[command(flatten)]
    lsd: LsdArgs,
    #[command(flatten)]
    dht: SessionDhtArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide seed movie.torrent -o ~/Videos     (the content is ~/Videos/<name>)
  bittide seed t.torrent -o . --listen 51001 --upload-limit 1M
  bittide seed t.torrent --no-dht --json";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let torrent = TorrentSource::File(session::read_torrent(&args.torrent)?);
    let (state_dir, dht) = args.dht.into_options();
    let options = SessionOptions {
        torrent,
        save_torrent: None,
        folder: args.dir.unwrap_or(args.output),
        keep_seeding: true,
        listen: args.listen.first().copied(),
        also_listen: args.listen.iter().skip(1).copied().collect(),
        peers: args.peers,
        peer_timeout: None,
        recheck: args.recheck,
        state_dir,
        max_peers: args.max_peers,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: false,
        only: None,
        upload_rate: args.upload_limit.unwrap_or(0),
        download_rate: 0,
        dht,
        seed_only: true,
        encryption: args.encryption.into(),
        transports: args.transports.transports()?,
        lsd: args.lsd.enabled(),
        // Nothing to download.
        web_seeds: false,
    };
    session::run(options, args.json, session::Mode::Seed)
}
