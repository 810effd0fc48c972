//! What a session knows about its torrents beside the engine: where each
//! one's files are, what the user chose for it, its rates and errors. The
//! loop's callback and the handle share it behind one mutex, held only for
//! short bookkeeping, never across an await or any I/O.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use bittide_core::engine::Engine;
use bittide_core::metainfo::FileLayout;
use bittide_core::peer::Direction;
use bittide_core::picker::Priority;
use bittide_core::torrent::{Torrent, TorrentState, TransferHistory, WebSeedState};
use bittide_core::{InfoHash, Instant, PieceIndex, TorrentId};

use super::state::TorrentSettings;
use super::views::{
    FileView, PeerView, SessionEvent, SessionSettings, TorrentDetails, TorrentStatus, TorrentView,
    TrackerView, WebSeedView,
};
use crate::disk::Storage;

/// Samples kept for a rate: a few seconds' worth at one per beat.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Download and upload rates from counter samples over [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct RateMeter {
    samples: VecDeque<(Instant, u64, u64)>,
}

impl RateMeter {
    pub(crate) fn sample(&mut self, now: Instant, downloaded: u64, uploaded: u64) {
        self.samples.push_back((now, downloaded, uploaded));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _, _)| now - t > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// (download, upload) in bytes/s.
    pub(crate) fn rates(&self) -> (u64, u64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0, 0);
        };
        let ms = (last.0 - first.0).as_millis() as u64;
        if ms == 0 {
            return (0, 0);
        }
        (
            last.1.saturating_sub(first.1) * 1000 / ms,
            last.2.saturating_sub(first.2) * 1000 / ms,
        )
    }
}

/// One torrent of the session.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: TorrentId,
    pub name: String,
    pub settings: TorrentSettings,
    /// Its files, once known (a magnet's after its metadata).
    pub storage: Option<Arc<Storage>>,
    pub file_count: usize,
    /// Bytes of the files not skipped.
    pub wanted: u64,
    pub size: u64,
    /// Set when a disk error stopped it; cleared by resume.
    pub error: Option<String>,
    /// Its files are being moved (`relocate`).
    pub moving: bool,
    /// Files with verified pieces were gone at start
    /// ([`TorrentStatus::MissingFiles`]).
    pub missing_files: bool,
    /// The link it was added by, until its metadata is in.
    pub magnet: Option<String>,
    pub rates: RateMeter,
    /// Verified pieces when resume data was last written.
    pub saved_pieces: Option<u32>,
    pub last_save: Instant,
    /// Lifetime uploaded, downloaded and seeding time, as of the last
    /// beat (`None`: not learned yet this run; the settings hold them).
    pub history: Option<TransferHistory>,
    /// Its row as the last stats beat sent it, so the next beat sends
    /// only the rows that changed.
    pub beat_view: Option<TorrentView>,
}

impl Entry {
    pub(crate) fn new(
        id: TorrentId,
        name: String,
        settings: TorrentSettings,
        now: Instant,
    ) -> Entry {
        Entry {
            id,
            name,
            settings,
            storage: None,
            file_count: 0,
            wanted: 0,
            size: 0,
            error: None,
            moving: false,
            missing_files: false,
            magnet: None,
            rates: RateMeter::default(),
            // Nothing verified to vouch for yet: no resume data to write
            // until a piece is.
            saved_pieces: Some(0),
            last_save: now,
            history: None,
            beat_view: None,
        }
    }

    /// Sets size and wanted bytes from the torrent's layout.
    pub(crate) fn learn_layout(&mut self, layout: &FileLayout) {
        self.file_count = layout.file_count();
        self.size = (0..layout.file_count())
            .filter(|&i| !layout.is_padding(i))
            .filter_map(|i| layout.file_range(i))
            .map(|r| r.end - r.start)
            .sum();
        self.wanted = (0..layout.file_count())
            .filter(|&i| !layout.is_padding(i) && self.priority(i) != Priority::Skip)
            .filter_map(|i| layout.file_range(i))
            .map(|r| r.end - r.start)
            .sum();
    }

    pub(crate) fn priority(&self, file: usize) -> Priority {
        self.settings
            .priorities
            .as_ref()
            .and_then(|p| p.get(file).copied())
            .unwrap_or_default()
    }

