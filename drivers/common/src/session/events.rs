//! The loop's side of a session: what each engine event means for the
//! registry, the state folder and the event stream, and the once-a-second
//! beat (rates, resume data of torrents that changed, a stats event). All
//! file work is handed to the blocking pool; nothing here blocks the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bittide_core::engine::Engine;
use bittide_core::metainfo::Metainfo;
use bittide_core::torrent::{TorrentEvent, TorrentState};
use bittide_core::{Bitfield, InfoHash, Instant, TorrentId};

use super::registry::{self, Entry, Registry};
use super::state::StateDir;
use super::views::{self, SessionEvent, TorrentView};
use super::{only_priorities, prepare, unix_now, SessionHandle, Shared};
use crate::control::Command;
use crate::disk::Storage;
use crate::driver::Handle;
use crate::resume;
use crate::runtime::Runtime;

/// How often a torrent's resume data is written while it changes.
const RESUME_INTERVAL: Duration = Duration::from_secs(30);
/// How often the DHT state is saved.
pub(super) const DHT_SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A seed reached its goal and the engine paused it: the pause is kept
/// across restarts, or the torrent is removed (its data kept) if the
/// user asked for that.
pub(super) fn goal_reached<R: Runtime>(
    rt: &R,
    shared: &Arc<Shared>,
    handle: &Handle,
    id: TorrentId,
) {
    let (hash, remove) = {
        let mut reg = shared.registry();
        let remove = reg.settings.seed_goal_remove;
        let Some(&hash) = reg.by_id.get(&id) else {
            return;
        };
        if let Some(e) = reg.entries.get_mut(&hash) {
            e.settings.paused = true;
        }
        reg.broadcast(SessionEvent::StateChanged {
            info_hash: hash,
            state: views::TorrentStatus::Paused,
        });
        (hash, remove)
    };
    let session = SessionHandle::new(rt.clone(), handle.clone(), shared.clone());
    rt.spawn(Box::pin(async move {
        if remove {
            let _ = session.remove(hash, false).await;
        } else {
            let _ = session.persist(hash).await;
        }
    }));
}

/// A torrent's event: bookkeeping, state files, and the event stream.
pub(super) fn on_torrent_event<R: Runtime>(
    rt: &R,
    shared: &Arc<Shared>,
    handle: &Handle,
    engine: &Engine,
    id: TorrentId,
    event: &TorrentEvent,
    now: Instant,
) {
    if matches!(
        event,
        TorrentEvent::PieceDone(_) | TorrentEvent::StateChanged(_)
    ) {
        shared.streams.wake(id);
    }
    let mut reg = shared.registry();
    let Some(&hash) = reg.by_id.get(&id) else {
        return;
    };
    match event {
        TorrentEvent::MetadataReceived => {
            let Some(bytes) = engine.magnet_torrent_file(id) else {
                return;
            };
            drop(reg);
            metadata_received(rt, shared.clone(), handle.clone(), hash, id, bytes);
        }
        TorrentEvent::StateChanged(s) => {
            let state = engine
                .torrent(id)
                .zip(reg.entries.get(&hash))
                .map(|(t, e)| registry::status(e, Some(t)));
            if *s == TorrentState::Seeding {
                if let Some(e) = reg.entries.get_mut(&hash) {
                    if e.settings.completed_at.is_none() {
                        e.settings.completed_at = Some(unix_now());
                    }
                }
            }
            if let Some(state) = state {
                reg.broadcast(SessionEvent::StateChanged {
                    info_hash: hash,
                    state,
                });
            }
        }
        TorrentEvent::Finished => {
            reg.broadcast(SessionEvent::Finished { info_hash: hash });
            // Resume data now: a finished torrent should never be checked
            // again after a restart.
            if let Some(e) = reg.entries.get_mut(&hash) {
                if e.settings.completed_at.is_none() {
                    e.settings.completed_at = Some(unix_now());
                }
                save_resume(rt, shared, e, engine, hash, now);
            }
        }
        TorrentEvent::WriteFailed(piece) => {
            drop(reg);
            let why = format!("could not write {piece}");
            fail(shared, handle, id, engine, &why);
        }
        _ => {}
    }
}

/// A disk error stopped a torrent: it is paused and shows the error until
/// resumed.
pub(super) fn fail(shared: &Shared, handle: &Handle, id: TorrentId, _: &Engine, what: &str) {
    let mut reg = shared.registry();
    let Some(&hash) = reg.by_id.get(&id) else {
        return;
    };
    let Some(e) = reg.entries.get_mut(&hash) else {
        return;
    };
    let why = e
        .storage
        .as_ref()
        .and_then(|s| s.write_error())
        .unwrap_or_else(|| "disk full or not writable".into());
    let message = format!("{what}: {why}");
    e.error = Some(message.clone());
    handle.send(Command::Pause(id));
    reg.broadcast(SessionEvent::Error {
        info_hash: hash,
        message,
    });
}

