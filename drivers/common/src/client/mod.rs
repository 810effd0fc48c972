//! A download or seed session over any runtime: reads the torrent, checks
//! the output folder, sets up the engine, storage, listener and UDP socket,
//! runs the loop, and reports progress through a callback. The runtime
//! crates' command lines and examples are thin layers over this.

mod prepare;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bittide_core::dht::SavedDht;
use bittide_core::engine::{DhtSettings, EncryptionMode, Engine, EngineConfig, Event, Transports};
use bittide_core::metainfo::Magnet;
use bittide_core::torrent::{TorrentEvent, TorrentState, TrackerStatus};
use bittide_core::wire::PeerId;
use bittide_core::{Bitfield, InfoHash, Rng, TorrentId};

use self::prepare::{
    check_content, check_folder, content_mismatch, magnet_ready, prepare, Prepared,
};
use crate::clock::os_seed;
use crate::control::AddTorrent;
use crate::dht_client::PUBLIC_ROUTERS;
use crate::driver::{Command, Control, Driver, Handle};
use crate::listen::ListenPlan;
use crate::resume;
use crate::runtime::Runtime;

/// How often resume data is written while running.
const RESUME_INTERVAL: Duration = Duration::from_secs(30);

/// What to do.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// What to download: a .torrent file or a magnet link.
    pub torrent: TorrentSource,
    /// For a magnet link: write the .torrent here once the metadata is in.
    pub save_torrent: Option<PathBuf>,
    /// The folder that holds (or will hold) `<name>`.
    pub folder: PathBuf,
    /// Keep serving after the download completes (until shut down).
    pub keep_seeding: bool,
    /// Where to accept peers, TCP and UDP (`None`: [`DEFAULT_PORT`] on
    /// every address if it is free, else any free port, so a seeder and a
    /// downloader can run side by side on one machine). Every IPv4
    /// address (`0.0.0.0`) means every IPv6 one too, where the host has
    /// IPv6 ([`dual_stack_twin`](crate::sockets::dual_stack_twin)).
    pub listen: Option<SocketAddr>,
    /// More addresses to accept peers on, typically the other family's
    /// (port 0: the port `listen` got).
    pub also_listen: Vec<SocketAddr>,
    /// Peers to connect to directly.
    pub peers: Vec<SocketAddr>,
    /// Fail when no useful peer was seen for this long, at any point of a
    /// download: none connected yet, or none sending data (all gone,
    /// banned, or idle). Not applied once complete.
    pub peer_timeout: Option<Duration>,
    /// Verify the data on disk even if resume data says it is good.
    pub recheck: bool,
    /// The state folder: resume data goes to `torrents/<info-hash>/`
    /// there (`None`: no resume data).
    pub state_dir: Option<PathBuf>,
    /// Most connected peers (default 50).
    pub max_peers: Option<usize>,
    /// Most connections per IP (default 1; tests running many peers on one
    /// loopback address raise it).
    pub max_peers_per_ip: Option<usize>,
    /// Download pieces in order (for streaming).
    pub sequential: bool,
    /// Download only these files (indices as `bittide info` lists them).
    pub only: Option<Vec<usize>>,
    /// Upload limit, bytes/s (0: none).
    pub upload_rate: u64,
    /// Download limit, bytes/s (0: none).
    pub download_rate: u64,
    /// Find peers on the DHT too (`None`: trackers and given peers only).
    pub dht: Option<SessionDht>,
    /// Serve content already on disk (`bittide seed`): every file must be
    /// where the torrent says before anything starts, and all of it must
    /// pass the check; otherwise the session ends with an error naming
    /// the path it expected, not a download that waits forever.
    pub seed_only: bool,
    /// Message stream encryption of peer connections (MSE/PE).
    pub encryption: EncryptionMode,
    /// Which transports carry peer connections (TCP, uTP).
    pub transports: Transports,
    /// Local service discovery (BEP 14): announce public torrents to the
    /// local network's multicast groups and take the peers heard there.
    pub lsd: bool,
    /// Download from the torrent's web seeds (BEP 19).
    pub web_seeds: bool,
}