    /// The settings with lifetime totals as of the last beat (what is
    /// written to the state folder).
    pub(crate) fn settings_now(&self) -> TorrentSettings {
        let mut s = self.settings.clone();
        if let Some(h) = &self.history {
            s.uploaded = h.uploaded;
            s.downloaded = h.downloaded;
            s.seeding_time = h.seeding_time.as_secs();
        }
        s
    }

    /// Takes the torrent's lifetime totals from the engine.
    pub(crate) fn learn_history(&mut self, t: &Torrent, now: Instant) {
        self.history = Some(t.history(now));
    }

    /// What earlier runs did, for [`Engine::restore_history`].
    pub(crate) fn stored_history(&self) -> TransferHistory {
        TransferHistory {
            uploaded: self.settings.uploaded,
            downloaded: self.settings.downloaded,
            seeding_time: Duration::from_secs(self.settings.seeding_time),
        }
    }
}

/// Every torrent of the session, the session-wide settings and who
/// listens to events.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub entries: BTreeMap<InfoHash, Entry>,
    pub by_id: BTreeMap<TorrentId, InfoHash>,
    /// Info-hashes being added right now (a second add of one is a
    /// duplicate even before the first is in).
    pub adding: BTreeSet<InfoHash>,
    pub settings: SessionSettings,
    pub subscribers: Vec<Sender<SessionEvent>>,
    /// Bytes and disk traffic of torrents removed this run.
    pub removed: Totals,
    pub shutting_down: bool,
    /// Info-hashes in the engine's queue order, as of the last beat or
    /// queue change.
    pub queue: Vec<InfoHash>,
    /// Categories and their save paths (see `categories`).
    pub categories: super::categories::Categories,
    /// Tags created or used (see `tags`).
    pub tags: super::tags::Tags,
}

/// Counters that outlive the torrents they came from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Totals {
    pub downloaded: u64,
    pub uploaded: u64,
    pub disk_read: u64,
    pub disk_written: u64,
}

impl Registry {
    /// Tells every listener; one that does not keep up (its queue is full)
    /// or has gone is dropped.
    pub(crate) fn broadcast(&mut self, event: SessionEvent) {
        self.subscribers
            .retain(|s| s.try_send(event.clone()).is_ok());
    }

    /// Takes the engine's queue order.
    pub(crate) fn learn_queue(&mut self, engine: &Engine) {
        self.queue = engine
            .queue()
            .into_iter()
            .filter_map(|id| self.by_id.get(&id).copied())
            .collect();
    }

    /// Where a torrent stands in the queue (0 runs first).
    pub(crate) fn position(&self, hash: &InfoHash) -> usize {
        self.queue
            .iter()
            .position(|h| h == hash)
            .unwrap_or(self.queue.len())
    }

    pub(crate) fn insert(&mut self, hash: InfoHash, entry: Entry) {
        self.by_id.insert(entry.id, hash);
        self.entries.insert(hash, entry);
    }

    pub(crate) fn remove(&mut self, hash: &InfoHash, engine_counters: Option<(u64, u64)>) {
        if let Some(e) = self.entries.remove(hash) {
            self.by_id.remove(&e.id);
            if let Some((up, down)) = engine_counters {
                self.removed.uploaded += up;
                self.removed.downloaded += down;
            }
            if let Some(s) = &e.storage {
                self.removed.disk_read += s.bytes_read();
                self.removed.disk_written += s.bytes_written();
            }
        }
    }
}

/// What users see of the engine's state, with the session's error on top.
pub(crate) fn status(entry: &Entry, t: Option<&Torrent>) -> TorrentStatus {
    if entry.error.is_some() {
        return TorrentStatus::Error;
    }
    if entry.missing_files {
        return TorrentStatus::MissingFiles;
    }
    if entry.moving {
        return TorrentStatus::Moving;
    }
    match t.map(Torrent::state) {
        Some(TorrentState::FetchingMetadata | TorrentState::AwaitingStart) => {
            TorrentStatus::Metadata
        }
        Some(TorrentState::Checking) => TorrentStatus::Checking,
        Some(TorrentState::Downloading) => TorrentStatus::Downloading,
        Some(TorrentState::Seeding) => TorrentStatus::Seeding,
        Some(TorrentState::Queued) => TorrentStatus::Queued,
        Some(TorrentState::Paused | TorrentState::Stopped) | None => TorrentStatus::Paused,
    }
}

