//! `bittide demo`: the main job on a fresh machine with nothing set up.
//!
//! It makes a few MiB of content, creates a torrent of it, seeds it from
//! one engine and downloads it with another over loopback, in this one
//! process. The download is the one `bittide download` runs — the same
//! session, the same progress display, the same Ctrl-C handling — only
//! its peer is known in advance instead of coming from a tracker. At the
//! end every file is compared with the original and the path is printed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::time::Duration;

use bittide_core::{Rng, Seed};
use bittide_driver::client::{self, SessionOptions, TorrentSource};
use bittide_driver::content::Content;
use bittide_driver::driver::{Command, Handle};
use bittide_driver::units::{human, parse_rate, parse_size};
use bittide_tokio::runtime::TokioRuntime;

use crate::exit::{Exit, Failure};
use crate::output::print;
use crate::session::{self, Mode};

/// The content's top folder, and so the torrent's name.
const NAME: &str = "bittide-demo";

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  bittide demo                      # 16 MiB at 8 MiB/s into a new temporary folder
  bittide demo -o /tmp/d --size 64M --download-limit none
  bittide demo --json               # the download's events, one JSON object per line")]
pub(crate) struct Args {
    /// Folder for the demo's files: the content the seeder serves
    /// (`seed/`), the torrent, and the download (`download/`) [default: a
    /// new folder in the system's temporary folder].
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// How much content to make, e.g. 4M or 1G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16M")]
    size: u32,
    /// Download limit per second, so the progress can be watched; `none`
    /// for as fast as loopback goes.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "8M")]
    download_limit: u64,
    /// Print the download's JSON events, one object per line
    /// (docs/json-events.md), instead of progress.
    #[arg(long)]
    json: bool,
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let root = match args.output {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("bittide-demo-{}", std::process::id())),
    };
    let seed_dir = root.join("seed");
    let download_dir = root.join("download");
    for dir in [&seed_dir, &download_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", dir.display())))?;
    }
    let files = make_content(&seed_dir.join(NAME), u64::from(args.size))?;
    let torrent = make_torrent(&seed_dir.join(NAME), &root.join(format!("{NAME}.torrent")))?;
    if !args.json {
        print(&format!(
            "demo: {} in {} files seeded from {}, downloading over loopback into {}\n",
            human(files.iter().map(|f| f.1).sum()),
            files.len(),
            seed_dir.display(),
            download_dir.display()
        ))?;
    }

    let seeder = Seeder::start(torrent.clone(), seed_dir.clone())?;
    let options = SessionOptions {
        listen: Some("127.0.0.1:0".parse().expect("literal address")),
        peers: vec![seeder.addr],
        peer_timeout: Some(Duration::from_secs(30)),
        // A state folder of its own: a second demo in the same folder
        // resumes, and the user's state folder is left alone.
        state_dir: Some(root.join("state")),
        download_rate: args.download_limit,
        ..SessionOptions::new(TorrentSource::File(torrent), download_dir.clone())
    };
    let result = session::run(
        options,
        args.json,
        Mode::Download {
            keep_seeding: false,
        },
    );
    seeder.stop();
    result?;

    for (relative, length) in &files {
        let original = seed_dir.join(NAME).join(relative);
        let copy = download_dir.join(NAME).join(relative);
        let same = std::fs::read(&original).ok() == std::fs::read(&copy).ok();
        if !same {
            return Err(Failure::new(
                Exit::Io,
                format!(
                    "{}: differs from {} ({length} bytes expected)",
                    copy.display(),
                    original.display()
                ),
            ));
        }
    }
    if !args.json {
        print(&format!(
            "demo: verified, every file matches the original: {}\nnext: bittide download FILE.torrent|MAGNET -o DIR\n",
            download_dir.join(NAME).display()
        ))?;
    }
    Ok(())
}

