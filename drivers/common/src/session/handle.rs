//! [`SessionHandle`]: what the HTTP API and tools call on a running
//! session. Every method checks its input, does any file work on the
//! runtime's blocking pool, and turns into commands and queries on the
//! loop's control channel.

use std::sync::Arc;
use std::time::Duration;

use async_channel::Receiver;
use bittide_core::metainfo::{Magnet, Metainfo};
use bittide_core::picker::Priority;
use bittide_core::{InfoHash, TorrentId};

use super::registry::{self, Entry};
use super::relocate;
use super::state::{SessionFile, TorrentSettings};
use super::views::{
    AddOptions, AddSource, PriorityChanges, RequestError, SessionEvent, SessionSettings,
    SessionStats, SettingsPatch, TorrentDetails, TorrentView,
};
use super::{only_priorities, prepare, unix_now, Shared};
use crate::control::{AddTorrent, Command, Query, View};
use crate::driver::Handle;
use crate::runtime::Runtime;

/// Events queued per listener before it is dropped as too slow.
const EVENT_QUEUE: usize = 1024;
/// Largest .torrent fetched from a URL.
const MAX_TORRENT_BYTES: u64 = 16 << 20;
/// How long fetching a .torrent URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on a running [`Session`](super::Session); cheap to clone.
#[derive(Clone)]
pub struct SessionHandle<R: Runtime> {
    pub(super) rt: R,
    pub(super) driver: Handle,
    pub(super) shared: Arc<Shared>,
}

impl<R: Runtime> std::fmt::Debug for SessionHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

/// A question answered in the loop with the registry at hand.
struct Ask<F>(Arc<Shared>, F);

impl<T: Send + 'static, F: FnOnce(&View<'_>, &mut registry::Registry) -> T + Send + 'static> Query
    for Ask<F>
{
    type Answer = T;
    fn answer(self, view: &View<'_>) -> T {
        let mut reg = self.0.registry();
        (self.1)(view, &mut reg)
    }
}

/// The session file as it should be now: queue order and settings.
pub(crate) fn queue_file(shared: &Shared) -> SessionFile {
    let reg = shared.registry();
    SessionFile {
        queue: reg.queue.clone(),
        settings: Some(reg.settings.clone()),
    }
}

pub(super) fn io_error(e: std::io::Error) -> RequestError {
    RequestError::Io(e.to_string())
}

impl<R: Runtime> SessionHandle<R> {
    pub(super) fn new(rt: R, driver: Handle, shared: Arc<Shared>) -> SessionHandle<R> {
        SessionHandle { rt, driver, shared }
    }

    pub(super) fn send(&self, command: Command) -> Result<(), RequestError> {
        if self.driver.send(command) {
            Ok(())
        } else {
            Err(RequestError::ShuttingDown)
        }
    }

