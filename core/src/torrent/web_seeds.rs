//! Web seeds (BEP 19) in a torrent: what each seed is asked for, what its
//! answers become, and when a seed is given up.
//!
//! A web seed is a source like a peer, keyed in the picker by a `ConnId`
//! of its own (from the same source as the connections', so blame and
//! endgame work unchanged), but it is asked for contiguous runs
//! ([`PiecePicker::pick_run`]), at most [`JOBS_PER_SEED`] at a time, each
//! run one HTTP range request per file it touches
//! ([`crate::webseed::plan`]). A run is about a second of the seed's
//! measured rate ([`RUN_TIME`]), from [`MIN_RUN`] (where every seed
//! starts) to [`MAX_RUN`], growing at most twofold a run: a slow mirror is
//! not handed megabytes that faster peers then have to fetch again in
//! endgame, and a fast one is asked in few requests. Its data goes
//! through the same path as a peer's blocks: buffered, hashed, then
//! written.
//!
//! Failures: an error answer (HTTP status, no answer, a short body) gives
//! the run's blocks back and backs the seed off (5 s, doubling: 5, 10,
//! 20, 40 s); the [`MAX_FAILURES`]th in a row drops the seed. A piece
//! that fails its hash check with the seed as sole source drops it at
//! once; as one of several, the second such piece does. A dropped seed
//! is never asked again ([`TorrentEvent::WebSeedDropped`]).

use super::*;
use crate::webseed::{assemble, plan, RunPart, WebPaths, WebRequest, WebSeedError};

/// The fewest bytes asked of a web seed in one run (and its first run).
pub(super) const MIN_RUN: u64 = 256 << 10;
/// The most bytes asked of a web seed in one run. Larger runs were no
/// faster from a local nginx and cost memory: each body is one buffer,
/// and glibc keeps freed multi-megabyte buffers in its per-thread arenas
/// (1 GiB with 4 MiB runs peaked at 96 MiB resident, with 1 MiB at 43).
pub(super) const MAX_RUN: u64 = 1 << 20;
/// How long a run should take at the seed's measured rate.
pub(super) const RUN_TIME: Duration = Duration::from_secs(1);
/// Runs in flight per web seed (one is being read while the next is
/// asked for).
pub(super) const JOBS_PER_SEED: usize = 2;
/// Failed answers in a row after which a web seed is dropped.
pub(super) const MAX_FAILURES: u32 = 5;
/// Web seeds used per torrent (a .torrent may list thousands).
pub(super) const MAX_WEB_SEEDS: usize = 16;
const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// A run asked of a web seed: answer with
/// [`Torrent::handle_web_seed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebJob(u64);

/// What a web seed is doing, for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebSeedState {
    /// Nothing asked of it now.
    Idle,
    /// Runs are on their way.
    Downloading,
    /// Backing off after a failure until then.
    Waiting(Instant),
    /// Given up for good.
    Dropped,
}

/// One web seed as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSeedInfo {
    /// Its URL.
    pub url: String,
    /// What it is doing.
    pub state: WebSeedState,
    /// Payload bytes it delivered first (duplicates of what a peer
    /// delivered before not counted).
    pub downloaded: u64,
    /// Its last error, if any.
    pub error: Option<WebSeedError>,
}

#[derive(Debug)]
struct WebSeed {
    url: String,
    conn: ConnId,
    in_flight: usize,
    failures: u32,
    /// When a seed backing off may be asked again; kept until a timeout
    /// has seen it pass (see [`WebSeeds::next_retry`]).
    retry_at: Option<Instant>,
    bad_pieces: u32,
    dropped: bool,
    downloaded: u64,
    /// The size of its next run.
    run_bytes: u64,
    error: Option<WebSeedError>,
}

#[derive(Debug)]
struct Job {
    seed: usize,
    /// The seed's failure count when it was asked: a failure of a run
    /// asked before the last failure was counted is the same outage.
    failures_before: u32,
    asked_at: Instant,
    blocks: Vec<BlockRef>,
    parts: Vec<RunPart>,
    bytes: u64,
}

