//! `bittide pause` and `bittide resume`: one file, since they differ only
//! in the verb (`POST /api/v1/torrents/pause` or `…/resume`, for some
//! torrents or all).

use serde::Deserialize;
use serde_json::json;

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{Body, RemoteArgs};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Info-hashes, or their first 6 or more hex digits.
    #[arg(value_name = "HASH", required_unless_present = "all")]
    hashes: Vec<String>,
    /// Every torrent in the daemon.
    #[arg(long, conflicts_with = "hashes")]
    all: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

/// Which of the two.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Verb {
    Pause,
    Resume,
}

/// The bulk answer: the torrents done.
#[derive(Deserialize)]
struct Done {
    info_hashes: Vec<String>,
}

/// Prints `paused <hash>` (or `resumed`) for each torrent done.
pub(crate) fn exec(args: Args, verb: Verb) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let body = if args.all {
        json!({ "all": true })
    } else {
        json!({ "hashes": client.resolve(&args.hashes)? })
    };
    let (path, done) = match verb {
        Verb::Pause => ("torrents/pause", "paused"),
        Verb::Resume => ("torrents/resume", "resumed"),
    };
    let answer = client.send("POST", path, &[], Body::Json(body))?;
    let answer: Done = client.parse(&answer)?;
    let text: String = answer
        .info_hashes
        .iter()
        .map(|h| format!("{done} {h}\n"))
        .collect();
    print(&text)
}
