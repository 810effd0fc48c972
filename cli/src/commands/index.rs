//! `bittide index`: what `bittide dht crawl --index` found — search it,
//! show one torrent's files, count it, export it for other tools.

use std::io::Write;
use std::path::PathBuf;

use bittide_driver::units::human;
use bittide_index::{hit_json, listing_json, stats_json, Hit, IndexError, Location};
use clap::Subcommand;
use serde_json::Value;

use crate::args::parse_hash;
use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The index: a SQLite file (PATH or sqlite:PATH) or postgres://…
    /// [default: STATE_DIR/index.db].
    #[arg(long, value_name = "LOCATION", global = true)]
    index: Option<String>,
    /// The state folder whose index.db is the default [default:
    /// $XDG_STATE_HOME/bittide, else ~/.local/state/bittide].
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Print JSON instead of text: one line (`search`: an array of
    /// results; `show`, `stats`: an object).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  bittide index search ubuntu iso
  bittide index search 'big buck bunny' --json --limit 5
  bittide index show 0123456789abcdef0123456789abcdef01234567
  bittide index stats --index crawl.db
  bittide index export --jsonl > torrents.jsonl";

#[derive(Subcommand, Debug)]
enum Command {
    /// Find torrents whose name has every word of QUERY: best match
    /// first, then most seeders.
    #[command(
        after_help = "Examples:\n  bittide index search ubuntu 24.04\n  bittide index search big buck bunny --json --limit 5"
    )]
    Search {
        /// Words to look for (letters and digits; case and accents do not
        /// matter).
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Results at most.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Show one torrent: hashes, size, swarm, magnet link and files.
    #[command(
        after_help = "Example:\n  bittide index show 0123456789abcdef0123456789abcdef01234567 --json"
    )]
    Show {
        /// Its info-hash, 40 hex digits.
        info_hash: String,
    },
    /// Count what the index holds.
    #[command(
        after_help = "Examples:\n  bittide index stats\n  bittide index stats --index postgres://crawler@db/index --json"
    )]
    Stats,
    /// Write every torrent with its files, one JSON object per line.
    #[command(
        after_help = "Example:\n  bittide index export --jsonl --index crawl.db > torrents.jsonl"
    )]
    Export {
        /// JSON lines (the only format).
        #[arg(long, required = true)]
        jsonl: bool,
    },
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let location = location(args.index.as_deref(), args.state_dir.clone())?;
    if let Location::Sqlite(path) = &location {
        // Reading must not create an empty index where none was.
        if !path.exists() {
            return Err(Failure::new(
                Exit::Io,
                format!(
                    "no index at {} (make one with `bittide dht crawl --index`)",
                    path.display()
                ),
            ));
        }
    }
    let failed = |e: IndexError| Failure::new(Exit::Io, format!("index {location}: {e}"));
    let mut index = location.open().map_err(failed)?;
    match args.command {
        Command::Search { query, limit } => {
            let hits = index
                .search(&query.join(" "), limit.clamp(1, 10_000))
                .map_err(|e| match e {
                    IndexError::Query(q) => Failure::new(Exit::Usage, q.to_string()),
                    e => failed(e),
                })?;
            if args.json {
                let all: Vec<Value> = hits.iter().map(hit_json).collect();
                return print(&format!("{}\n", Value::Array(all)));
            }
            let mut out = String::new();
            for h in &hits {
                out.push_str(&format!(
                    "{}  {:>9}  {:>5} files  {}  {}\n",
                    h.info_hash,
                    human(h.size),
                    h.files,
                    swarm(h),
                    h.name
                ));
            }
            if hits.is_empty() {
                eprintln!("nothing found");
            }
            print(&out)
        }
        Command::Show { info_hash } => {
            let hash = parse_hash(&info_hash)?;
            let Some((hit, files)) = index.get(&hash).map_err(failed)? else {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("{hash} is not in the index"),
                ));
            };
            if args.json {
                let v = listing_json(&hit, &files);
                return print(&format!("{v}\n"));
            }
            let mut out = format!(
                "Name:       {}\nInfo-hash:  {}\nSize:       {} in {} files\nSwarm:      {}\nMagnet:     {}\n",
                hit.name,
                hit.info_hash,
                human(hit.size),
                hit.files,
                swarm(&hit),
                hit.magnet()
            );
            if hit.files > files.len() as u64 {
                out.push_str(&format!("Files (the first {}):\n", files.len()));
            } else {
                out.push_str("Files:\n");
            }
            for f in &files {
                out.push_str(&format!("  {:>9}  {}\n", human(f.size), f.path));
            }
            print(&out)
        }
        Command::Stats => {
            let s = index.stats().map_err(failed)?;
            if args.json {
                return print(&format!("{}\n", stats_json(&s)));
            }
            print(&format!(
                "Torrents:  {}\nFiles:     {}\nSize:      {}\nCrawlers:  {}\nWith a swarm estimate: {}\n",
                s.torrents,
                s.files,
                human(s.bytes),
                s.crawlers,
                s.with_swarm
            ))
        }
        Command::Export { .. } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = index.export(&mut |hit, files| {
                let v = listing_json(hit, files);
                writeln!(out, "{v}")
            });
            let flushed = out.flush();
            match (n, flushed) {
                (Ok(_), Ok(())) => Ok(()),
                (Err(IndexError::Store(e)), _) if e.contains("Broken pipe") => Ok(()),
                (Err(e), _) => Err(failed(e)),
                (_, Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                (_, Err(e)) => Err(Failure::new(Exit::Io, format!("stdout: {e}"))),
            }
        }
    }
}

/// `--index LOCATION`, or (none, or an empty one) `index.db` in the state
/// folder: `--state-dir`, else the default one (`dht crawl --index` too).
pub(crate) fn location(arg: Option<&str>, state_dir: Option<PathBuf>) -> Result<Location, Failure> {
    if let Some(s) = arg.filter(|s| !s.is_empty()) {
        return Ok(Location::parse(s));
    }
    let dir = state_dir.or_else(crate::session::default_state_dir);
    let dir = dir.ok_or_else(|| {
        Failure::new(
            Exit::Usage,
            "no state folder: give --index PATH or --state-dir",
        )
    })?;
    Ok(Location::default_in(&dir))
}

fn swarm(h: &Hit) -> String {
    match (h.seeders, h.leechers) {
        (Some(s), Some(l)) => format!("{s} seeders, {l} leechers"),
        _ => "swarm unknown".into(),
    }
}
