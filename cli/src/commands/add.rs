//! `bittide add`: hands torrents to the daemon — a local .torrent file is
//! uploaded as it is, a magnet link or an http(s) URL of a .torrent goes
//! as JSON (the daemon fetches the URL itself).

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use crate::exit::{Exit, Failure};
use crate::output::print;
use crate::remote::{Body, Client, RemoteArgs};
use crate::session::read_torrent;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// .torrent files, magnet links (quote them for the shell) or http(s)
    /// URLs of .torrent files.
    #[arg(required = true, value_name = "FILE|MAGNET|URL")]
    sources: Vec<String>,
    /// Folder for the content [default: the daemon's download folder]; a
    /// relative path is taken from here.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Add them paused.
    #[arg(long)]
    paused: bool,
    /// Download only these files: indices as `bittide info` lists them,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "INDEX,...")]
    only: Option<Vec<usize>>,
    /// Their category.
    #[arg(long, value_name = "NAME")]
    category: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Download pieces in order (to play while downloading).
    #[arg(long)]
    sequential: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide add ubuntu.iso.torrent
  bittide add 'magnet:?xt=urn:btih:…' -o ~/Videos --sequential
  bittide add https://example.org/t.torrent --paused --category linux --tag iso";

/// The answer to an add.
#[derive(Deserialize)]
struct Added {
    info_hash: String,
}

/// Prints `<info-hash>  <source>` for each torrent added. Every source is
/// tried; the first failure decides the exit code.
pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    if args.tags.iter().any(|t| t.contains(',')) {
        return Err(Failure::new(Exit::Usage, "a --tag may not contain ','"));
    }
    let save_path = match &args.output {
        Some(dir) => Some(
            std::path::absolute(dir)
                .map_err(|e| Failure::new(Exit::Usage, format!("{}: {e}", dir.display())))?,
        ),
        None => None,
    };
    let client = args.remote.client()?;
    let mut failures: Vec<Failure> = Vec::new();
    for source in &args.sources {
        match add_one(&client, &args, save_path.as_ref(), source) {
            Ok(hash) => print(&format!("{hash}  {source}\n"))?,
            // Nothing more to try: one source, or no daemon at all.
            Err(f) if args.sources.len() == 1 || f.exit == Exit::NoAnswer => return Err(f),
            Err(f) => {
                // A file's errors name it already; the API's do not.
                if f.message.contains(source.as_str()) {
                    eprintln!("bittide: error: {f}");
                } else {
                    eprintln!("bittide: error: {source}: {f}");
                }
                failures.push(f);
            }
        }
    }
    match failures.first() {
        Some(f) => Err(Failure::new(
            f.exit,
            format!(
                "{} of {} torrents not added",
                failures.len(),
                args.sources.len()
            ),
        )),
        None => Ok(()),
    }
}

fn add_one(
    client: &Client,
    args: &Args,
    save_path: Option<&PathBuf>,
    source: &str,
) -> Result<String, Failure> {
    let lower = source.to_ascii_lowercase();
    let remote = if lower.starts_with("magnet:") {
        Some("magnet")
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        Some("url")
    } else {
        None
    };
    let body = match remote {
        Some(kind) => {
            let mut v = json!({
                kind: source,
                "paused": args.paused,
                "tags": args.tags,
                "sequential": args.sequential,
            });
            if let Some(p) = save_path {
                v["save_path"] = json!(p);
            }
            if let Some(only) = &args.only {
                v["only"] = json!(only);
            }
            if let Some(c) = &args.category {
                v["category"] = json!(c);
            }
            client.send("POST", "torrents", &[], Body::Json(v))?
        }
        None => {
            let bytes = read_torrent(std::path::Path::new(source))?;
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(p) = save_path {
                query.push(("save_path", p.to_string_lossy().into_owned()));
            }
            if args.paused {
                query.push(("paused", "true".into()));
            }
            if let Some(only) = &args.only {
                let list: Vec<String> = only.iter().map(usize::to_string).collect();
                query.push(("only", list.join(",")));
            }
            if let Some(c) = &args.category {
                query.push(("category", c.clone()));
            }
            if !args.tags.is_empty() {
                query.push(("tags", args.tags.join(",")));
            }
            if args.sequential {
                query.push(("sequential", "true".into()));
            }
            client.send("POST", "torrents", &query, Body::Torrent(&bytes))?
        }
    };
    let added: Added = client.parse(&body)?;
    Ok(added.info_hash)
}