impl SessionOptions {
    /// Downloading `torrent` into `folder` with every default: listen on
    /// [`DEFAULT_PORT`] or any free port, no DHT, no resume data, no
    /// limits, no timeout. Callers change what they need with struct
    /// update syntax (`SessionOptions { keep_seeding: true, ..o }`).
    pub fn new(torrent: TorrentSource, folder: PathBuf) -> SessionOptions {
        SessionOptions {
            torrent,
            save_torrent: None,
            folder,
            keep_seeding: false,
            listen: None,
            also_listen: Vec::new(),
            peers: Vec::new(),
            peer_timeout: None,
            recheck: false,
            state_dir: None,
            max_peers: None,
            max_peers_per_ip: None,
            sequential: false,
            only: None,
            upload_rate: 0,
            download_rate: 0,
            dht: None,
            seed_only: false,
            encryption: EncryptionMode::Enabled,
            transports: Transports::default(),
            lsd: false,
            web_seeds: true,
        }
    }
}

/// The port tried first when no listen address is given (the one
/// BitTorrent clients have used by tradition, BEP 3's range 6881–6889).
pub const DEFAULT_PORT: u16 = 6881;

/// Where the torrent comes from.
#[derive(Clone, Debug)]
pub enum TorrentSource {
    /// A .torrent file's bytes.
    File(Vec<u8>),
    /// A magnet link: the metadata comes from peers first (BEP 9).
    Magnet(Magnet),
}

/// The session's DHT node.
#[derive(Clone, Debug, Default)]
pub struct SessionDht {
    /// Nodes or routers to join through (`host:port`); without any, the
    /// state file's nodes, else the public routers.
    pub bootstrap: Vec<String>,
    /// Keeps our node id and known nodes between runs.
    pub state_file: Option<PathBuf>,
    /// Accept loopback and private-network nodes (tests, LANs).
    pub allow_local: bool,
}

/// How often the DHT state is saved while running.
pub(crate) const DHT_SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The engine's DHT settings from the session's, with the saved state;
/// `ipv6` when the session has an IPv6 UDP socket (BEP 32: a second node
/// runs there).
///
/// Also the state as read, for [`SavedDht::merged_over`] when saving.
pub(crate) fn dht_settings(d: &SessionDht, ipv6: bool) -> (DhtSettings, SavedDht) {
    let saved = d
        .state_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| SavedDht::decode(&b))
        .unwrap_or_default();
    let mut settings = DhtSettings::default();
    settings.config.table.allow_local = d.allow_local;
    settings.ipv6 = ipv6;
    if let Some(v4) = &saved.v4 {
        settings.config.id = Some(v4.id);
        settings.nodes.extend(v4.addrs());
    }
    if let Some(v6) = &saved.v6 {
        settings.id6 = Some(v6.id);
        settings.nodes.extend(v6.addrs());
    }
    for b in &d.bootstrap {
        match b.parse::<SocketAddr>() {
            Ok(a) => settings.nodes.push(a),
            Err(_) => settings.routers.push(b.clone()),
        }
    }
    if settings.nodes.is_empty() && settings.routers.is_empty() {
        settings.routers = PUBLIC_ROUTERS.iter().map(|r| (*r).to_owned()).collect();
    }
    (settings, saved)
}

/// Writes the DHT state atomically (errors are not worth stopping for).
pub fn save_dht(path: &Path, state: &[u8]) {
    // Two sessions may share the file: each writes its own temporary.
    let tmp = path.with_extension(format!("part.{}", std::process::id()));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::write(&tmp, state).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// A progress report, at least once a second and on every event.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The torrent's name (a magnet's `dn=` until the metadata is in).
    pub name: Option<String>,
    /// Its info-hash (`None` only for a magnet link without one, which
    /// the session refuses).
    pub info_hash: Option<InfoHash>,
    /// Where the content is: the folder joined with the torrent's name
    /// (`None` until a magnet's metadata is in).
    pub content: Option<PathBuf>,
    /// Bytes of wanted pieces on disk.
    pub done: u64,
    /// Bytes wanted in all (less than `size` with `only`).
    pub total: u64,
    /// The whole torrent's size.
    pub size: u64,
    /// Bytes that resume data vouched for at start (`None`: no resume
    /// data was used).
    pub resumed: Option<u64>,
    /// During the start-up check: pieces checked and pieces in all.
    pub checked: Option<(u32, u32)>,
    /// Every wanted piece is on disk and verified.
    pub complete: bool,
    /// Payload bytes downloaded so far.
    pub downloaded: u64,
    /// Payload bytes uploaded so far.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// Web seeds in use (BEP 19: not given up).
    pub web_seeds: usize,
    /// The torrent's state.
    pub state: TorrentState,
    /// A magnet link's metadata is still on its way (nothing else above
    /// is known yet but `peers`).
    pub fetching_metadata: bool,
}