    pub(super) async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>, &mut registry::Registry) -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        self.driver
            .query(Ask(self.shared.clone(), f))
            .await
            .ok_or(RequestError::ShuttingDown)
    }

    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        self.rt.spawn_blocking(Box::new(f)).await
    }

    /// Writes a file of the state folder (a registry) atomically, off the
    /// loop.
    pub(super) async fn save_state_file(
        &self,
        name: &'static str,
        bytes: Vec<u8>,
    ) -> Result<(), RequestError> {
        let path = self.shared.state.root().join(name);
        self.blocking(move || super::state::write_atomic(&path, &bytes))
            .await
            .map_err(io_error)
    }

    /// The torrent's id, or `NotFound`.
    pub(super) fn id(&self, hash: InfoHash) -> Result<TorrentId, RequestError> {
        self.shared
            .registry()
            .entries
            .get(&hash)
            .map(|e| e.id)
            .ok_or(RequestError::NotFound(hash))
    }

    /// Changes a torrent's stored settings and writes them (off the loop).
    pub(super) async fn update(
        &self,
        hash: InfoHash,
        f: impl FnOnce(&mut Entry),
    ) -> Result<(), RequestError> {
        {
            let mut reg = self.shared.registry();
            let e = reg
                .entries
                .get_mut(&hash)
                .ok_or(RequestError::NotFound(hash))?;
            f(e);
        }
        self.persist(hash).await
    }

    /// Writes a torrent's settings as they are now, off the loop.
    pub(super) async fn persist(&self, hash: InfoHash) -> Result<(), RequestError> {
        let shared = self.shared.clone();
        self.blocking(move || shared.persist_settings(&hash))
            .await
            .map_err(io_error)
    }

    /// Adds a torrent from a .torrent file, a magnet link or an http(s)
    /// URL. It is written to the state folder before the engine sees it,
    /// so once this returns it survives a crash.
    pub async fn add(
        &self,
        source: AddSource,
        options: AddOptions,
    ) -> Result<InfoHash, RequestError> {
        let source = match source {
            AddSource::Url(url) => AddSource::TorrentFile(self.fetch(url).await?),
            s => s,
        };
        let (hash, torrent, magnet) = match &source {
            AddSource::TorrentFile(bytes) => {
                let m = Metainfo::from_bytes(bytes)
                    .map_err(|e| RequestError::BadTorrent(e.to_string()))?;
                let files = m.info.files().len();
                if let Some(bad) = options.only.iter().flatten().find(|&&i| i >= files) {
                    return Err(RequestError::BadRequest(format!(
                        "only: the torrent has no file {bad} (it has {files})"
                    )));
                }
                (m.info_hash, Some(bytes.clone()), None)
            }
            AddSource::Magnet(link) => {
                let m = Magnet::parse(link).map_err(|e| RequestError::BadTorrent(e.to_string()))?;
                let hash = m.wire_hash().ok_or_else(|| {
                    RequestError::BadTorrent(
                        "the magnet link has no info-hash (xt=urn:btih:… or xt=urn:btmh:…)".into(),
                    )
                })?;
                (hash, None, Some(link.clone()))
            }
            AddSource::Url(_) => unreachable!("fetched above"),
        };
        {
            let mut reg = self.shared.registry();
            if reg.shutting_down {
                return Err(RequestError::ShuttingDown);
            }
            if reg.entries.contains_key(&hash) || !reg.adding.insert(hash) {
                return Err(RequestError::Duplicate(hash));
            }
        }
        let added = self.add_new(hash, torrent, magnet, options).await;
        self.shared.registry().adding.remove(&hash);
        added.map(|()| hash)
    }

    async fn add_new(
        &self,
        hash: InfoHash,
        torrent: Option<Vec<u8>>,
        magnet: Option<String>,
        options: AddOptions,
    ) -> Result<(), RequestError> {
        let (save_path, content_layout) = {
            let defaults = &self.shared.registry().settings;
            (
                options
                    .save_path
                    .clone()
                    .unwrap_or_else(|| defaults.download_dir.clone()),
                options.content_layout.unwrap_or(defaults.content_layout),
            )
        };
        let settings = TorrentSettings {
            save_path,
            content_layout,
            paused: options.paused,
            sequential: options.sequential,
            first_last_piece: options.first_last_piece,
            category: options.category.clone(),
            tags: options.tags.clone(),
            priorities: None,
            only: options.only.clone(),
            added_at: unix_now(),
            peers: options
                .peers
                .iter()
                .copied()
                .take(crate::resume::MAX_PEERS)
                .collect(),
            ..TorrentSettings::default()
        };
        let shared = self.shared.clone();
        let (s, t, m) = (settings.clone(), torrent.clone(), magnet.clone());
        // On disk first, then prepared (resume data, existing files).
        let prepared = self
            .blocking(move || {
                shared
                    .state
                    .save_new(&hash, t.as_deref(), m.as_deref(), &s)?;
                Ok::<_, std::io::Error>(t.map(|bytes| {
                    let metainfo = Metainfo::from_bytes(&bytes).ok()?;
                    let files = metainfo.info.files().len();
                    Some((prepare(&shared.state, &metainfo, &s), files))
                }))
            })
            .await
            .map_err(io_error)?;
        let now = self.rt.now();
        let mut settings = settings;
        let mut name = hash.to_string();
        let mut storage = None;
        let mut layout = None;
        let id = match (prepared.flatten(), &magnet) {
            (Some((p, files)), _) => {
                if let Some(only) = &options.only {
                    settings.priorities = Some(only_priorities(only, files));
                }
                name = p.name.clone();
                layout = Some(p.info.layout.clone());
                storage = Some(p.storage.clone());
                let mut add = AddTorrent::new(p.info, p.storage, p.start);
                add.priorities = settings.priorities.clone();
                add.sequential = options.sequential;
                add.peers = p.peers;
                add.peers.extend(options.peers.iter().copied());
                add.paused = options.paused;
                self.driver.add_torrent(add).await
            }
            (None, Some(link)) => {
                let m = Magnet::parse(link).map_err(|e| RequestError::BadTorrent(e.to_string()))?;
                if let Some(n) = &m.display_name {
                    name = n.clone();
                }
                let id = self.driver.add_magnet(m, options.peers.clone()).await;
                if let (Ok(id), true) = (&id, options.paused) {
                    self.send(Command::Pause(*id))?;
                }
                id
            }
            (None, None) => return Err(RequestError::BadTorrent("unreadable".into())),
        };
        let Ok(id) = id else {
            let shared = self.shared.clone();
            let _ = self.blocking(move || shared.state.remove(&hash)).await;
            return Err(RequestError::ShuttingDown);
        };
        let mut entry = Entry::new(id, name, settings, now);
        entry.magnet = magnet;
        entry.storage = storage;
        if let Some(l) = &layout {
            entry.learn_layout(l);
        }
        let write_priorities = entry.settings.priorities.is_some();
        let name = entry.name.clone();
        {
            let mut reg = self.shared.registry();
            reg.insert(hash, entry);
            reg.broadcast(SessionEvent::Added {
                info_hash: hash,
                name,
            });
        }
        if write_priorities {
            self.persist(hash).await?;
        }
        self.save_queue().await;
        Ok(())
    }

    /// Fetches a .torrent from an http(s) URL, off the loop.
    async fn fetch(&self, url: String) -> Result<Vec<u8>, RequestError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RequestError::BadRequest(
                "url: only http:// and https:// URLs are fetched".into(),
            ));
        }
        self.blocking(move || crate::tracker::fetch(&url, FETCH_TIMEOUT, MAX_TORRENT_BYTES))
            .await
            .map_err(RequestError::Fetch)
    }

    async fn save_queue(&self) {
        // The loop's answer comes after every command sent before it.
        let _ = self.ask(|view, reg| reg.learn_queue(view.engine())).await;
        let file = queue_file(&self.shared);
        let shared = self.shared.clone();
        let _ = self
            .blocking(move || shared.state.save_session(&file))
            .await;
    }

    /// Every torrent, in queue order.
    pub async fn list(&self) -> Result<Vec<TorrentView>, RequestError> {
        let now = self.rt.now();
        self.ask(move |view, reg| {
            reg.learn_queue(view.engine());
            reg.queue
                .iter()
                .enumerate()
                .filter_map(|(position, hash)| {
                    let e = reg.entries.get(hash)?;
                    Some(registry::view(*hash, e, view.engine(), position, now))
                })
                .collect()
        })
        .await
    }

    /// One torrent with its files, peers, trackers and pieces.
    pub async fn torrent(&self, hash: InfoHash) -> Result<TorrentDetails, RequestError> {
        let now = self.rt.now();
        self.ask(move |view, reg| {
            reg.learn_queue(view.engine());
            let position = reg.position(&hash);
            reg.entries
                .get(&hash)
                .map(|e| registry::details(hash, e, view.engine(), position, now))
                .ok_or(RequestError::NotFound(hash))
        })
        .await?
    }

    /// Pauses a torrent (kept across restarts).
    pub async fn pause(&self, hash: InfoHash) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::Pause(id))?;
        self.update(hash, |e| e.settings.paused = true).await
    }

    /// Resumes a torrent (clearing a disk error it stopped on). One
    /// waiting for missing files resumes only once they are all back (it
    /// then checks them); until then it keeps waiting.
    pub async fn resume(&self, hash: InfoHash) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        if self.still_missing(hash).await? {
            return Ok(());
        }
        self.send(Command::Resume(id))?;
        self.update(hash, |e| {
            e.settings.paused = false;
            e.error = None;
        })
        .await
    }

    /// Force-starts a torrent (resuming it; it runs outside the queue's
    /// active limits) or puts it back under the limits; kept with its
    /// settings.
    pub async fn set_force_start(&self, hash: InfoHash, on: bool) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::SetForceStart(id, on))?;
        if on {
            self.resume(hash).await?;
        }
        self.update(hash, |e| e.settings.force_start = on).await
    }

    /// Removes a torrent, and with `delete_data` its files too.
    pub async fn remove(&self, hash: InfoHash, delete_data: bool) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::Remove(id))?;
        // Once this answers, the loop has removed it: no new disk job for
        // it will start.
        let removed = self
            .ask(move |view, reg| {
                let counters = view.engine().torrent(id).map(|t| {
                    let (u, d, _) = t.counters();
                    (u, d)
                });
                let storage = reg.entries.get(&hash).and_then(|e| e.storage.clone());
                let save_path = reg.entries.get(&hash).map(|e| e.settings.save_path.clone());
                reg.remove(&hash, counters);
                reg.broadcast(SessionEvent::Removed { info_hash: hash });
                (storage, save_path)
            })
            .await?;
        // Its streams see it gone and end.
        self.shared.streams.wake(id);
        let shared = self.shared.clone();
        self.blocking(move || {
            let (storage, save_path) = removed;
            if let Some(s) = &storage {
                // A job already running finishes against closed files.
                s.close();
            }
            if let (true, Some(s), Some(root)) = (delete_data, &storage, &save_path) {
                relocate::delete_files(s, root)?;
            }
            shared.state.remove(&hash)
        })
        .await
        .map_err(io_error)?;
        self.save_queue().await;
        Ok(())
    }

    /// Sets the priority of some files; the others keep theirs.
    pub async fn set_file_priorities(
        &self,
        hash: InfoHash,
        changes: PriorityChanges,
    ) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        let (priorities, storage) = {
            let mut reg = self.shared.registry();
            let e = reg
                .entries
                .get_mut(&hash)
                .ok_or(RequestError::NotFound(hash))?;
            let Some(storage) = &e.storage else {
                return Err(RequestError::BadRequest(
                    "its files are not known yet (the metadata has not arrived)".into(),
                ));
            };
            let storage = storage.clone();
            let files = e.file_count;
            if let Some((bad, _)) = changes.iter().find(|(i, _)| *i >= files) {
                return Err(RequestError::BadRequest(format!(
                    "the torrent has no file {bad} (it has {files})"
                )));
            }
            let mut p = e
                .settings
                .priorities
                .clone()
                .unwrap_or_else(|| vec![Priority::Normal; files]);
            for (i, prio) in &changes {
                p[*i] = *prio;
            }
            (p, storage)
        };
        // Files selected again get their bytes from the part file before
        // the engine fetches the rest.
        let wanted = priorities.clone();
        self.blocking(move || storage.set_priorities(Some(&wanted)))
            .await
            .map_err(io_error)?;
        self.send(Command::SetFilePriorities(id, priorities.clone()))?;
        let layout = self.ask(move |view, _| view.layout(id).cloned()).await?;
        self.update(hash, |e| {
            e.settings.priorities = Some(priorities);
            if let Some(l) = &layout {
                e.learn_layout(l);
            }
        })
        .await
    }

    /// A torrent's own upload and download limits, bytes/s (0: none).
    pub async fn set_torrent_limits(
        &self,
        hash: InfoHash,
        upload: u64,
        download: u64,
    ) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::SetRateLimits {
            torrent: id,
            upload,
            download,
        })?;
        self.update(hash, |e| {
            e.settings.upload_limit = upload;
            e.settings.download_limit = download;
        })
        .await
    }

    /// Downloads in piece order (or rarest first again).
    pub async fn set_sequential(&self, hash: InfoHash, on: bool) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::SetSequential(id, on))?;
        self.update(hash, |e| e.settings.sequential = on).await
    }

    /// Its category (`None`: none).
    pub async fn set_category(
        &self,
        hash: InfoHash,
        category: Option<String>,
    ) -> Result<(), RequestError> {
        self.update(hash, |e| e.settings.category = category).await
    }

    /// Its tags.
    pub async fn set_tags(&self, hash: InfoHash, tags: Vec<String>) -> Result<(), RequestError> {
        self.update(hash, |e| e.settings.tags = tags).await
    }

    /// Verifies its data on disk again.
    pub async fn recheck(&self, hash: InfoHash) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        if self.stop_waiting(hash)? {
            // It was added paused to check at its start: resuming it is
            // the recheck (what is still missing is downloaded again).
            return self.resume(hash).await;
        }
        self.send(Command::Recheck(id))
    }

    /// Announces to its trackers now.
    pub async fn reannounce(&self, hash: InfoHash) -> Result<(), RequestError> {
        self.send(Command::Reannounce(self.id(hash)?))
    }

    /// First and last piece of each file before the rest (previews).
    pub async fn set_first_last_piece(&self, hash: InfoHash, on: bool) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::SetFirstLastPiece(id, on))?;
        self.update(hash, |e| e.settings.first_last_piece = on)
            .await
    }

    /// Its place in the queue (0 runs first).
    pub async fn set_queue_position(
        &self,
        hash: InfoHash,
        position: usize,
    ) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        self.send(Command::SetQueuePosition(id, position))?;
        self.save_queue().await;
        Ok(())
    }

    /// The whole session's figures.
    pub async fn stats(&self) -> Result<SessionStats, RequestError> {
        let (listen, started) = (self.shared.listen, self.shared.started);
        let now = self.rt.now();
        self.ask(move |view, reg| {
            let engine = view.engine();
            let mut s = SessionStats {
                download_rate: 0,
                upload_rate: 0,
                downloaded: reg.removed.downloaded,
                uploaded: reg.removed.uploaded,
                torrents: reg.entries.len(),
                downloading: 0,
                seeding: 0,
                paused: 0,
                queued: 0,
                connections: 0,
                dht_nodes: engine.dht_nodes(),
                disk_read: reg.removed.disk_read,
                disk_written: reg.removed.disk_written,
                uptime: (now - started).as_secs(),
                listen,
            };
            for e in reg.entries.values() {
                let t = engine.torrent(e.id);
                let (d, u) = e.rates.rates();
                s.download_rate += d;
                s.upload_rate += u;
                if let Some(t) = t {
                    let (up, down, _) = t.counters();
                    s.uploaded += up;
                    s.downloaded += down;
                    s.connections += t.peer_count();
                }
                if let Some(storage) = &e.storage {
                    s.disk_read += storage.bytes_read();
                    s.disk_written += storage.bytes_written();
                }
                match registry::status(e, t) {
                    super::views::TorrentStatus::Downloading => s.downloading += 1,
                    super::views::TorrentStatus::Seeding => s.seeding += 1,
                    super::views::TorrentStatus::Paused => s.paused += 1,
                    super::views::TorrentStatus::Queued => s.queued += 1,
                    _ => {}
                }
            }
            s
        })
        .await
    }

    /// The session-wide settings.
    pub async fn settings(&self) -> Result<SessionSettings, RequestError> {
        Ok(self.shared.registry().settings.clone())
    }

    /// Changes session-wide settings (kept in the state folder).
    pub async fn set_settings(
        &self,
        patch: SettingsPatch,
    ) -> Result<SessionSettings, RequestError> {
        let settings = {
            let mut reg = self.shared.registry();
            let s = &mut reg.settings;
            if let Some(v) = patch.upload_rate {
                s.upload_rate = v;
            }
            if let Some(v) = patch.download_rate {
                s.download_rate = v;
            }
            if let Some(v) = patch.max_connections {
                s.max_connections = v;
            }
            if let Some(v) = patch.active_downloads {
                s.active_downloads = v;
            }
            if let Some(v) = patch.active_seeds {
                s.active_seeds = v;
            }
            if let Some(v) = patch.seed_ratio {
                if v.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
                    return Err(RequestError::BadRequest(
                        "seed_ratio must be a number ≥ 0".into(),
                    ));
                }
                s.seed_ratio = v;
            }
            if let Some(v) = patch.seed_time {
                s.seed_time = v;
            }
            if let Some(v) = patch.seed_inactive_time {
                s.seed_inactive_time = v;
            }
            if let Some(v) = patch.content_layout {
                s.content_layout = v;
            }
            if let Some(v) = patch.seed_goal_remove {
                s.seed_goal_remove = v;
            }
            if let Some(v) = patch.download_dir {
                s.download_dir = v;
            }
            s.clone()
        };
        self.send(Command::SetLimits(super::limits(&settings)))?;
        self.send(Command::SetDefaultSeedingGoal(super::seeding_goal(
            &settings,
        )))?;
        self.save_queue().await;
        Ok(settings)
    }

    /// A stream of what happens; a listener that falls more than
    /// [`EVENT_QUEUE`] events behind is dropped (its stream ends).
    pub fn subscribe(&self) -> Receiver<SessionEvent> {
        let (tx, rx) = async_channel::bounded(EVENT_QUEUE);
        self.shared.registry().subscribers.push(tx);
        rx
    }

    /// Shuts the session down gracefully: trackers hear `stopped`, the
    /// disks are synced, resume data and settings written.
    pub fn shutdown(&self) {
        self.shared.registry().shutting_down = true;
        let _ = self.driver.send(Command::Shutdown);
    }
}
