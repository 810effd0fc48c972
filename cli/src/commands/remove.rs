//! `bittide remove`: takes torrents out of the daemon, keeping their
//! files unless `--delete-data`.

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{Body, RemoteArgs, TorrentJson};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Info-hashes, or their first 6 or more hex digits.
    #[arg(value_name = "HASH", required_unless_present = "all")]
    hashes: Vec<String>,
    /// Every torrent in the daemon.
    #[arg(long, conflicts_with = "hashes")]
    all: bool,
    /// Delete their downloaded files too.
    #[arg(long)]
    delete_data: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide remove c1c1c1
  bittide remove --all --delete-data";

/// Prints `removed <hash>` for each; stops at the first failure.
pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let hashes = if args.all {
        let list: Vec<TorrentJson> = client.get_json("torrents")?;
        list.into_iter().map(|t| t.info_hash).collect()
    } else {
        client.resolve(&args.hashes)?
    };
    let query = [("delete_data", args.delete_data.to_string())];
    for h in hashes {
        client.send("DELETE", &format!("torrents/{h}"), &query, Body::Empty)?;
        print(&format!("removed {h}\n"))?;
    }
    Ok(())
}
