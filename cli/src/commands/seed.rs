//! `bittide seed`: serve a torrent whose content is already on disk until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use bittide_driver::client::{SessionOptions, TorrentSource};
use bittide_driver::units::parse_rate;

use crate::exit::Failure;
use crate::session::{self, SessionDhtArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder that holds the content.
    dir: PathBuf,
    /// Address to accept peers on [default: 0.0.0.0:6881 if free, else
    /// any free port].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Peers to connect to directly (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
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
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let torrent = TorrentSource::File(session::read_torrent(&args.torrent)?);
    let (state_dir, dht) = args.dht.into_options();
    let options = SessionOptions {
        torrent,
        save_torrent: None,
        folder: args.dir,
        keep_seeding: true,
        listen: args.listen,
        peers: args.peers,
        peer_timeout: None,
        recheck: args.recheck,
        state_dir,
        max_peers: None,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: false,
        only: None,
        upload_rate: args.upload_limit,
        download_rate: 0,
        dht,
        seed_only: true,
    };
    session::run(options, args.json, session::Mode::Seed)
}