impl Progress {
    /// Nothing known yet but the state: no name, no bytes, no peers.
    pub fn new(state: TorrentState) -> Progress {
        Progress {
            name: None,
            info_hash: None,
            content: None,
            done: 0,
            total: 0,
            size: 0,
            resumed: None,
            checked: None,
            complete: false,
            downloaded: 0,
            uploaded: 0,
            peers: 0,
            web_seeds: 0,
            state,
            fetching_metadata: false,
        }
    }
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
    /// Stopped by the user before the download was complete.
    pub const INTERRUPTED: u8 = 130;
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
    peer_id_from(os_seed())
}

/// The peer id (as [`random_peer_id`]) that `seed` gives: a seeded run
/// (the simulator's) stays a function of its seed.
pub fn peer_id_from(seed: bittide_core::Seed) -> PeerId {
    let mut id = *b"-BT0001-000000000000";
    let mut rng = Rng::new(seed);
    for b in &mut id[8..] {
        *b = b'0' + rng.below(10) as u8;
    }
    PeerId(id)
}

/// Runs one torrent to completion (or forever with `keep_seeding`, until
/// `handle` is told to shut down). `report` sees progress and events.
pub async fn run<R: Runtime>(
    rt: R,
    options: SessionOptions,
    on_start: impl FnOnce(Handle, SocketAddr),
    mut report: impl FnMut(&Progress, Option<&TorrentEvent>),
) -> Result<Progress, SessionError> {
    // A bad torrent or link is refused before anything is created.
    let prepared = match &options.torrent {
        TorrentSource::File(bytes) => Some(prepare(&options, bytes)?),
        TorrentSource::Magnet(m) if m.wire_hash().is_none() => {
            return Err(err(
                exit::BAD_TORRENT,
                "the magnet link has no info-hash (xt=urn:btih:… or xt=urn:btmh:…)",
            ));
        }
        TorrentSource::Magnet(_) => None,
    };
    // `seed` serves a folder that exists; a download makes its own. Only
    // then is anything written (the part file of unselected files).
    match (&prepared, options.seed_only) {
        (Some(p), true) => check_content(&options.folder, p)?,
        _ => check_folder(&options.folder)?,
    }
    if let Some(p) = &prepared {
        p.select()?;
    }

    let listener = match options.listen {
        Some(addr) => rt.listen(addr).await.map_err(|e| {
            err(
                exit::IO,
                format!("cannot listen on {addr}: {e} (--listen chooses another port)"),
            )
        })?,
        None => {
            let default = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT));
            match rt.listen(default).await {
                Ok(l) => l,
                Err(_) => rt
                    .listen(SocketAddr::from(([0, 0, 0, 0], 0)))
                    .await
                    .map_err(|e| err(exit::IO, format!("cannot listen on any port: {e}")))?,
            }
        }
    };
    let local = listener
        .local_addr()
        .map_err(|e| err(exit::IO, format!("listen address: {e}")))?;
    let udp_bind = SocketAddr::new(local.ip(), local.port());
    let udp = rt.bind_udp(udp_bind).await.ok();
    let more = ListenPlan::new(local, &options.also_listen);
    let ipv6 = more.has_ipv6();
    let (lsd, lsd_sockets) = match options.lsd {
        true => crate::lsd::join(&rt, ipv6).await,
        false => Default::default(),
    };

    let (dht, saved_dht) = match options.dht.as_ref().map(|d| dht_settings(d, ipv6)) {
        Some((settings, saved)) => (Some(settings), saved),
        None => (None, SavedDht::default()),
    };
    let mut config = EngineConfig {
        peer_id: random_peer_id(),
        listen_port: local.port(),
        dht,
        encryption: options.encryption,
        transports: options.transports,
        lsd,
        ..EngineConfig::default()
    };
    // A tighter in-memory budget than the core's default keeps a download's
    // footprint small (a 1 GiB download peaks at 27 MiB RSS, 40 with
    // 16 MiB) and still covers many peers' pipelines. Pieces over 2 MiB
    // are written through in hashed runs, about as fast as held ones.
    config.torrent.max_buffered_bytes = 8 << 20;
    config.torrent.upload_rate = options.upload_rate;
    config.torrent.download_rate = options.download_rate;
    config.torrent.web_seeds = options.web_seeds;
    if let Some(n) = options.max_peers {
        config.torrent.max_peers = n.max(1);
    }
    if let Some(n) = options.max_peers_per_ip {
        config.torrent.max_peers_per_ip = n.max(1);
        config.handshakes.max_per_ip = config.handshakes.max_per_ip.max(n);
    }
    let mut driver = Driver::new(rt.clone(), Engine::new(config, os_seed()));
    // Sockets first: the torrent's first announce goes out over the
    // families that bound.
    driver.listen(listener);
    for s in lsd_sockets {
        driver.receive_lsd(s);
    }
    let local_udp = udp.is_some();
    if let Some(s) = udp {
        driver.set_udp(s);
    }
    let families = more
        .bind(&rt, &mut driver, local_udp)
        .await
        .map_err(|(addr, e)| {
            err(
                exit::IO,
                format!("cannot listen on {addr}: {e} (--listen chooses another)"),
            )
        })?;
    driver.engine().set_listen_families(families);
    let now = rt.now();
    let id: TorrentId = match (&prepared, &options.torrent) {
        (Some(p), _) => {
            let mut peers = options.peers.clone();
            peers.extend(p.resume_peers.iter().copied());
            driver
                .add_torrent(AddTorrent {
                    info: p.info.clone(),
                    storage: p.storage.clone(),
                    start: p.start.clone(),
                    priorities: p.priorities.clone(),
                    sequential: options.sequential,
                    peers,
                    paused: false,
                })
                .ok_or_else(|| err(exit::BAD_TORRENT, "torrent added twice"))?
        }
        (None, TorrentSource::Magnet(m)) => {
            // `x.pe` host names are the engine's to resolve (`Output::Resolve`).
            driver
                .add_magnet(m, options.peers.clone())
                .ok_or_else(|| err(exit::BAD_TORRENT, "torrent added twice"))?
        }
        (None, TorrentSource::File(_)) => unreachable!("a file is prepared above"),
    };
    let handle = driver.handle();
    let mut prepared = prepared;
    let state_dir = options.state_dir.clone();
    let save_resume = move |p: &Prepared, have: Bitfield, peers: Vec<SocketAddr>| {
        if let Some(state) = &state_dir {
            let _ = resume::save(
                state,
                &p.info.info_hash,
                &have,
                &peers,
                &p.storage,
                p.file_count,
            );
        }
    };
    let mut last_save = now;
    let dht_file = options.dht.as_ref().and_then(|d| d.state_file.clone());
    let mut last_dht_save = now;
    let mut last_dht_snapshot = now;
    let mut dht_state: Option<Vec<u8>> = None;
    let mut saved_pieces = u32::MAX;
    on_start(driver.handle(), local);

    let mut useful = UsefulPeers::new(options.peer_timeout, now);
    let mut failure: Option<SessionError> = None;
    let mut last = Progress {
        name: match &options.torrent {
            TorrentSource::Magnet(m) => m.display_name.clone(),
            TorrentSource::File(_) => None,
        },
        info_hash: match &options.torrent {
            TorrentSource::Magnet(m) => m.wire_hash(),
            TorrentSource::File(_) => None,
        },
        fetching_metadata: matches!(options.torrent, TorrentSource::Magnet(_)),
        ..Progress::new(TorrentState::Checking)
    };
    if let Some(p) = &prepared {
        p.describe(&options.folder, &mut last);
    }
    let keep_seeding = options.keep_seeding;
    let mut final_state: Option<(Bitfield, Vec<SocketAddr>)> = None;
    driver
        .run(|event, engine: &Engine| {
            let now = rt.now();
            if let Some(Event::Torrent(_, TorrentEvent::MetadataReceived)) = event {
                // The metadata is in: the files are known, so storage,
                // resume data and file selection can be set up, then the
                // torrent starts.
                match magnet_ready(engine, id, &options) {
                    Ok(p) => {
                        handle.send(Command::StartMagnet {
                            torrent: id,
                            storage: p.storage.clone(),
                            start: p.start.clone(),
                            priorities: p.priorities.clone(),
                            sequential: options.sequential,
                            peers: p.resume_peers.clone(),
                        });
                        p.describe(&options.folder, &mut last);
                        prepared = Some(p);
                    }
                    Err(e) => {
                        failure = Some(e);
                        return Control::Shutdown;
                    }
                }
            }
            let Some(t) = engine.torrent(id) else {
                return Control::Shutdown;
            };
            if t.state() == TorrentState::FetchingMetadata {
                let f = t;
                last.peers = f.peer_count();
                last.fetching_metadata = true;
                if f.peer_count() > 0 {
                    // Metadata peers are useful while they are there.
                    useful.saw_useful(now);
                }
                report(&last, None);
                if let Some(e) = useful.expired(now, &f.trackers()) {
                    failure = Some(e);
                    return Control::Shutdown;
                }
                return Control::Continue;
            }
            let Some(p) = prepared.as_ref() else {
                return Control::Continue;
            };
            final_state = Some((t.have().clone(), t.peer_addrs()));
            let (uploaded, downloaded, left) = t.counters();
            let total = t.wanted_bytes();
            last.done = total.saturating_sub(left);
            last.total = total;
            last.downloaded = downloaded;
            last.uploaded = uploaded;
            last.peers = t.peer_count();
            last.web_seeds = t.web_seeds_in_use();
            last.state = t.state();
            last.checked = t.check_progress();
            last.complete = t.is_finished() && last.checked.is_none();
            last.fetching_metadata = false;
            let torrent_event = match event {
                Some(Event::Torrent(_, e)) => Some(e),
                _ => None,
            };
            let dht_changed = matches!(event, Some(Event::Dht(_)));
            if let (Some(path), Some(dht)) = (
                &dht_file,
                engine.dht_state().map(|d| d.merged_over(&saved_dht)),
            ) {
                // A snapshot a second at most (events can come by the
                // thousand), and before any ending, kept for the save at
                // exit.
                let ending = matches!(
                    torrent_event,
                    Some(TorrentEvent::Finished | TorrentEvent::StateChanged(_))
                        | Some(TorrentEvent::WriteFailed(_))
                );
                if dht_changed || ending || now - last_dht_snapshot >= Duration::from_secs(1) {
                    last_dht_snapshot = now;
                    dht_state = Some(dht.encode());
                }
                if dht_changed || now - last_dht_save >= DHT_SAVE_INTERVAL {
                    last_dht_save = now;
                    let (path, state) = (path.clone(), dht_state.clone().unwrap_or_default());
                    rt.spawn(rt.spawn_blocking(Box::new(move || save_dht(&path, &state))));
                }
            }
            report(&last, torrent_event);
            // Resume data every 30 s when something changed (flushing and
            // writing happen on the blocking pool).
            if now - last_save >= RESUME_INTERVAL && t.have().count() != saved_pieces {
                last_save = now;
                saved_pieces = t.have().count();
                let (have, peers, save) = (t.have().clone(), t.peer_addrs(), save_resume.clone());
                let p = p.clone();
                rt.spawn(rt.spawn_blocking(Box::new(move || save(&p, have, peers))));
            }
            if t.state() == TorrentState::Checking || downloaded > useful.downloaded {
                useful.downloaded = downloaded;
                useful.saw_useful(now);
            }
            match torrent_event {
                Some(TorrentEvent::PeerConnected { .. }) => useful.saw_useful(now),
                Some(TorrentEvent::Finished) if !keep_seeding => return Control::Shutdown,
                Some(TorrentEvent::WriteFailed(piece)) => {
                    let why = p
                        .storage
                        .write_error()
                        .unwrap_or_else(|| "disk full or not writable".into());
                    failure = Some(err(exit::IO, format!("could not write {piece}: {why}")));
                    return Control::Shutdown;
                }
                Some(TorrentEvent::StateChanged(TorrentState::Seeding))
                    if !keep_seeding && t.is_finished() =>
                {
                    return Control::Shutdown;
                }
                Some(TorrentEvent::StateChanged(TorrentState::Downloading))
                    if options.seed_only && last.checked.is_none() && !t.is_finished() =>
                {
                    // The check is over and pieces are missing: the content
                    // on disk is not this torrent's (or not all of it).
                    failure = Some(content_mismatch(&options.folder, &last, p));
                    return Control::Shutdown;
                }
                _ => {}
            }
            if !t.is_finished() {
                if let Some(e) = useful.expired(now, &t.trackers()) {
                    failure = Some(e);
                    return Control::Shutdown;
                }
            }
            Control::Continue
        })
        .await;
    if let (Some((have, peers)), Some(p)) = (final_state, &prepared) {
        save_resume(p, have, peers);
    }
    if let (Some(path), Some(state)) = (&dht_file, &dht_state) {
        save_dht(path, state);
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(last),
    }
}

