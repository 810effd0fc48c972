//! The `bittide` command-line client: a thin binary over `bittide-driver`
//! on tokio (`bittide-tokio`), in the way cargo's binary sits over its
//! library.
//!
//! This file parses the command line, hands the subcommand to its module
//! in `commands` (one file each, with its clap arguments and an `exec`),
//! and turns a failure into one line on stderr and an exit code from
//! `exit`, where every code is defined.

mod allocator;
mod args;
mod commands;
mod exit;
mod fd_limit;
mod output;
mod progress;
mod remote;
mod session;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::pause::Verb;
use crate::commands::{
    add, completions, create, daemon, demo, dht, download, index, info, limits, list, man, pause,
    prio, remove, seed, show, stats, tracker,
};

/// bittide, a BitTorrent client: download and seed torrents, or run a
/// daemon that holds many.
// The doc comment above is the first lines of `bittide --help`. (Until the
// CLI had its own crate, a bare `about` showed the tokio crate's package
// description there instead.) The flag vocabulary every subcommand
// follows is in docs/cli.md.
#[derive(Parser, Debug)]
#[command(
    name = "bittide",
    version,
    max_term_width = 100,
    after_help = GETTING_STARTED
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const GETTING_STARTED: &str = "\
Getting started:
  bittide demo                          seed and download a small torrent on this machine
  bittide download FILE|MAGNET -o DIR   download a torrent into DIR (exit 0 when complete)
  bittide seed FILE.torrent -o DIR      share what is in DIR/<name> until Ctrl-C

Each command's --help has examples; docs/cli.md is the reference, docs/man/ the manual pages.";

/// The subcommands, in the order `bittide --help` lists them. Each
/// variant's doc comment is its one-line help.
#[derive(Subcommand, Debug)]
enum Command {
    /// Try bittide with nothing set up: make content, seed it and download
    /// it over loopback in this process, then verify it.
    Demo(demo::Args),
    /// Show what a .torrent file contains.
    Info(info::Args),
    /// Make a .torrent file from a file or folder.
    Create(create::Args),
    /// Download a torrent into a folder (-o DIR: the content goes to DIR/<name>).
    Download(download::Args),
    /// Share a torrent whose content is in DIR/<name> (-o DIR) until Ctrl-C.
    Seed(seed::Args),
    /// Use the Mainline DHT: ping a node, find nodes, find or announce peers.
    Dht(dht::Args),
    /// Search what `bittide dht crawl --index` found; show, count or export it.
    Index(index::Args),
    /// Talk to trackers, or run one.
    Tracker(tracker::Args),
    /// Run many torrents in one long-lived session, controlled over an
    /// HTTP API (the commands below use it).
    Daemon(daemon::Args),
    /// Add torrents to the daemon: .torrent files, magnet links, URLs.
    Add(add::Args),
    /// List the daemon's torrents.
    List(list::Args),
    /// Show one torrent of the daemon: state, files, peers, trackers.
    Show(show::Args),
    /// Pause torrents in the daemon.
    #[command(after_help = "Examples:\n  bittide pause c1c1c1\n  bittide pause --all")]
    Pause(pause::Args),
    /// Resume paused torrents in the daemon.
    #[command(after_help = "Examples:\n  bittide resume c1c1c1\n  bittide resume --all")]
    Resume(pause::Args),
    /// Remove torrents from the daemon (and their data with --delete-data).
    Remove(remove::Args),
    /// Set file priorities of a torrent in the daemon: skip, low, normal, high.
    Prio(prio::Args),
    /// Show or set rate limits, the daemon's or one torrent's.
    Limits(limits::Args),
    /// Show the daemon's totals: rates, torrents, connections, DHT.
    Stats(stats::Args),
    /// Print a shell's completion script: bash, zsh, fish, elvish or
    /// powershell.
    Completions(completions::Args),
    /// Print the manual page, or write every page into a folder.
    #[command(hide = true)]
    Man(man::Args),
}

fn main() -> ExitCode {
    // Before any socket or file is opened; a limit that cannot be raised
    // is the one the process had anyway.
    let _ = fd_limit::raise();
    allocator::tune();
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
        Command::Demo(args) => demo::exec(args),
        Command::Info(args) => info::exec(args),
        Command::Create(args) => create::exec(args),
        Command::Download(args) => download::exec(args),
        Command::Seed(args) => seed::exec(args),
        Command::Dht(args) => dht::exec(args),
        Command::Index(args) => index::exec(args),
        Command::Tracker(args) => tracker::exec(args),
        Command::Daemon(args) => daemon::exec(args),
        Command::Add(args) => add::exec(args),
        Command::List(args) => list::exec(args),
        Command::Show(args) => show::exec(args),
        Command::Pause(args) => pause::exec(args, Verb::Pause),
        Command::Resume(args) => pause::exec(args, Verb::Resume),
        Command::Remove(args) => remove::exec(args),
        Command::Prio(args) => prio::exec(args),
        Command::Limits(args) => limits::exec(args),
        Command::Stats(args) => stats::exec(args),
        Command::Completions(args) => completions::exec(args, Cli::command()),
        Command::Man(args) => man::exec(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "bittide: error: {f}");
            ExitCode::from(f.exit.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
