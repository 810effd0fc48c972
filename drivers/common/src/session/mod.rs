//! A session: one engine, one listen port (TCP and the shared UDP socket),
//! one DHT node and any number of torrents, kept in a state folder
//! ([`state`]) across runs and controlled while it runs through a
//! [`SessionHandle`]. It is what `bittide daemon` runs; the HTTP API, the
//! remote CLI and the web UI are clients of the handle.
//!
//! Policy (queueing, global limits, seeding goals) is the engine's; the
//! session adds what needs the file system: each torrent's storage,
//! resume data and settings, the queue order, and moving or deleting
//! data, always on the runtime's blocking pool, never on the loop.
//!
//! A restart brings every torrent back in its state: resume data written
//! at shutdown (after the files are synced) vouches for the verified
//! pieces, which are not read again. After a crash the resume data of a
//! torrent that was writing no longer matches its files (their mtimes
//! moved), so the data present is verified again: no verified piece is
//! lost, none is trusted blindly.

mod categories;
mod events;
mod handle;
mod missing;
mod registry;
mod relocate;
mod shares;
pub mod state;
pub mod stream;
mod tags;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bittide_core::engine::{
    EncryptionMode, Engine, EngineConfig, Event, SeedingGoal, SessionLimits, Transports,
};
use bittide_core::metainfo::{Magnet, Metainfo};
use bittide_core::picker::Priority;
use bittide_core::torrent::{StartMode, TorrentInfo};
use bittide_core::wire::PeerId;
use bittide_core::{InfoHash, Instant};

pub use categories::Categories;
use events::{beat, fail, final_state, goal_reached, on_torrent_event, Beats, FinalSave};
pub use handle::SessionHandle;
use registry::{Entry, Registry};
pub use shares::ShareLimits;
pub use state::StateError;
use state::{StateDir, StateLock, StoredTorrent, TorrentSettings};
pub use stream::{FileStream, StreamError};
pub use tags::{valid_tag, Tags};
use views::SessionSettings;

use crate::client::{dht_settings, random_peer_id, save_dht, SessionDht};
use crate::clock::os_seed;
use crate::control::AddTorrent;
use crate::disk::Storage;
use crate::driver::{Control, Driver, Ended};
use crate::listen::ListenPlan;
use crate::resume;
use crate::runtime::Runtime;
use bittide_core::dht::SavedDht;

/// How a session starts.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The state folder ([`state`]).
    pub state_dir: PathBuf,
    /// Where peers reach us (TCP, and UDP on the same port).
    pub listen: SocketAddr,
    /// More addresses to accept peers on (port 0: `listen`'s port); the
    /// first of the other family carries its UDP. Without any, an
    /// "every interface" IPv4 `listen` is joined by its IPv6 twin.
    pub also_listen: Vec<SocketAddr>,
    /// The DHT node (`None`: no DHT; private torrents never use it). Its
    /// state lives in the state folder unless `state_file` says otherwise.
    pub dht: Option<SessionDht>,
    /// Session settings to start with; those changed through the handle
    /// are kept in the state folder and win over these at the next start.
    pub settings: SessionSettings,
    /// Most connections per torrent.
    pub max_peers: usize,
    /// Most connections per IP (1 unless tests run many peers on one
    /// loopback address).
    pub max_peers_per_ip: usize,
    /// Our peer id (`None`: a random one).
    pub peer_id: Option<PeerId>,
    /// Message stream encryption of peer connections (MSE/PE).
    pub encryption: EncryptionMode,
    /// Which transports carry peer connections (TCP, uTP).
    pub transports: Transports,
    /// Local service discovery (BEP 14): announce public torrents to the
    /// local network's multicast groups and take the peers heard there.
    pub lsd: bool,
    /// Download from torrents' web seeds (BEP 19).
    pub web_seeds: bool,
}

impl SessionConfig {
    /// A session keeping its state in `state_dir`, downloading to
    /// `download_dir`, listening on `listen`, without DHT.
    pub fn new(state_dir: PathBuf, download_dir: PathBuf, listen: SocketAddr) -> SessionConfig {
        SessionConfig {
            state_dir,
            listen,
            also_listen: Vec::new(),
            dht: None,
            settings: SessionSettings {
                max_connections: 500,
                download_dir,
                ..SessionSettings::default()
            },
            max_peers: 50,
            max_peers_per_ip: 1,
            peer_id: None,
            encryption: EncryptionMode::Enabled,
            transports: Transports::default(),
            lsd: false,
            web_seeds: true,
        }
    }
}