/// A tracker as the user is shown it: scheme, host and port only. The
/// rest of an announce URL can hold a private tracker's passkey, and a
/// request's query the info-hash and peer id.
pub fn tracker_name(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Credentials before an `@` are as private as a passkey.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{}://{host}", scheme.to_ascii_lowercase())
    }
}

/// `--timeout`: how long since a peer was last of use (connected, or
/// sending data), and the error once that is too long.
struct UsefulPeers {
    limit: Option<Duration>,
    since: bittide_core::Instant,
    ever: bool,
    /// Payload bytes downloaded when last seen.
    downloaded: u64,
}

impl UsefulPeers {
    fn new(limit: Option<Duration>, now: bittide_core::Instant) -> UsefulPeers {
        UsefulPeers {
            limit,
            since: now,
            ever: false,
            downloaded: 0,
        }
    }

    fn saw_useful(&mut self, now: bittide_core::Instant) {
        self.since = now;
        self.ever = true;
    }

    /// The error to stop with, if the limit has passed: when no peer ever
    /// came and every tracker refused, could not be reached or never
    /// answered, the trackers are why (exit 5), not the swarm.
    fn expired(
        &self,
        now: bittide_core::Instant,
        trackers: &[TrackerStatus],
    ) -> Option<SessionError> {
        let limit = self.limit?;
        if now - self.since < limit {
            return None;
        }
        let secs = limit.as_secs();
        // A tracker that has not answered within the limit (a UDP one
        // waits out BEP 15's 15 s retransmission before it calls itself
        // failed) gave as little as one that refused.
        let failed: Vec<String> = trackers
            .iter()
            .filter_map(|t| match (&t.error, t.last) {
                (Some(e), _) => Some(format!("{}: {e}", tracker_name(&t.url))),
                (None, None) => Some(format!("{}: no answer", tracker_name(&t.url))),
                (None, Some(_)) => None,
            })
            .collect();
        let all_failed = !trackers.is_empty() && failed.len() == trackers.len();
        Some(match (all_failed, self.ever) {
            (true, false) => err(
                exit::TRACKER,
                format!(
                    "no peers within {secs} s: every tracker failed ({})",
                    failed.join("; ")
                ),
            ),
            (false, false) => err(exit::NO_PEERS, format!("no peers found within {secs} s")),
            (_, true) => err(
                exit::NO_PEERS,
                format!(
                    "no useful peer for {secs} s (every peer left, was banned or sent nothing)"
                ),
            ),
        })
    }
}
