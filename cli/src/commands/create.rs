//! `bittide create`: a .torrent from a file or folder, hashed on every
//! core, written atomically.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bittide_core::metainfo::{Metainfo, TorrentFormat};
use bittide_driver::content::{Content, ContentError};
use bittide_driver::units::{human, parse_size};

use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The file or folder to share.
    path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short, long, value_name = "OUT.torrent")]
    output: PathBuf,
    /// Tracker announce URL; repeat for more (each becomes its own tier).
    #[arg(short, long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Piece size in bytes, or with a K/M suffix (power of two, at least
    /// 16K) [default: chosen from the content size].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    piece_size: Option<u32>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(long)]
    private: bool,
    /// Web seed URL (BEP 19); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// A comment stored in the torrent.
    #[arg(long)]
    comment: Option<String>,
    /// Leave out the creation date, so the same content always gives
    /// the same .torrent bytes.
    #[arg(long)]
    no_date: bool,
    /// A hybrid torrent (BEP 52 and BEP 3 in one, as libtorrent 2 and
    /// qBittorrent make by default): every client can read it; files
    /// start on piece boundaries (padding files) and it carries SHA-256
    /// piece layers too.
    #[arg(long, conflicts_with = "v2")]
    hybrid: bool,
    /// A v2-only torrent (BEP 52): SHA-256 merkle trees, files on piece
    /// boundaries; v1-only clients cannot read it.
    #[arg(long)]
    v2: bool,
}

const EXAMPLES: &str = "\
Examples:
  bittide create ~/photos -o photos.torrent
  bittide create movie.mkv -o movie.torrent -t udp://tracker.example.org:1337
  bittide create data/ -o data.torrent --piece-size 1M --private --no-date
  bittide create album/ -o album.torrent --hybrid";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let content = Content::scan(&args.path).map_err(content_failure)?;
    let mut builder = content.builder();
    let format = match (args.hybrid, args.v2) {
        (true, _) => TorrentFormat::Hybrid,
        (_, true) => TorrentFormat::V2,
        _ => TorrentFormat::V1,
    };
    builder.set_format(format);
    if let Some(n) = args.piece_size {
        builder.set_piece_length(n);
    }
    for t in args.trackers {
        builder.add_tracker_tier(vec![t]);
    }
    for w in args.web_seeds {
        builder.add_web_seed(w);
    }
    builder.set_private(args.private);
    if let Some(c) = args.comment {
        builder.set_comment(c);
    }
    builder.set_created_by(format!("bittide {}", env!("CARGO_PKG_VERSION")));
    if !args.no_date {
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            builder.set_creation_date(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        }
    }
    let layout = builder
        .layout()
        .map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", args.path.display())))?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = AtomicU64::new(0);
    let total = layout.total_length();
    let done = AtomicBool::new(false);
    let bar = (total >= 64 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let hashes = std::thread::scope(|s| {
        if let Some(bar) = bar.clone() {
            let (progress, done) = (&progress, &done);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(progress.load(Ordering::Relaxed));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let r = content.hash_pieces_with(&layout, threads, &progress, format != TorrentFormat::V1);
        done.store(true, Ordering::Relaxed);
        r
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (v1, v2) = hashes.map_err(content_failure)?;
    let built = match format {
        TorrentFormat::V1 => builder.build(&v1),
        TorrentFormat::Hybrid => builder.build_v2(&v1, &v2),
        TorrentFormat::V2 => builder.build_v2(&[], &v2),
    };
    let bytes = built.map_err(|e| Failure::new(Exit::BadInput, e.to_string()))?;
    // Check what we wrote parses, so a bug here never ships a bad torrent.
    let m = Metainfo::from_bytes_strict(&bytes)
        .map_err(|e| Failure::new(Exit::BadInput, format!("internal error: {e}")))?;
    write_atomically(&args.output, &bytes)
        .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", args.output.display())))?;
    print(&format!(
        "{}\n  info-hash {}, {} files, {} in {} pieces of {}\n",
        args.output.display(),
        m.info_hash,
        m.info.files().iter().filter(|f| !f.attr.padding).count(),
        human(total),
        m.info.piece_count(),
        human(u64::from(m.info.piece_length())),
    ))
}

fn content_failure(e: ContentError) -> Failure {
    let code = match e {
        ContentError::NotUtf8(_) | ContentError::NoName(_) => Exit::BadInput,
        _ => Exit::Io,
    };
    Failure::new(code, e.to_string())
}

/// Writes through a temporary file and a rename, so a crash or a full disk
/// never leaves a truncated .torrent behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A device or a pipe (`-o /dev/stdout`, `-o /dev/null`) is written
    // into, never renamed over: a rename would replace the device node
    // itself with a regular file.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            return std::fs::OpenOptions::new()
                .write(true)
                .open(path)?
                .write_all(bytes);
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