/// A magnet's metadata is in: its .torrent goes to the state folder, its
/// storage is set up (off the loop), and the torrent starts.
fn metadata_received<R: Runtime>(
    rt: &R,
    shared: Arc<Shared>,
    handle: Handle,
    hash: InfoHash,
    id: TorrentId,
    bytes: Vec<u8>,
) {
    let settings = match shared.registry().entries.get(&hash) {
        Some(e) => e.settings.clone(),
        None => return,
    };
    let job = rt.spawn_blocking(Box::new(move || {
        let saved = shared.state.save_metadata(&hash, &bytes);
        let Ok(metainfo) = Metainfo::from_bytes(&bytes) else {
            return;
        };
        let p = prepare(&shared.state, &metainfo, &settings);
        let files = metainfo.info.files().len();
        let mut reg = shared.registry();
        let Some(e) = reg.entries.get_mut(&hash) else {
            return;
        };
        e.name = p.name.clone();
        e.magnet = None;
        if let Some(only) = &e.settings.only {
            e.settings.priorities = Some(only_priorities(only, files));
        }
        e.learn_layout(&p.info.layout);
        e.storage = Some(p.storage.clone());
        let priorities = e.settings.priorities.clone();
        let settings = e.settings.clone();
        let name = e.name.clone();
        if let Err(err) = saved.and_then(|()| shared.state.save_settings(&hash, &settings)) {
            e.error = Some(format!(
                "cannot keep the torrent in the state folder: {err}"
            ));
        }
        reg.broadcast(SessionEvent::MetadataReceived {
            info_hash: hash,
            name,
        });
        drop(reg);
        handle.send(Command::StartMagnet {
            torrent: id,
            storage: p.storage,
            start: p.start,
            priorities,
            sequential: settings.sequential,
            peers: p.peers,
        });
    }));
    rt.spawn(job);
}

/// Writes a torrent's resume data and settings (with totals) off the loop.
fn save_resume<R: Runtime>(
    rt: &R,
    shared: &Arc<Shared>,
    e: &mut Entry,
    engine: &Engine,
    hash: InfoHash,
    now: Instant,
) {
    let (Some(t), Some(storage)) = (engine.torrent(e.id), e.storage.clone()) else {
        return;
    };
    if t.metadata().is_none() && e.magnet.is_some() {
        return;
    }
    e.saved_pieces = Some(t.have().count());
    e.last_save = now;
    e.learn_history(t, now);
    let save = FinalSave {
        hash,
        have: t.have().clone(),
        peers: t.peer_addrs(),
        storage,
        file_count: e.file_count,
    };
    let shared = shared.clone();
    rt.spawn(rt.spawn_blocking(Box::new(move || {
        save.write_resume(&shared.state);
        let _ = shared.persist_settings(&hash);
    })));
}

/// What to write for one torrent's resume data.
pub(super) struct FinalSave {
    hash: InfoHash,
    have: Bitfield,
    peers: Vec<SocketAddr>,
    storage: Arc<Storage>,
    file_count: usize,
}

impl FinalSave {
    pub(super) fn write_resume(&self, state: &StateDir) {
        let _ = resume::save(
            state.root(),
            &self.hash,
            &self.have,
            &self.peers,
            &self.storage,
            self.file_count,
        );
    }
}

/// Every torrent's resume data as the engine stops (their counters are
/// taken too, for the settings written after).
pub(super) fn final_state(shared: &Shared, engine: &Engine, now: Instant) -> Vec<FinalSave> {
    let mut reg = shared.registry();
    reg.entries
        .iter_mut()
        .filter_map(|(hash, e)| {
            let t = engine.torrent(e.id)?;
            e.learn_history(t, now);
            // Its resume data still says what its missing files held.
            let storage = e.storage.clone().filter(|_| !e.missing_files)?;
            Some(FinalSave {
                hash: *hash,
                have: t.have().clone(),
                peers: t.peer_addrs(),
                storage,
                file_count: e.file_count,
            })
        })
        .collect()
}

/// When the once-a-second work is due.
pub(super) struct Beats {
    last: Instant,
    last_dht: Instant,
}

impl Beats {
    pub(super) fn new(now: Instant) -> Beats {
        Beats {
            last: now,
            last_dht: now,
        }
    }

    pub(super) fn due(&mut self, now: Instant) -> bool {
        if now - self.last >= Duration::from_secs(1) {
            self.last = now;
            return true;
        }
        false
    }

    pub(super) fn dht_due(&mut self, now: Instant) -> bool {
        if now - self.last_dht >= DHT_SAVE_INTERVAL {
            self.last_dht = now;
            return true;
        }
        false
    }
}

/// Once a second: rates, resume data of torrents that changed, and a
/// stats event.
pub(super) fn beat<R: Runtime>(rt: &R, shared: &Arc<Shared>, engine: &Engine, now: Instant) {
    let mut reg = shared.registry();
    let (mut down, mut up) = (0, 0);
    let hashes: Vec<InfoHash> = reg.entries.keys().copied().collect();
    for hash in hashes {
        let Some(e) = reg.entries.get_mut(&hash) else {
            continue;
        };
        let Some(t) = engine.torrent(e.id) else {
            continue;
        };
        let (u, d, _) = t.counters();
        e.rates.sample(now, d, u);
        e.learn_history(t, now);
        let (rd, ru) = e.rates.rates();
        down += rd;
        up += ru;
        // One waiting for missing files keeps the resume data that says
        // what they held.
        let changed = !e.missing_files && e.saved_pieces != Some(t.have().count());
        if changed && now - e.last_save >= RESUME_INTERVAL {
            save_resume(rt, shared, e, engine, hash, now);
        }
    }
    reg.learn_queue(engine);
    if !reg.subscribers.is_empty() {
        let torrents = changed_rows(&mut reg, engine, now);
        reg.broadcast(SessionEvent::Stats {
            download_rate: down,
            upload_rate: up,
            torrents,
        });
    }
}

/// The list rows that differ from what the last beat sent (rates,
/// progress, state, position…): a page following the events keeps its
/// list current without asking for it again.
fn changed_rows(reg: &mut Registry, engine: &Engine, now: Instant) -> Vec<TorrentView> {
    let queue = reg.queue.clone();
    let mut rows = Vec::new();
    for (position, hash) in queue.iter().enumerate() {
        let Some(e) = reg.entries.get_mut(hash) else {
            continue;
        };
        let row = registry::view(*hash, e, engine, position, now);
        if e.beat_view.as_ref() != Some(&row) {
            e.beat_view = Some(row.clone());
            rows.push(row);
        }
    }
    rows
}
