//! `bittide download`: one torrent (a .torrent file or a magnet link) into
//! a folder, then exit — or keep seeding with `--seed`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bittide_driver::client::SessionOptions;
use bittide_driver::units::parse_rate;

use crate::exit::Failure;
use crate::session::{self, SessionDhtArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
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
    /// Address to accept peers on [default: 0.0.0.0:6881 if free, else
    /// any free port].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Peers to connect to directly (repeatable), besides the trackers'.
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
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
        listen: args.listen,
        peers: args.peers,
        peer_timeout: args.timeout.map(Duration::from_secs),
        recheck: args.recheck,
        state_dir,
        max_peers: args.max_peers,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: args.sequential,
        only: args.only,
        upload_rate: args.upload_limit,
        download_rate: args.download_limit,
        dht,
        seed_only: false,
    };
    session::run(options, args.json, mode)
}
