//! A download or seed session over any runtime: reads the torrent, checks
//! the output folder, sets up the engine, storage, listener and UDP socket,
//! runs the loop, and reports progress through a callback. The runtime
//! crates' command lines and examples are thin layers over this.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bittide_core::engine::{Engine, EngineConfig, Event};
use bittide_core::metainfo::Metainfo;
use bittide_core::torrent::{StartMode, TorrentEvent, TorrentInfo, TorrentState};
use bittide_core::wire::PeerId;
use bittide_core::{Bitfield, InfoHash, Rng, TorrentId};

/// How often resume data is written while running.
const RESUME_INTERVAL: Duration = Duration::from_secs(30);

fn info_hash_of(m: &Metainfo<'_>) -> InfoHash {
    m.info_hash
}

use crate::clock::{os_seed, Clock};
use crate::disk::Storage;
use crate::driver::{Control, Driver, Handle};
use crate::resume;
use crate::runtime::Runtime;

/// What to do.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// The .torrent file's bytes.
    pub torrent: Vec<u8>,
    /// The folder that holds (or will hold) `<name>`.
    pub folder: PathBuf,
    /// Keep serving after the download completes (until shut down).
    pub keep_seeding: bool,
    /// Where to accept peers.
    pub listen: SocketAddr,
    /// Peers to connect to directly.
    pub peers: Vec<SocketAddr>,
    /// Fail when no peer connected within this time.
    pub peer_timeout: Option<Duration>,
    /// Verify the data on disk even if resume data says it is good.
    pub recheck: bool,
    /// Most connected peers (default 50).
    pub max_peers: Option<usize>,
    /// Download pieces in order (for streaming).
    pub sequential: bool,
    /// Download only these files (indices as `bittide info` lists them).
    pub only: Option<Vec<usize>>,
    /// Upload limit, bytes/s (0: none).
    pub upload_rate: u64,
    /// Download limit, bytes/s (0: none).
    pub download_rate: u64,
}

/// A progress report, at least once a second and on every event.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Bytes of wanted pieces on disk.
    pub done: u64,
    /// Bytes wanted in all.
    pub total: u64,
    /// Payload bytes downloaded and uploaded so far.
    pub downloaded: u64,
    /// Payload bytes uploaded so far.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// The torrent's state.
    pub state: TorrentState,
}

/// How a session ended badly; `code` is the process exit code the CLI uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionError {
    /// Exit code.
    pub code: u8,
    /// One line for the user.
    pub message: String,
}

/// Exit codes (shared with the CLI's other commands).
pub mod exit {
    /// Unreadable/unwritable files, full disk, busy port.
    pub const IO: u8 = 1;
    /// Malformed or unsafe torrent.
    pub const BAD_TORRENT: u8 = 3;
    /// Every tracker refused the torrent and no peer was found.
    pub const TRACKER: u8 = 5;
    /// No peer within the timeout.
    pub const NO_PEERS: u8 = 6;
}

fn err(code: u8, message: impl Into<String>) -> SessionError {
    SessionError {
        code,
        message: message.into(),
    }
}

/// A random peer id in the Azureus style (`-BT0001-` + 12 digits).
pub fn random_peer_id() -> PeerId {
    let mut id = *b"-BT0001-000000000000";
    let mut rng = Rng::new(os_seed());
    for b in &mut id[8..] {
        *b = b'0' + rng.below(10) as u8;
    }
    PeerId(id)
}