/// Why a session could not start.
#[derive(Debug)]
pub enum OpenError {
    /// The state folder cannot be used.
    State(StateError),
    /// The listen address cannot be bound.
    Listen(SocketAddr, std::io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::State(e) => e.fmt(f),
            OpenError::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// What the loop's callback and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    registry: Mutex<Registry>,
    /// Held while a torrent's settings are written: each write reads the
    /// settings as they are at that moment, so the last write holds the
    /// latest, whatever order the blocking pool runs them in.
    settings_writes: Mutex<()>,
    state: StateDir,
    listen: SocketAddr,
    started: Instant,
    /// Open file streams: their windows, and who to wake on a new piece.
    streams: stream::Streams,
}

impl Shared {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a torrent's settings as they are now (blocking; call on the
    /// blocking pool). A torrent no longer in the session is not written.
    pub(crate) fn persist_settings(&self, hash: &InfoHash) -> std::io::Result<()> {
        let _writing = self
            .settings_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let settings = match self.registry().entries.get(hash) {
            Some(e) => e.settings_now(),
            None => return Ok(()),
        };
        self.state.save_settings(hash, &settings)
    }
}

/// Seconds since the Unix epoch (for "added at" and "completed at").
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A torrent's storage and how to start it, from its .torrent: resume
/// data that matches the files vouches for its pieces; files already
/// there are verified; otherwise it starts empty.
pub(crate) struct Prepared {
    pub info: TorrentInfo,
    pub name: String,
    pub storage: Arc<Storage>,
    pub start: StartMode,
    pub peers: Vec<SocketAddr>,
}

pub(crate) fn prepare(
    state: &StateDir,
    metainfo: &Metainfo<'_>,
    settings: &TorrentSettings,
) -> Prepared {
    let info = TorrentInfo::from_metainfo(metainfo);
    let name = String::from_utf8_lossy(metainfo.info.name()).into_owned();
    let storage = Arc::new(settings.storage(metainfo));
    let files = metainfo.info.files().len();
    let only = settings.only.as_deref().map(|o| only_priorities(o, files));
    // A failure is kept as the storage's write error, which the session reports.
    let _ = storage.set_priorities(settings.priorities.as_deref().or(only.as_deref()));
    let (start, peers) = resume::start_mode(
        Some(state.root()),
        &info.info_hash,
        info.layout.piece_count(),
        &storage,
        files,
    );
    Prepared {
        info,
        name,
        storage,
        start,
        peers,
    }
}

/// File priorities from a selection of file indices.
pub(crate) fn only_priorities(only: &[usize], files: usize) -> Vec<Priority> {
    (0..files)
        .map(|i| {
            if only.contains(&i) {
                Priority::Normal
            } else {
                Priority::Skip
            }
        })
        .collect()
}

/// A running session; see the module documentation.
pub struct Session<R: Runtime> {
    rt: R,
    driver: Driver<R>,
    shared: Arc<Shared>,
    warnings: Vec<String>,
    dht_file: Option<PathBuf>,
    /// The DHT state file as read at start (kept under what is saved).
    saved_dht: SavedDht,
    _lock: StateLock,
}

impl<R: Runtime> Session<R> {
    /// Opens the state folder (taking its lock), binds the listen
    /// address, and loads every torrent kept there. Entries that cannot
    /// be read are set aside and listed in [`warnings`](Session::warnings).
    pub async fn open(rt: R, config: SessionConfig) -> Result<Session<R>, OpenError> {
        let state = StateDir::new(config.state_dir.clone());
        let lock = state.lock().map_err(OpenError::State)?;
        let mut warnings = Vec::new();
        let saved = state.load_session(&mut warnings);
        let settings = saved.settings.clone().unwrap_or(config.settings.clone());

        let listener = rt
            .listen(config.listen)
            .await
            .map_err(|e| OpenError::Listen(config.listen, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| OpenError::Listen(config.listen, e))?;
        let udp = rt.bind_udp(local).await.ok();
        let more = ListenPlan::new(local, &config.also_listen);
        let ipv6 = more.has_ipv6();
        let (lsd, lsd_sockets) = match config.lsd {
            true => crate::lsd::join(&rt, ipv6).await,
            false => Default::default(),
        };

        let dht = config.dht.clone().map(|mut d| {
            if d.state_file.is_none() {
                d.state_file = Some(state.dht_file());
            }
            d
        });
        let dht_file = dht.as_ref().and_then(|d| d.state_file.clone());
        let (dht_settings, saved_dht) = match dht.as_ref().map(|d| dht_settings(d, ipv6)) {
            Some((settings, saved)) => (Some(settings), saved),
            None => (None, SavedDht::default()),
        };
        let mut engine_config = EngineConfig {
            peer_id: config.peer_id.unwrap_or_else(random_peer_id),
            listen_port: local.port(),
            dht: dht_settings,
            encryption: config.encryption,
            transports: config.transports,
            lsd,
            ..EngineConfig::default()
        };
        engine_config.limits = limits(&settings);
        engine_config.torrent.max_buffered_bytes = 16 << 20;
        engine_config.torrent.max_peers = config.max_peers.max(1);
        engine_config.torrent.web_seeds = config.web_seeds;
        engine_config.torrent.max_peers_per_ip = config.max_peers_per_ip.max(1);
        engine_config.handshakes.max_per_ip = engine_config
            .handshakes
            .max_per_ip
            .max(config.max_peers_per_ip);
        let mut driver = Driver::new(rt.clone(), Engine::new(engine_config, os_seed()));
        // Sockets before the stored torrents: their first announces go
        // out over the families that bound.
        driver.listen(listener);
        let local_udp = udp.is_some();
        if let Some(s) = udp {
            driver.set_udp(s);
        }
        for s in lsd_sockets {
            driver.receive_lsd(s);
        }
        let families = more
            .bind(&rt, &mut driver, local_udp)
            .await
            .map_err(|(addr, e)| OpenError::Listen(addr, e))?;
        driver.engine().set_listen_families(families);
        let now = rt.now();
        driver
            .engine()
            .set_default_seeding_goal(now, seeding_goal(&settings));

        let mut registry = Registry {
            settings,
            categories: categories::load(state.root(), &mut warnings),
            tags: tags::load(state.root(), &mut warnings),
            ..Registry::default()
        };
        let mut stored = state.load_torrents(&mut warnings);
        // Queue order first, then the order they were added in.
        let position = |h: &InfoHash| saved.queue.iter().position(|q| q == h);
        stored.sort_by_key(|t| {
            (
                position(&t.info_hash).unwrap_or(usize::MAX),
                t.settings.added_at,
            )
        });
        for t in stored {
            let hash = t.info_hash;
            match load_one(&state, &mut driver, t, now) {
                Ok(entry) => registry.insert(hash, entry),
                Err(why) => warnings.push(format!(
                    "{}: {why}; left in place",
                    state.torrent_dir(&hash).display()
                )),
            }
        }
        registry.learn_queue(driver.engine());
        let shared = Arc::new(Shared {
            registry: Mutex::new(registry),
            settings_writes: Mutex::new(()),
            state,
            listen: local,
            started: now,
            streams: stream::Streams::default(),
        });
        Ok(Session {
            rt,
            driver,
            shared,
            warnings,
            dht_file,
            saved_dht,
            _lock: lock,
        })
    }

    /// State entries that could not be loaded, one line each (the
    /// daemon logs them).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The address peers reach us on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// A handle to control the session while it runs.
    pub fn handle(&self) -> SessionHandle<R> {
        SessionHandle::new(self.rt.clone(), self.driver.handle(), self.shared.clone())
    }

    /// Runs until [`SessionHandle::shutdown`] (graceful: trackers are told,
    /// disks synced, resume data and settings written) or an abort.
    pub async fn run(self) -> Ended {
        let Session {
            rt,
            driver,
            shared,
            dht_file,
            saved_dht,
            _lock,
            ..
        } = self;
        let handle = driver.handle();
        let mut beats = Beats::new(rt.now());
        let mut final_saves: Vec<FinalSave> = Vec::new();
        let mut dht_state: Option<Vec<u8>> = None;
        let ended = driver
            .run(|event, engine| {
                let now = rt.now();
                match event {
                    Some(Event::Torrent(id, e)) => {
                        on_torrent_event(&rt, &shared, &handle, engine, *id, e, now);
                    }
                    Some(Event::SeedingGoalReached(id)) => {
                        goal_reached(&rt, &shared, &handle, *id);
                    }
                    Some(Event::DiskFailed(id)) => {
                        fail(&shared, &handle, *id, engine, "could not create the files");
                    }
                    Some(Event::Stopped) => {
                        shared.registry().learn_queue(engine);
                        final_saves = final_state(&shared, engine, now);
                        dht_state = engine
                            .dht_state()
                            .map(|d| d.merged_over(&saved_dht).encode());
                    }
                    Some(Event::Dht(_)) => {
                        if let (Some(path), Some(d)) = (&dht_file, engine.dht_state()) {
                            let (path, bytes) = (path.clone(), d.merged_over(&saved_dht).encode());
                            rt.spawn(rt.spawn_blocking(Box::new(move || save_dht(&path, &bytes))));
                        }
                    }
                    _ => {}
                }
                if beats.due(now) {
                    beat(&rt, &shared, engine, now);
                    if let (Some(path), Some(d)) = (&dht_file, engine.dht_state()) {
                        if beats.dht_due(now) {
                            let (path, bytes) = (path.clone(), d.merged_over(&saved_dht).encode());
                            rt.spawn(rt.spawn_blocking(Box::new(move || save_dht(&path, &bytes))));
                        }
                    }
                }
                Control::Continue
            })
            .await;
        // The loop has synced the disks: resume data may vouch for what
        // is on them now.
        let queue = handle::queue_file(&shared);
        let hashes: Vec<InfoHash> = shared.registry().entries.keys().copied().collect();
        rt.spawn_blocking(Box::new(move || {
            for s in final_saves {
                s.write_resume(&shared.state);
            }
            for h in hashes {
                let _ = shared.persist_settings(&h);
            }
            let _ = shared.state.save_session(&queue);
            if let (Some(path), Some(bytes)) = (dht_file, dht_state) {
                save_dht(&path, &bytes);
            }
        }))
        .await;
        ended
    }
}

/// The engine's limits from the session's settings.
pub(crate) fn limits(s: &SessionSettings) -> SessionLimits {
    SessionLimits {
        max_connections: s.max_connections,
        upload_rate: s.upload_rate,
        download_rate: s.download_rate,
        active_downloads: s.active_downloads,
        active_seeds: s.active_seeds,
        ..SessionLimits::default()
    }
}

/// The default seeding goal from the session's settings.
pub(crate) fn seeding_goal(s: &SessionSettings) -> Option<SeedingGoal> {
    let goal = SeedingGoal {
        ratio: s.seed_ratio,
        seeding_time: s.seed_time.map(Duration::from_secs),
        inactive_time: s.seed_inactive_time.map(Duration::from_secs),
    };
    (goal != SeedingGoal::default()).then_some(goal)
}

/// Adds one stored torrent to the loop before it runs.
fn load_one<R: Runtime>(
    state: &StateDir,
    driver: &mut Driver<R>,
    t: StoredTorrent,
    now: Instant,
) -> Result<Entry, String> {
    let StoredTorrent {
        info_hash,
        torrent,
        magnet,
        settings,
    } = t;
    if let Some(bytes) = torrent {
        let metainfo = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
        // A hybrid added by its v2 name alone (a `btmh` magnet) keeps
        // that name: it is what the state folder and the API know it by.
        let by_v2_name = metainfo
            .info_hash_v2
            .is_some_and(|v2| InfoHash::truncated(&v2) == info_hash);
        if metainfo.info_hash != info_hash && !by_v2_name {
            return Err("its .torrent has another info-hash".into());
        }
        let mut p = prepare(state, &metainfo, &settings);
        p.info.info_hash = info_hash;
        let saved = match &p.start {
            StartMode::Trusted(have) => Some(have.count()),
            _ => None,
        };
        // Verified files gone: wait for them paused, and check (never
        // start empty) once resumed.
        let missing = saved.is_none()
            && !resume::missing_files(
                state.root(),
                &info_hash,
                p.info.layout.piece_count(),
                &p.storage,
                metainfo.info.files().len(),
            )
            .is_empty();
        if missing {
            p.start = StartMode::Check;
        }
        let mut add = AddTorrent::new(p.info.clone(), p.storage.clone(), p.start);
        add.priorities = settings.priorities.clone();
        add.sequential = settings.sequential;
        add.peers = p.peers;
        add.peers.extend(settings.peers.iter().copied());
        add.paused = settings.paused || missing;
        let id = driver
            .add_torrent(add)
            .ok_or("the engine refused it (added twice?)")?;
        let mut entry = Entry::new(id, p.name, settings, now);
        driver
            .engine()
            .restore_history(now, id, entry.stored_history());
        entry.learn_layout(&p.info.layout);
        entry.saved_pieces = saved;
        entry.missing_files = missing;
        entry.storage = Some(p.storage);
        apply_settings(driver.engine(), now, &entry);
        return Ok(entry);
    }
    let link = magnet.ok_or("neither a .torrent nor a magnet link")?;
    let m = Magnet::parse(&link).map_err(|e| e.to_string())?;
    if m.wire_hash() != Some(info_hash) {
        return Err("its magnet link has another info-hash".into());
    }
    let name = m
        .display_name
        .clone()
        .unwrap_or_else(|| info_hash.to_string());
    let id = driver
        .add_magnet(&m, settings.peers.clone())
        .ok_or("the engine refused it (added twice?)")?;
    if settings.paused {
        driver.engine().pause(now, id);
    }
    let mut entry = Entry::new(id, name, settings, now);
    driver
        .engine()
        .restore_history(now, id, entry.stored_history());
    entry.magnet = Some(link);
    apply_settings(driver.engine(), now, &entry);
    Ok(entry)
}

/// The per-torrent settings the engine holds (limits), as stored.
fn apply_settings(engine: &mut Engine, now: Instant, entry: &Entry) {
    let s = &entry.settings;
    if s.force_start {
        engine.set_force_start(now, entry.id, true);
    }
    if s.upload_limit > 0 || s.download_limit > 0 {
        engine.set_rate_limits(now, entry.id, s.upload_limit, s.download_limit);
    }
    if let Some(limits) = &s.share_limits {
        engine.set_seeding_goal(now, entry.id, Some(limits.goal()));
    }
}
