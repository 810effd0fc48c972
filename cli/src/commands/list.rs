//! `bittide list`: the daemon's torrents, as a table or (`--json`) as the
//! API's array.

use bittide_driver::units::human;

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{self, eta, percent, rate, truncate, RemoteArgs, Table, TorrentJson};

/// Widest name shown in the table.
const NAME_WIDTH: usize = 40;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Print the API's JSON array (one line, every field, for scripts)
    /// instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide list
  bittide list --json | jq '.[] | select(.state == \"seeding\") | .name'
  BITTIDE_API=http://nas.local:9850 bittide list";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let body = client.get("torrents")?;
    if args.json {
        return remote::print_raw(&body);
    }
    let list: Vec<TorrentJson> = client.parse(&body)?;
    print(&render(&list))
}

/// The table: the hash's first 8 digits (enough for the other commands,
/// which take a prefix), name, size, progress, state, rates, ETA, peers.
fn render(list: &[TorrentJson]) -> String {
    let mut t = Table::new(&[
        ("HASH", false),
        ("NAME", false),
        ("SIZE", true),
        ("DONE", true),
        ("STATE", false),
        ("DOWN", true),
        ("UP", true),
        ("ETA", true),
        ("PEERS", true),
    ]);
    for x in list {
        let state = match &x.error {
            Some(_) => format!("{}!", x.state),
            None => x.state.clone(),
        };
        t.row(vec![
            x.info_hash.chars().take(8).collect(),
            truncate(&x.name, NAME_WIDTH),
            human(x.size),
            percent(x.progress),
            state,
            rate(x.download_rate),
            rate(x.upload_rate),
            eta(x.eta),
            x.peers.to_string(),
        ]);
    }
    let mut out = t.render();
    if list.is_empty() {
        out.push_str("(no torrents: add one with `bittide add FILE|MAGNET|URL`)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_torrent() {
        let json = r#"[{"info_hash":"a6b0d3667b965dd203133b379d8b77c9b7ed3647","name":"debian.iso",
            "state":"downloading","progress":0.5,"size":40960,"wanted":40960,"downloaded":20480,
            "uploaded":0,"download_rate":2048,"upload_rate":0,"peers":3,"eta":10,
            "save_path":"/srv","error":null,"category":null,"tags":[]}]"#;
        let list: Vec<TorrentJson> = serde_json::from_str(json).unwrap();
        let text = render(&list);
        let row = text.lines().nth(1).unwrap();
        for cell in [
            "a6b0d366",
            "debian.iso",
            "40.0 KiB",
            "50.0%",
            "downloading",
            "2.0 KiB/s",
            "10s",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
    }
}