/// One list row.
pub(crate) fn view(
    hash: InfoHash,
    entry: &Entry,
    engine: &Engine,
    queue_position: usize,
    now: Instant,
) -> TorrentView {
    let t = engine.torrent(entry.id);
    let (_, _, left) = t.map(Torrent::counters).unwrap_or_default();
    let history = t.map_or_else(|| entry.stored_history(), |t| t.history(now));
    let (download_rate, upload_rate) = entry.rates.rates();
    let state = status(entry, t);
    let known = t.is_some_and(|t| t.metadata().is_some()) || entry.storage.is_some();
    let progress = match (known, entry.wanted) {
        (false, _) => 0.0,
        (true, 0) => 1.0,
        (true, w) => w.saturating_sub(left) as f64 / w as f64,
    };
    let eta = match state {
        TorrentStatus::Downloading if download_rate > 0 => Some(left / download_rate),
        _ => None,
    };
    let s = &entry.settings;
    let uploaded = history.uploaded;
    TorrentView {
        info_hash: hash,
        name: entry.name.clone(),
        state,
        progress,
        size: entry.size,
        wanted: entry.wanted,
        downloaded: history.downloaded,
        uploaded,
        download_rate,
        upload_rate,
        peers: t.map_or(0, Torrent::peer_count),
        eta,
        save_path: s.save_path.clone(),
        error: entry.error.clone(),
        category: s.category.clone(),
        tags: s.tags.clone(),
        queue_position,
        added_at: s.added_at,
        completed_at: s.completed_at,
        ratio: if entry.wanted == 0 {
            0.0
        } else {
            uploaded as f64 / entry.wanted as f64
        },
        sequential: s.sequential,
        first_last_piece: s.first_last_piece,
        force_start: s.force_start,
        content_path: entry
            .storage
            .as_ref()
            .map_or_else(|| s.save_path.join(&entry.name), |st| st.content_path()),
        upload_limit: s.upload_limit,
        download_limit: s.download_limit,
    }
}

