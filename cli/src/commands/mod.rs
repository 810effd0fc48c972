//! One module per subcommand, each with its clap `Args` and an
//! `exec(args) -> Result<(), Failure>` (cargo's `src/bin/cargo/commands`
//! layout). A subcommand's module only turns arguments into calls on the
//! library and results into output; protocol logic lives below, in
//! `bittide-driver` and `bittide-core`.
//!
//! Adding a subcommand: a file here with `Args` (ending its help with
//! an `Examples:` block, `#[command(after_help = …)]`, and stating every
//! default) and `exec`, a variant in `Command` (main.rs) whose doc comment
//! is its one-line help, an arm in `main`'s dispatch, and the man pages
//! regenerated (`bittide man --dir docs/man`). Flag names, durations,
//! rates and addresses follow `docs/cli.md`. Options shared by several commands are one
//! `#[derive(clap::Args)]` struct flattened into each (as
//! `session::SessionDhtArgs` is into `download` and `seed`).
//!
//! `daemon` runs the long-lived session with its HTTP API; the remote
//! commands talk to it — `add`, `list`, `show`, `pause` and `resume` (one
//! file: they differ only in the verb), `remove`, `prio`, `limits`,
//! `stats` — through the `--api URL` client in `remote`, beside
//! `session`.

pub(crate) mod add;
pub(crate) mod completions;
pub(crate) mod create;
pub(crate) mod daemon;
pub(crate) mod demo;
pub(crate) mod dht;
pub(crate) mod download;
pub(crate) mod index;
pub(crate) mod info;
pub(crate) mod limits;
pub(crate) mod list;
pub(crate) mod man;
pub(crate) mod pause;
pub(crate) mod prio;
pub(crate) mod remove;
pub(crate) mod seed;
pub(crate) mod show;
pub(crate) mod stats;
pub(crate) mod tracker;
