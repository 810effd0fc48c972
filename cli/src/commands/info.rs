//! `bittide info`: what a .torrent file holds, as text or one JSON object.

use std::path::{Path, PathBuf};

use bittide_core::metainfo::{Metainfo, MetainfoError};
use bittide_driver::units::human;
use serde_json::json;

use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help, which is
// the `Command::Info` variant's.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The .torrent file.
    torrent: PathBuf,
    /// Print one JSON object (one line) instead of text.
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "\
Examples:
  bittide info ubuntu.iso.torrent
  bittide info t.torrent --json | jq .files";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let path = args.torrent.as_path();
    let bytes = read_torrent(path)?;
    let m = Metainfo::from_bytes(&bytes).map_err(|e| bad_torrent(path, e))?;
    let info = &m.info;
    if args.json {
        let files: Vec<_> = info
            .files()
            .iter()
            .map(|f| {
                let path = if info.is_single_file() {
                    info.display_name()
                } else {
                    f.display_path()
                };
                json!({ "path": path, "length": f.length, "padding": f.attr.padding })
            })
            .collect();
        let out = json!({
            "name": info.display_name(),
            "info_hash": m.info_hash.to_string(),
            "info_hash_v2": m.info_hash_v2.map(|h| hex(&h)),
            "total_length": info.total_length(),
            "piece_length": info.piece_length(),
            "piece_count": info.piece_count(),
            "private": info.is_private(),
            "hybrid": info.is_hybrid(),
            "v2_only": info.is_v2_only(),
            "single_file": info.is_single_file(),
            "files": files,
            "trackers": m.trackers(),
            "web_seeds": m.url_list,
            "comment": m.comment,
            "created_by": m.created_by,
            "creation_date": m.creation_date,
            "magnet": m.magnet().to_string(),
        });
        return print(&format!("{out}\n"));
    }
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("{k:<12} {v}\n"));
    line(&mut s, "name:", &info.display_name());
    line(&mut s, "info-hash:", &m.info_hash.to_string());
    if let Some(h) = m.info_hash_v2 {
        line(&mut s, "v2 hash:", &hex(&h));
    }
    line(
        &mut s,
        "size:",
        &format!(
            "{} ({} bytes)",
            human(info.total_length()),
            info.total_length()
        ),
    );
    line(
        &mut s,
        "pieces:",
        &format!(
            "{} × {}",
            info.piece_count(),
            human(u64::from(info.piece_length()))
        ),
    );
    line(
        &mut s,
        "private:",
        if info.is_private() { "yes" } else { "no" },
    );
    if info.is_hybrid() {
        line(&mut s, "format:", "hybrid v1+v2 (downloaded as v1)");
    } else if info.is_v2_only() {
        line(&mut s, "format:", "v2 (BEP 52)");
    }
    if let Some(c) = m.comment {
        line(&mut s, "comment:", c);
    }
    if let Some(c) = m.created_by {
        line(&mut s, "created by:", c);
    }
    if !m.key_order.is_canonical() {
        line(
            &mut s,
            "warning:",
            "dictionary keys are unsorted or duplicated (accepted; the info-hash is unaffected)",
        );
    }
    let tiers = m.trackers();
    if !tiers.is_empty() {
        s.push_str("trackers:\n");
        for (i, tier) in tiers.iter().enumerate() {
            s.push_str(&format!("  tier {}: {}\n", i + 1, tier.join(" ")));
        }
    }
    for w in &m.url_list {
        line(&mut s, "web seed:", w);
    }
    let shown: Vec<_> = info
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.attr.padding)
        .collect();
    s.push_str(&format!("files ({}, index for --only):\n", shown.len()));
    for (index, f) in shown {
        let path = if info.is_single_file() {
            info.display_name()
        } else {
            f.display_path()
        };
        s.push_str(&format!("  [{index}] {:>10}  {path}\n", human(f.length)));
    }
    print(&s)
}

/// Reads a .torrent file, refusing one too large to be a torrent before
/// reading it into memory.
fn read_torrent(path: &Path) -> Result<Vec<u8>, Failure> {
    const MAX_TORRENT_FILE: u64 = bittide_core::bencode::MAX_SIZE as u64;
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_TORRENT_FILE {
        return Err(Failure::new(
            Exit::BadTorrent,
            format!("{}: too large to be a torrent file", path.display()),
        ));
    }
    std::fs::read(path).map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))
}

fn bad_torrent(path: &Path, e: MetainfoError) -> Failure {
    Failure::new(Exit::BadTorrent, format!("{}: {e}", path.display()))
}

/// Lowercase hex of a v2 info-hash (64 digits, as libtorrent prints it).
fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