impl WebSeed {
    /// Whether it is still backing off at `now`.
    fn waiting(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| t > now)
    }
}

/// A torrent's web seeds and the runs asked of them.
#[derive(Debug, Default)]
pub(super) struct WebSeeds {
    seeds: Vec<WebSeed>,
    /// Each file's place under a seed's URL, made once the metadata is
    /// known and a seed is asked.
    paths: Option<WebPaths>,
    jobs: BTreeMap<WebJob, Job>,
    next_job: u64,
}

impl WebSeeds {
    /// Bytes asked of web seeds and not yet in.
    pub(super) fn outstanding_bytes(&self) -> u64 {
        self.jobs.values().map(|j| j.bytes).sum()
    }

    /// The web seed behind `conn`, if it is one.
    fn seed_of(&self, conn: ConnId) -> Option<usize> {
        self.seeds.iter().position(|s| s.conn == conn)
    }

    /// When a seed waiting out its back-off may be asked again. A time
    /// already past stays due until [`Self::retries_seen`]: an input that
    /// moved the torrent's clock past it without asking the seeds must not
    /// hide it (with web seeds alone, nothing else would wake the torrent
    /// until its next announce).
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.seeds
            .iter()
            .filter(|s| !s.dropped)
            .filter_map(|s| s.retry_at)
            .min()
    }

    /// A timeout at `now` gave the seeds whose back-off ended their turn.
    pub(super) fn retries_seen(&mut self, now: Instant) {
        for s in &mut self.seeds {
            s.retry_at = s.retry_at.filter(|&t| t > now);
        }
    }

    /// Whether a seed may still be asked.
    pub(super) fn usable(&self) -> bool {
        self.seeds.iter().any(|s| !s.dropped)
    }
}

impl Torrent {
    /// Adds web seeds (BEP 19: a .torrent's `url-list`, a magnet's `ws=`).
    /// Only http and https URLs are used, each once, at most
    /// [`MAX_WEB_SEEDS`].
    pub fn add_web_seeds(&mut self, now: Instant, urls: impl IntoIterator<Item = String>) {
        self.now = now;
        self.push_web_seeds(urls);
        self.fill_requests(now);
    }

    /// Adds web seeds without asking them anything yet.
    pub(super) fn push_web_seeds(&mut self, urls: impl IntoIterator<Item = String>) {
        for url in urls {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://"))
                || self.web.seeds.len() >= MAX_WEB_SEEDS
                || self.web.seeds.iter().any(|s| s.url == url)
            {
                continue;
            }
            let conn = self.config.conn_ids.next_id();
            self.web.seeds.push(WebSeed {
                url,
                conn,
                in_flight: 0,
                failures: 0,
                retry_at: None,
                bad_pieces: 0,
                dropped: false,
                downloaded: 0,
                run_bytes: MIN_RUN,
                error: None,
            });
        }
    }

    /// Web seeds not given up (BEP 19).
    pub fn web_seeds_in_use(&self) -> usize {
        if !self.config.web_seeds {
            return 0;
        }
        self.web.seeds.iter().filter(|s| !s.dropped).count()
    }

    /// The web seeds' URLs, in the order they were added.
    pub fn web_seed_urls(&self) -> Vec<&str> {
        self.web.seeds.iter().map(|s| s.url.as_str()).collect()
    }

    /// The web seeds and what they are doing.
    pub fn web_seeds(&self) -> Vec<WebSeedInfo> {
        self.web
            .seeds
            .iter()
            .map(|s| WebSeedInfo {
                url: s.url.clone(),
                state: if s.dropped {
                    WebSeedState::Dropped
                } else if s.in_flight > 0 {
                    WebSeedState::Downloading
                } else if let Some(t) = s.retry_at.filter(|&t| t > self.now) {
                    WebSeedState::Waiting(t)
                } else {
                    WebSeedState::Idle
                },
                downloaded: s.downloaded,
                error: s.error.clone(),
            })
            .collect()
    }