/// Checks that `folder` exists (creating it) and can be written.
fn check_folder(folder: &Path) -> Result<(), SessionError> {
    std::fs::create_dir_all(folder).map_err(|e| {
        err(
            exit::IO,
            format!("{}: cannot create the output folder: {e}", folder.display()),
        )
    })?;
    let probe = folder.join(format!(".bittide-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        err(
            exit::IO,
            format!("{}: output folder is not writable: {e}", folder.display()),
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Runs one torrent to completion (or forever with `keep_seeding`, until
/// `handle` is told to shut down). `report` sees progress and events.
pub async fn run<R: Runtime>(
    rt: R,
    options: SessionOptions,
    on_start: impl FnOnce(Handle, SocketAddr),
    mut report: impl FnMut(&Progress, Option<&TorrentEvent>),
) -> Result<Progress, SessionError> {
    let metainfo = Metainfo::from_bytes(&options.torrent)
        .map_err(|e| err(exit::BAD_TORRENT, e.to_string()))?;
    check_folder(&options.folder)?;
    let name = String::from_utf8_lossy(metainfo.info.name()).into_owned();
    let exists = options.folder.join(&name).exists();
    let info = TorrentInfo::from_metainfo(&metainfo);
    let storage = Arc::new(Storage::new(&options.folder, &metainfo));

    let listener = rt.listen(options.listen).await.map_err(|e| {
        err(
            exit::IO,
            format!("cannot listen on {}: {e}", options.listen),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| err(exit::IO, format!("listen address: {e}")))?;
    let udp_bind = SocketAddr::new(local.ip(), local.port());
    let udp = rt.bind_udp(udp_bind).await.ok();

    let resume = if options.recheck {
        None
    } else {
        resume::load(
            &options.folder,
            &info.info_hash,
            info.layout.piece_count(),
            &storage,
            metainfo.info.files().len(),
        )
    };

    let mut config = EngineConfig {
        peer_id: random_peer_id(),
        listen_port: local.port(),
        ..EngineConfig::default()
    };
    // A tighter in-memory budget than the core's default keeps a download's
    // footprint small; 16 MiB still covers many peers' pipelines.
    config.torrent.max_buffered_bytes = 16 << 20;
    config.torrent.upload_rate = options.upload_rate;
    config.torrent.download_rate = options.download_rate;
    if let Some(n) = options.max_peers {
        config.torrent.max_peers = n.max(1);
    }
    let file_count = metainfo.info.files().len();
    let priorities = match &options.only {
        None => None,
        Some(list) => {
            if let Some(bad) = list.iter().find(|&&i| i >= file_count) {
                return Err(err(
                    2,
                    format!("--only: the torrent has no file {bad} (it has {file_count})"),
                ));
            }
            Some(
                (0..file_count)
                    .map(|i| {
                        if list.contains(&i) {
                            bittide_core::picker::Priority::Normal
                        } else {
                            bittide_core::picker::Priority::Skip
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let clock = Clock::new();
    let mut engine = Engine::new(config, os_seed());
    let start = match (&resume, exists) {
        (Some(r), _) => StartMode::Trusted(r.pieces.clone()),
        (None, true) => StartMode::Check,
        (None, false) => StartMode::Fresh,
    };
    let id: TorrentId = engine
        .add_torrent(clock.now(), info, start)
        .ok_or_else(|| err(exit::BAD_TORRENT, "torrent added twice"))?;
    if let Some(p) = &priorities {
        engine.set_file_priorities(clock.now(), id, p);
    }
    if options.sequential {
        engine.set_sequential(id, true);
    }
    let mut peers = options.peers.clone();
    if let Some(r) = &resume {
        peers.extend(r.peers.iter().copied());
    }
    if !peers.is_empty() {
        engine.add_peers(clock.now(), id, peers);
    }
    let mut driver = Driver::new(rt.clone(), engine, clock);
    driver.set_storage(id, storage.clone());
    let info_hash = info_hash_of(&metainfo);
    let save_resume = {
        let (folder, storage) = (options.folder.clone(), storage.clone());
        move |have: Bitfield, peers: Vec<SocketAddr>| {
            let _ = resume::save(&folder, &info_hash, &have, &peers, &storage, file_count);
        }
    };
    let mut last_save = std::time::Instant::now();
    let mut saved_pieces = u32::MAX;
    driver.listen(listener);
    if let Some(s) = udp {
        driver.set_udp(s);
    }
    on_start(driver.handle(), local);

    let started = std::time::Instant::now();
    let mut failure: Option<SessionError> = None;
    let mut last = Progress {
        done: 0,
        total: 0,
        downloaded: 0,
        uploaded: 0,
        peers: 0,
        state: TorrentState::Checking,
    };
    let mut ever_connected = false;
    let mut refused: Option<String> = None;
    let keep_seeding = options.keep_seeding;
    let mut final_state: Option<(Bitfield, Vec<SocketAddr>)> = None;
    let peer_timeout = options.peer_timeout;
    driver
        .run(|event, engine: &Engine| {
            let Some(t) = engine.torrent(id) else {
                return Control::Shutdown;
            };
            final_state = Some((t.have().clone(), t.peer_addrs()));
            let (uploaded, downloaded, left) = t.counters();
            let total = (0..t.have().len())
                .map(|p| {
                    u64::from(
                        metainfo
                            .info
                            .layout()
                            .piece_size(bittide_core::PieceIndex(p)),
                    )
                })
                .sum::<u64>();
            last = Progress {
                done: total.saturating_sub(left),
                total,
                downloaded,
                uploaded,
                peers: t.peer_count(),
                state: t.state(),
            };
            let torrent_event = event.map(|Event::Torrent(_, e)| e);
            report(&last, torrent_event);
            // Resume data every 30 s when something changed (flushing and
            // writing happen on the blocking pool).
            if last_save.elapsed() >= RESUME_INTERVAL && t.have().count() != saved_pieces {
                last_save = std::time::Instant::now();
                saved_pieces = t.have().count();
                let (have, peers, save) = (t.have().clone(), t.peer_addrs(), save_resume.clone());
                rt.spawn_blocking(Box::new(move || save(have, peers)));
            }
            match torrent_event {
                Some(TorrentEvent::PeerConnected { .. }) => ever_connected = true,
                Some(TorrentEvent::Finished) if !keep_seeding => return Control::Shutdown,
                Some(TorrentEvent::WriteFailed(piece)) => {
                    failure = Some(err(
                        exit::IO,
                        format!("could not write {piece} to disk (disk full or not writable)"),
                    ));
                    return Control::Shutdown;
                }
                Some(TorrentEvent::TrackerError {
                    error: bittide_core::tracker::TrackerError::Refused(m),
                    url,
                }) => refused = Some(format!("{url}: tracker refused: {m}")),
                Some(TorrentEvent::StateChanged(TorrentState::Seeding))
                    if !keep_seeding && t.is_finished() =>
                {
                    return Control::Shutdown;
                }
                _ => {}
            }
            if !ever_connected && !t.is_finished() {
                if let Some(limit) = peer_timeout {
                    if started.elapsed() >= limit {
                        failure = Some(match &refused {
                            Some(r) => err(exit::TRACKER, r.clone()),
                            None => err(
                                exit::NO_PEERS,
                                format!("no peers found within {} s", limit.as_secs()),
                            ),
                        });
                        return Control::Shutdown;
                    }
                }
            }
            Control::Continue
        })
        .await;
    if let Some((have, peers)) = final_state {
        save_resume(have, peers);
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(last),
    }
}