/// Writes the demo content under `dir`: a text file, a large file of
/// seeded random bytes and a small one in a subfolder, so the torrent has
/// several files and pieces spanning file boundaries. Returns each file's
/// path under `dir` and length.
fn make_content(dir: &Path, size: u64) -> Result<Vec<(PathBuf, u64)>, Failure> {
    let readme = b"This folder was made by `bittide demo`: seeded by one bittide engine\nand downloaded by another over loopback.\n";
    let small = 100_003u64.min(size / 4);
    let big = size.saturating_sub(readme.len() as u64 + small).max(1);
    let mut rng = Rng::new(Seed::from_u64(0x0b17_71de));
    let mut fill = |n: u64| {
        let mut v = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
        rng.fill(&mut v);
        v
    };
    let files: Vec<(PathBuf, Vec<u8>)> = vec![
        (PathBuf::from("README.txt"), readme.to_vec()),
        (PathBuf::from("data.bin"), fill(big)),
        (PathBuf::from("more/small.bin"), fill(small)),
    ];
    let mut out = Vec::new();
    for (relative, bytes) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, &bytes)
            .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))?;
        out.push((relative, bytes.len() as u64));
    }
    Ok(out)
}

/// A torrent of `content` (no trackers: the downloader is told its peer),
/// written to `path`; returns its bytes.
fn make_torrent(content: &Path, path: &Path) -> Result<Vec<u8>, Failure> {
    let scanned = Content::scan(content).map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
    let mut builder = scanned.builder();
    // Small pieces: a 16 MiB demo still has pieces crossing files and
    // enough of them for a progress bar to move smoothly.
    builder.set_piece_length(64 << 10);
    builder.set_created_by(format!("bittide {} demo", env!("CARGO_PKG_VERSION")));
    let layout = builder
        .layout()
        .map_err(|e| Failure::new(Exit::BadInput, e.to_string()))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hashes = scanned
        .hash_pieces(&layout, threads, &AtomicU64::new(0))
        .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
    let bytes = builder
        .build(&hashes)
        .map_err(|e| Failure::new(Exit::BadInput, e.to_string()))?;
    std::fs::write(path, &bytes)
        .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))?;
    Ok(bytes)
}

/// The seeding engine: a `bittide seed` session on a thread of its own,
/// on loopback, silent.
struct Seeder {
    addr: std::net::SocketAddr,
    handle: Handle,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Seeder {
    fn start(torrent: Vec<u8>, folder: PathBuf) -> Result<Seeder, Failure> {
        let (tx, rx) = mpsc::channel();
        let options = SessionOptions {
            keep_seeding: true,
            listen: Some("127.0.0.1:0".parse().expect("literal address")),
            recheck: true,
            seed_only: true,
            ..SessionOptions::new(TorrentSource::File(torrent), folder)
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            // Ready once seeding, i.e. its check has passed: a downloader
            // connecting earlier would be turned away and retry later.
            let started = std::cell::RefCell::new(None);
            let result = rt.block_on(async {
                client::run(
                    TokioRuntime::current(),
                    options,
                    |handle, addr| *started.borrow_mut() = Some((handle, addr)),
                    |p, _| {
                        if p.complete {
                            if let Some(ready) = started.borrow_mut().take() {
                                let _ = tx.send(ready);
                            }
                        }
                    },
                )
                .await
            });
            rt.shutdown_timeout(Duration::from_millis(500));
            result.map(|_| ()).map_err(|e| e.message)
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((handle, addr)) => Ok(Seeder {
                addr,
                handle,
                thread,
            }),
            Err(_) => {
                let why = match thread.join() {
                    Ok(Err(e)) => e,
                    _ => "the seeder did not start".to_owned(),
                };
                Err(Failure::new(Exit::Io, format!("demo seeder: {why}")))
            }
        }
    }

    /// Stops the seeder and waits for it (its shutdown is bounded by the
    /// engine's grace period).
    fn stop(self) {
        self.handle.send(Command::Shutdown);
        let _ = self.thread.join();
    }
}