    /// Gives idle web seeds runs to fetch, within `budget` bytes (taken
    /// from it) and the download limit.
    pub(super) fn fill_web_seeds(&mut self, now: Instant, budget: &mut u64) {
        if !self.config.web_seeds || !self.web.usable() || self.picker.is_finished() {
            return;
        }
        if self.web.paths.is_none() {
            let Some(raw) = self.info.metadata.clone() else {
                return;
            };
            let Ok(info) = Info::from_bytes(&raw) else {
                return;
            };
            self.web.paths = Some(WebPaths::new(&info));
        }
        let piece_length = u64::from(self.info.layout.piece_length());
        for seed in 0..self.web.seeds.len() {
            let mut blocks = Vec::new();
            loop {
                let s = &self.web.seeds[seed];
                if s.dropped || s.in_flight >= JOBS_PER_SEED || s.waiting(now) {
                    break;
                }
                let room = s
                    .run_bytes
                    .min(*budget)
                    .min(self.down_bucket.available(now));
                let max = (room / u64::from(BLOCK_SIZE)) as usize;
                if max == 0 {
                    return;
                }
                blocks.clear();
                if self.picker.pick_run(s.conn, max, &mut blocks) == 0 {
                    break;
                }
                let first = blocks[0];
                let start = u64::from(first.piece.0) * piece_length + u64::from(first.offset);
                let bytes: u64 = blocks.iter().map(|b| u64::from(b.length)).sum();
                let parts = self
                    .web
                    .paths
                    .as_ref()
                    .and_then(|p| plan(&self.info.layout, p, &s.url, start..start + bytes));
                let Some(parts) = parts else {
                    for b in &blocks {
                        self.picker.abort_request(*b, s.conn);
                    }
                    break;
                };
                *budget = budget.saturating_sub(bytes);
                let _ = self.down_bucket.try_take(now, bytes);
                let requests: Vec<WebRequest> = parts
                    .iter()
                    .filter_map(|p| match p {
                        RunPart::Fetch(r) => Some(r.clone()),
                        RunPart::Zeros(_) => None,
                    })
                    .collect();
                let job = WebJob(self.web.next_job);
                self.web.next_job += 1;
                self.web.seeds[seed].in_flight += 1;
                self.web.jobs.insert(
                    job,
                    Job {
                        seed,
                        failures_before: self.web.seeds[seed].failures,
                        asked_at: now,
                        blocks: std::mem::take(&mut blocks),
                        parts,
                        bytes,
                    },
                );
                if requests.is_empty() {
                    // All padding: nothing to ask anyone. Delivered here,
                    // without asking for more (this loop is doing that).
                    if let Some(job) = self.web.jobs.remove(&job) {
                        self.web.seeds[seed].in_flight -= 1;
                        let conn = self.web.seeds[seed].conn;
                        match assemble(&job.parts, Vec::new()) {
                            Ok(run) => self.deliver_run(now, seed, conn, job, run),
                            Err(_) => self.abort_run(conn, &job.blocks),
                        }
                    }
                } else {
                    self.out.push_back(TorrentOutput::WebSeed { job, requests });
                }
            }
        }
    }