/// One torrent in full.
pub(crate) fn details(
    hash: InfoHash,
    entry: &Entry,
    engine: &Engine,
    queue_position: usize,
    now: Instant,
) -> TorrentDetails {
    let torrent = view(hash, entry, engine, queue_position, now);
    let t = engine.torrent(entry.id);
    let layout = t
        .filter(|t| t.metadata().is_some())
        .map(|t| &t.info().layout);
    let have = t.map(Torrent::have);
    let files = match (layout, have) {
        (Some(layout), Some(have)) => (0..layout.file_count())
            .filter(|&i| !layout.is_padding(i))
            .filter_map(|i| {
                let range = layout.file_range(i)?;
                let pieces = layout.file_pieces(i);
                let total = pieces.end.0.saturating_sub(pieces.start.0);
                let done = (pieces.start.0..pieces.end.0)
                    .filter(|&p| have.get(PieceIndex(p)))
                    .count() as u32;
                let path = entry
                    .storage
                    .as_ref()
                    .and_then(|s| s.path(i))
                    .map(|p| {
                        p.strip_prefix(&entry.settings.save_path)
                            .unwrap_or(&p)
                            .to_string_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                Some(FileView {
                    index: i,
                    path,
                    size: range.end - range.start,
                    progress: if total == 0 {
                        1.0
                    } else {
                        f64::from(done) / f64::from(total)
                    },
                    priority: entry.priority(i),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let peers = t.map(|t| peer_views(t, now)).unwrap_or_default();
    let trackers = t
        .map(|t| {
            t.trackers()
                .into_iter()
                .map(|s| TrackerView {
                    url: s.url,
                    tier: s.tier,
                    peers: s.peers,
                    seeders: s.seeders,
                    leechers: s.leechers,
                    last_announce_ago: s.last.map(|l| (now - l).as_secs()),
                    error: s.error.map(|e| e.to_string()),
                    next_announce_in: s.next.map(|at| at.saturating_duration_since(now).as_secs()),
                })
                .collect()
        })
        .unwrap_or_default();
    let magnet = magnet_link(&hash, &entry.name, t);
    TorrentDetails {
        torrent,
        files,
        peers,
        trackers,
        web_seeds: t.map(web_seed_views).unwrap_or_default(),
        piece_count: layout.map_or(0, FileLayout::piece_count),
        piece_length: layout.map_or(0, FileLayout::piece_length),
        pieces: have
            .filter(|_| layout.is_some())
            .map(|h| h.as_bytes().to_vec())
            .unwrap_or_default(),
        pieces_in_progress: t
            .filter(|_| layout.is_some())
            .map(|t| t.pieces_in_progress().into_iter().map(|p| p.0).collect())
            .unwrap_or_default(),
        magnet,
    }
}

fn web_seed_views(t: &Torrent) -> Vec<WebSeedView> {
    t.web_seeds()
        .into_iter()
        .map(|s| WebSeedView {
            url: s.url,
            state: match s.state {
                WebSeedState::Idle => "idle",
                WebSeedState::Downloading => "downloading",
                WebSeedState::Waiting(_) => "waiting",
                WebSeedState::Dropped => "dropped",
            },
            downloaded: s.downloaded,
            error: s.error.map(|e| e.to_string()),
        })
        .collect()
}

fn peer_views(t: &Torrent, now: Instant) -> Vec<PeerView> {
    t.peers_info(now)
        .into_iter()
        .map(|p| {
            let mut flags = String::new();
            flags.push(match p.direction {
                Direction::Incoming => 'I',
                Direction::Outgoing => 'O',
            });
            if p.flags.am_interested {
                flags.push(if p.flags.peer_choking { 'd' } else { 'D' });
            }
            if p.flags.peer_interested {
                flags.push(if p.flags.am_choking { 'u' } else { 'U' });
            }
            if p.utp {
                flags.push('P');
            }
            PeerView {
                addr: p.addr,
                client: p.client,
                download_rate: p.download_rate,
                upload_rate: p.upload_rate,
                progress: p.progress,
                flags,
            }
        })
        .collect()
}

/// A magnet link for the torrent (BEP 9): its hash, name and trackers.
fn magnet_link(hash: &InfoHash, name: &str, t: Option<&Torrent>) -> String {
    let mut m = bittide_core::metainfo::Magnet {
        info_hash: Some(*hash),
        info_hash_v2: None,
        display_name: Some(name.to_owned()),
        trackers: Vec::new(),
        web_seeds: Vec::new(),
        peers: Vec::new(),
        select_only: Vec::new(),
    };
    if let Some(t) = t {
        m.trackers = t.trackers().into_iter().map(|s| s.url).collect();
        m.web_seeds = t.web_seed_urls().into_iter().map(str::to_owned).collect();
        // BEP 52: a hybrid is named both ways; a v2-only torrent (whose
        // wire hash is its v2 hash cut short) by `btmh` alone.
        if let Some(v2) = t.info().info_hash_v2 {
            m.info_hash_v2 = Some(v2);
            if InfoHash::truncated(&v2) == *hash {
                m.info_hash = None;
            }
        }
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_shows_as_moving_unless_an_error_stopped_it() {
        let mut engine = Engine::new(
            bittide_core::engine::EngineConfig::default(),
            bittide_core::Seed::from_u64(1),
        );
        let link = format!("magnet:?xt=urn:btih:{}", "ab".repeat(20));
        let magnet = bittide_core::metainfo::Magnet::parse(&link).expect("a magnet");
        let id = engine.add_magnet(Instant::ZERO, &magnet).expect("added");
        let mut e = Entry::new(id, "t".into(), TorrentSettings::default(), Instant::ZERO);
        assert_eq!(status(&e, None), TorrentStatus::Paused);
        e.moving = true;
        assert_eq!(status(&e, None), TorrentStatus::Moving);
        e.missing_files = true;
        assert_eq!(status(&e, None), TorrentStatus::MissingFiles);
        e.error = Some("disk full".into());
        assert_eq!(status(&e, None), TorrentStatus::Error);
    }
}