    /// The answer to a [`TorrentOutput::WebSeed`]: one body per request,
    /// in order, or why not.
    pub fn handle_web_seed(
        &mut self,
        now: Instant,
        job: WebJob,
        answer: Result<Vec<Bytes>, WebSeedError>,
    ) {
        self.now = now;
        let Some(job) = self.web.jobs.remove(&job) else {
            return;
        };
        let seed = job.seed;
        let conn = self.web.seeds[seed].conn;
        self.web.seeds[seed].in_flight -= 1;
        let run = answer.and_then(|bodies| assemble(&job.parts, bodies));
        let usable = !self.web.seeds[seed].dropped && self.state == TorrentState::Downloading;
        match run {
            Ok(run) if usable => self.deliver_run(now, seed, conn, job, run),
            Ok(_) => self.abort_run(conn, &job.blocks),
            Err(e) => {
                self.abort_run(conn, &job.blocks);
                if usable && job.failures_before == self.web.seeds[seed].failures {
                    self.web_seed_failed(now, seed, e);
                }
            }
        }
        self.fill_requests(now);
    }

    /// A run's bytes, in: its blocks go the way of a peer's, and the
    /// seed's next run is sized by the rate it came at.
    fn deliver_run(&mut self, now: Instant, seed: usize, conn: ConnId, job: Job, run: Bytes) {
        let s = &mut self.web.seeds[seed];
        s.failures = 0;
        let took = now.saturating_duration_since(job.asked_at).as_secs_f64();
        let rate = job.bytes as f64 / took.max(0.001);
        let target = (rate * RUN_TIME.as_secs_f64()) as u64;
        s.run_bytes = target.min(s.run_bytes * 2).clamp(MIN_RUN, MAX_RUN);
        let mut at = 0usize;
        let mut first = 0u64;
        for block in job.blocks {
            let end = at + block.length as usize;
            let Some(data) = run.get(at..end).map(|_| run.slice(at..end)) else {
                break;
            };
            at = end;
            if self.on_block(now, conn, block, data) {
                first += u64::from(block.length);
            }
        }
        self.web.seeds[seed].downloaded += first;
    }

    fn abort_run(&mut self, conn: ConnId, blocks: &[BlockRef]) {
        for b in blocks {
            self.picker.abort_request(*b, conn);
        }
    }

    /// A failed answer: back off, or drop the seed after
    /// [`MAX_FAILURES`] in a row.
    fn web_seed_failed(&mut self, now: Instant, seed: usize, error: WebSeedError) {
        let s = &mut self.web.seeds[seed];
        s.failures += 1;
        let backoff = FIRST_BACKOFF.saturating_mul(1 << (s.failures - 1).min(10));
        s.retry_at = Some(now + backoff);
        s.error = Some(error.clone());
        if s.failures >= MAX_FAILURES {
            self.drop_web_seed(seed, error);
        }
    }

    /// Gives up a web seed: its runs in flight are given back now and
    /// their answers ignored.
    fn drop_web_seed(&mut self, seed: usize, error: WebSeedError) {
        let s = &mut self.web.seeds[seed];
        if s.dropped {
            return;
        }
        s.dropped = true;
        s.error = Some(error.clone());
        let url = s.url.clone();
        let conn = s.conn;
        // Its runs in flight are given back now (their answers will be
        // ignored) and no longer count against the memory budget.
        let runs: Vec<Vec<BlockRef>> = self
            .web
            .jobs
            .values_mut()
            .filter(|j| j.seed == seed)
            .map(|j| {
                j.bytes = 0;
                j.blocks.clone()
            })
            .collect();
        for blocks in runs {
            self.abort_run(conn, &blocks);
        }
        self.picker.peer_left(conn);
        self.emit(TorrentEvent::WebSeedDropped { url, error });
    }

    /// A piece failed its hash check: which of its `contributors` are web
    /// seeds (they are blamed here; the rest are peers). A sole source is
    /// dropped at once, one of several at its second bad piece.
    pub(super) fn blame_web_seeds(&mut self, piece: PieceIndex, culprits: &[ConnId], sole: bool) {
        for c in culprits {
            let Some(seed) = self.web.seed_of(*c) else {
                continue;
            };
            let s = &mut self.web.seeds[seed];
            s.bad_pieces += 1;
            if sole || s.bad_pieces >= 2 {
                self.drop_web_seed(seed, WebSeedError::BadData { piece: piece.0 });
            }
        }
    }
}
