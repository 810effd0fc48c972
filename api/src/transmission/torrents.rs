//! The torrent methods that change something: add, start/stop/verify/
//! reannounce, set, remove, set-location and the queue moves
//! (`docs/rpc-spec.md` §3.1–3.6 and §4.6). Each names its torrents with
//! `ids` (see [`select`]); torrents that vanish in between are skipped,
//! as Transmission skips ids it does not know.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bittide_core::metainfo::Metainfo;
use bittide_core::picker::Priority;
use bittide_core::InfoHash;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{AddOptions, AddSource, RequestError, TorrentView};
use bittide_driver::session::ShareLimits;
use serde_json::{json, Map, Value};

use super::{arg, flag, select, Answer, RpcError};
use crate::App;

/// A kB/s the way Transmission counts it.
const KB: u64 = 1000;

/// The per-torrent limit Transmission starts from when one is switched on
/// without a number.
const DEFAULT_LIMIT_KB: u64 = 100;

/// `torrent-add`: `metainfo` (base64 .torrent) or `filename` (a magnet
/// link or an http(s) URL of a .torrent); a torrent already in is
/// answered as `torrent-duplicate`, as Transmission does.
///
/// A `filename` that is a path on the daemon's machine is refused:
/// reading any file the daemon can read on a remote caller's word is not
/// something bittide does.
pub(super) async fn add<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let metainfo = arg::<String>(args, "metainfo")?;
    let filename = arg::<String>(args, "filename")?;
    let source = match (metainfo, filename) {
        (Some(encoded), _) => {
            let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|_| RpcError::Corrupt)?;
            if bytes.len() > app.max_body {
                return Err(RpcError::Corrupt);
            }
            AddSource::TorrentFile(bytes)
        }
        (None, Some(name)) => {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("magnet:?") {
                AddSource::Magnet(name)
            } else if lower.starts_with("http://") || lower.starts_with("https://") {
                AddSource::Url(name)
            } else {
                return Err(RpcError::Params(
                    "filename must be a magnet link or an http(s) URL (bittide reads no local \
                     paths); send a local .torrent as metainfo"
                        .into(),
                ));
            }
        }
        (None, None) => return Err(RpcError::Params("no filename or metainfo specified".into())),
    };
    let save_path = match arg::<String>(args, "download-dir")? {
        Some(dir) if !Path::new(&dir).is_absolute() => {
            return Err(RpcError::NotAbsolute(
                "download directory path is not absolute",
            ))
        }
        dir => dir.map(PathBuf::from),
    };
    let tags = labels(args)?.unwrap_or_default();
    let only = match &source {
        AddSource::TorrentFile(bytes) => {
            let files = Metainfo::from_bytes(bytes)
                .map_err(|_| RpcError::Corrupt)?
                .info
                .files()
                .len();
            selected_files(args, files)?
        }
        // A magnet's files are not known yet; Transmission cannot apply
        // these to one either.
        _ => None,
    };
    let options = AddOptions {
        save_path,
        paused: flag(args, "paused")?.unwrap_or(false),
        only,
        tags,
        ..AddOptions::default()
    };
    let (key, hash) = match app.session.add(source, options).await {
        Ok(hash) => ("torrent-added", hash),
        Err(RequestError::Duplicate(hash)) => ("torrent-duplicate", hash),
        Err(err) => return Err(err.into()),
    };
    let name = match app.session.torrent(hash).await {
        Ok(d) => d.torrent.name,
        Err(_) => hash.to_string(),
    };
    let mut answer = Map::new();
    answer.insert(
        key.into(),
        json!({
            "id": app.ids.id_of(hash),
            "name": name,
            "hashString": hash.to_string(),
        }),
    );
    Ok(answer)
}

/// `files-wanted` / `files-unwanted` of an add, as the files to download
/// (`None`: all).
fn selected_files(args: &Map<String, Value>, files: usize) -> Result<Option<Vec<usize>>, RpcError> {
    let wanted = arg::<Vec<usize>>(args, "files-wanted")?;
    let unwanted = arg::<Vec<usize>>(args, "files-unwanted")?;
    if wanted.is_none() && unwanted.is_none() {
        return Ok(None);
    }
    let all = wanted.iter().chain(unwanted.iter()).flatten();
    if all.clone().any(|&i| i >= files) {
        return Err(RpcError::FileIndex);
    }
    // Every file is wanted unless named unwanted (Transmission applies
    // `files-unwanted` after `files-wanted`).
    let unwanted = unwanted.unwrap_or_default();
    let only = (0..files).filter(|i| !unwanted.contains(i)).collect();
    Ok(Some(only))
}

/// `labels`, checked as Transmission checks them.
fn labels(args: &Map<String, Value>) -> Result<Option<Vec<String>>, RpcError> {
    let Some(labels) = arg::<Vec<String>>(args, "labels")? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        let label = label.trim().to_owned();
        if label.is_empty() {
            return Err(RpcError::Params("labels cannot be empty".into()));
        }
        if label.contains(',') {
            return Err(RpcError::Params(
                "labels cannot contain comma (,) character".into(),
            ));
        }
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(Some(out))
}

/// What `torrent-start`/`-stop`/`-verify`/`-reannounce` do.
#[derive(Clone, Copy)]
pub(super) enum Action {
    Start,
    Stop,
    Verify,
    Reannounce,
}

pub(super) async fn act<R: Runtime>(
    app: &App<R>,
    args: &Map<String, Value>,
    action: Action,
) -> Answer {
    for t in select(app, args).await?.into_list() {
        let hash = t.info_hash;
        let done = match action {
            Action::Start => app.session.resume(hash).await,
            Action::Stop => app.session.pause(hash).await,
            Action::Verify => app.session.recheck(hash).await,
            Action::Reannounce => app.session.reannounce(hash).await,
        };
        skip_vanished(done)?;
    }
    Ok(Map::new())
}

/// A torrent removed between the selection and the request is skipped.
fn skip_vanished(result: Result<(), RequestError>) -> Result<(), RpcError> {
    match result {
        Ok(()) | Err(RequestError::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// `torrent-set`: limits, labels, file selection and priorities, queue
/// position, sequential download, and the torrent's own seeding goals
/// (`seedRatioLimit`/`Mode`, `seedIdleLimit`/`Mode`: mode 0 follows the
/// session, 1 the torrent's value, 2 never stops), which become its share
/// limits. Keys bittide does not know are ignored, as Transmission
/// ignores them.
pub(super) async fn set<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let labels = labels(args)?;
    let down = limit(args, "downloadLimit", "downloadLimited")?;
    let up = limit(args, "uploadLimit", "uploadLimited")?;
    let file_lists = FileLists::from_args(args)?;
    let position = arg::<usize>(args, "queuePosition")?;
    let sequential = flag(args, "sequentialDownload")?;
    let seeding = SeedingChange::from_args(args)?;
    let (shares, global) = match &seeding {
        Some(_) => {
            let settings = app.session.settings().await?;
            let (ratio, _, idle_minutes, _) = super::session::goals(app, &settings);
            let global = (settings.seed_ratio, settings.seed_time, ratio, idle_minutes);
            (app.session.share_limits().await, Some(global))
        }
        None => (Default::default(), None),
    };
    for t in select(app, args).await?.into_list() {
        let hash = t.info_hash;
        if !file_lists.is_empty() {
            set_files(app, hash, &file_lists).await?;
        }
        if down.is_some() || up.is_some() {
            let download = down.map_or(t.download_limit, |l| l.apply(t.download_limit));
            let upload = up.map_or(t.upload_limit, |l| l.apply(t.upload_limit));
            skip_vanished(app.session.set_torrent_limits(hash, upload, download).await)?;
        }
        if let Some(labels) = &labels {
            skip_vanished(app.session.set_tags(hash, labels.clone()).await)?;
        }
        if let Some(on) = sequential {
            skip_vanished(app.session.set_sequential(hash, on).await)?;
        }
        if let Some(p) = position {
            skip_vanished(app.session.set_queue_position(hash, p).await)?;
        }
        if let (Some(change), Some(global)) = (&seeding, global) {
            let limits = change.apply(shares.get(&hash), global);
            skip_vanished(app.session.set_share_limits(hash, limits).await)?;
        }
    }
    Ok(Map::new())
}

/// A `torrent-set` of the seeding goals: each mode (0 the session's, 1
/// the torrent's own value, 2 none) and value, where given.
struct SeedingChange {
    ratio_mode: Option<u8>,
    ratio: Option<f64>,
    idle_mode: Option<u8>,
    idle_minutes: Option<u64>,
}

impl SeedingChange {
    fn from_args(args: &Map<String, Value>) -> Result<Option<SeedingChange>, RpcError> {
        let mode = |key: &str| -> Result<Option<u8>, RpcError> {
            match arg::<u8>(args, key)? {
                Some(m) if m > 2 => Err(RpcError::Params(format!("Invalid params: {key}"))),
                m => Ok(m),
            }
        };
        let change = SeedingChange {
            ratio_mode: mode("seedRatioMode")?,
            ratio: arg::<f64>(args, "seedRatioLimit")?,
            idle_mode: mode("seedIdleMode")?,
            idle_minutes: arg::<u64>(args, "seedIdleLimit")?,
        };
        if change.ratio.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
            return Err(RpcError::Params("Invalid params: seedRatioLimit".into()));
        }
        let any = change.ratio_mode.is_some()
            || change.ratio.is_some()
            || change.idle_mode.is_some()
            || change.idle_minutes.is_some();
        Ok(any.then_some(change))
    }

    /// The torrent's share limits after the change (`None`: both goals
    /// follow the session again). `global` is the session's goals in
    /// force and the values Transmission shows for them.
    fn apply(
        &self,
        own: Option<&ShareLimits>,
        global: (Option<f64>, Option<u64>, f64, u64),
    ) -> Option<ShareLimits> {
        let (ratio_now, time_now, ratio_shown, minutes_shown) = global;
        let current = |own_value: Option<bool>| match own_value {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        let ratio_mode = self
            .ratio_mode
            .unwrap_or(current(own.map(|l| l.ratio.is_some())));
        let idle_mode = self
            .idle_mode
            .unwrap_or(current(own.map(|l| l.seeding_time.is_some())));
        if ratio_mode == 0 && idle_mode == 0 {
            return None;
        }
        let ratio = match ratio_mode {
            0 => ratio_now,
            1 => Some(
                self.ratio
                    .or(own.and_then(|l| l.ratio))
                    .unwrap_or(ratio_shown),
            ),
            _ => None,
        };
        let seeding_time = match idle_mode {
            0 => time_now.map(Duration::from_secs),
            1 => Some(
                self.idle_minutes
                    .map(|m| Duration::from_secs(m.saturating_mul(60)))
                    .or(own.and_then(|l| l.seeding_time))
                    .unwrap_or(Duration::from_secs(minutes_shown.saturating_mul(60))),
            ),
            _ => None,
        };
        Some(ShareLimits {
            ratio,
            seeding_time,
            // Set through qBittorrent's API only; kept as it was.
            inactive_time: own.and_then(|l| l.inactive_time),
        })
    }
}

/// A change to one direction's per-torrent limit.
#[derive(Clone, Copy)]
struct Limit {
    kb: Option<u64>,
    on: Option<bool>,
}

impl Limit {
    /// The new bytes/s from the current one. A number without the switch
    /// turns the limit on (Transmission would keep the number for when
    /// the switch is turned on; bittide keeps only limits in force).
    fn apply(self, current: u64) -> u64 {
        match (self.on, self.kb) {
            (Some(false), _) => 0,
            (_, Some(kb)) => kb * KB,
            (Some(true), None) if current > 0 => current,
            (Some(true), None) => DEFAULT_LIMIT_KB * KB,
            (None, None) => current,
        }
    }
}

fn limit(args: &Map<String, Value>, number: &str, switch: &str) -> Result<Option<Limit>, RpcError> {
    let kb = arg::<u64>(args, number)?;
    let on = flag(args, switch)?;
    Ok((kb.is_some() || on.is_some()).then_some(Limit { kb, on }))
}

/// The file lists of a `torrent-set`.
struct FileLists {
    wanted: Vec<usize>,
    unwanted: Vec<usize>,
    high: Vec<usize>,
    normal: Vec<usize>,
    low: Vec<usize>,
}

impl FileLists {
    fn from_args(args: &Map<String, Value>) -> Result<FileLists, RpcError> {
        let list = |key| arg::<Vec<usize>>(args, key).map(Option::unwrap_or_default);
        Ok(FileLists {
            wanted: list("files-wanted")?,
            unwanted: list("files-unwanted")?,
            high: list("priority-high")?,
            normal: list("priority-normal")?,
            low: list("priority-low")?,
        })
    }

    fn is_empty(&self) -> bool {
        [
            &self.wanted,
            &self.unwanted,
            &self.high,
            &self.normal,
            &self.low,
        ]
        .iter()
        .all(|l| l.is_empty())
    }
}

/// Applies file lists to one torrent. Transmission keeps "wanted" and
/// "priority" apart; bittide's skip is a priority, so a priority given
/// to an unwanted file waits until the file is wanted again, and a file
/// wanted again gets the normal priority.
async fn set_files<R: Runtime>(
    app: &App<R>,
    hash: InfoHash,
    lists: &FileLists,
) -> Result<(), RpcError> {
    let details = match app.session.torrent(hash).await {
        Ok(d) => d,
        Err(RequestError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let count = details.files.len();
    let every = [
        &lists.wanted,
        &lists.unwanted,
        &lists.high,
        &lists.normal,
        &lists.low,
    ];
    if every.iter().any(|l| l.iter().any(|&i| i >= count)) {
        return Err(RpcError::FileIndex);
    }
    let mut priorities: Vec<Priority> = details.files.iter().map(|f| f.priority).collect();
    for (list, p) in [
        (&lists.high, Priority::High),
        (&lists.normal, Priority::Normal),
        (&lists.low, Priority::Low),
    ] {
        for &i in list {
            if priorities[i] != Priority::Skip {
                priorities[i] = p;
            }
        }
    }
    for &i in &lists.unwanted {
        priorities[i] = Priority::Skip;
    }
    for &i in &lists.wanted {
        if priorities[i] == Priority::Skip {
            priorities[i] = Priority::Normal;
        }
    }
    let changes: Vec<(usize, Priority)> = priorities
        .iter()
        .enumerate()
        .filter(|(i, p)| details.files[*i].priority != **p)
        .map(|(i, p)| (i, *p))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    skip_vanished(app.session.set_file_priorities(hash, changes).await)
}

/// `torrent-remove`, with its files when `delete-local-data` is true.
pub(super) async fn remove<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let delete = flag(args, "delete-local-data")?.unwrap_or(false);
    for t in select(app, args).await?.into_list() {
        skip_vanished(app.session.remove(t.info_hash, delete).await)?;
        app.ids.removed(t.info_hash);
    }
    Ok(Map::new())
}

/// `torrent-set-location` with `move: true`: the files move to the new
/// folder while the torrent runs. Without `move`, Transmission only
/// changes where it looks for the data; bittide keeps a torrent and its
/// files together, so that is refused.
pub(super) async fn set_location<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let Some(location) = arg::<String>(args, "location")? else {
        return Err(RpcError::Params("no location".into()));
    };
    if !Path::new(&location).is_absolute() {
        return Err(RpcError::NotAbsolute("new location path is not absolute"));
    }
    if !flag(args, "move")?.unwrap_or(false) {
        return Err(RpcError::Params(
            "bittide moves a torrent's data with it: send \"move\": true".into(),
        ));
    }
    for t in select(app, args).await?.into_list() {
        let to = PathBuf::from(&location);
        skip_vanished(app.session.move_storage(t.info_hash, to).await)?;
    }
    Ok(Map::new())
}

/// Where `queue-move-*` sends its torrents.
#[derive(Clone, Copy)]
pub(super) enum Move {
    Top,
    Bottom,
    Up,
    Down,
}

pub(super) async fn queue<R: Runtime>(app: &App<R>, args: &Map<String, Value>, to: Move) -> Answer {
    let mut chosen: Vec<TorrentView> = select(app, args).await?.into_list();
    chosen.sort_by_key(|t| t.queue_position);
    let last = app.session.list().await?.len().saturating_sub(1);
    // Top: the last chosen first, so the chosen keep their order above
    // the rest; Down likewise from the bottom.
    if matches!(to, Move::Top | Move::Down) {
        chosen.reverse();
    }
    for t in chosen {
        let position = match to {
            Move::Top => 0,
            Move::Bottom => last,
            Move::Up => t.queue_position.saturating_sub(1),
            Move::Down => (t.queue_position + 1).min(last),
        };
        skip_vanished(app.session.set_queue_position(t.info_hash, position).await)?;
    }
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn seeding_modes_become_share_limits() {
        // The session: ratio 2.0 in force, no time goal (shown as 30 min).
        let global = (Some(2.0), None, 2.0, 30);
        let change = |v: Value| SeedingChange::from_args(&args(v)).unwrap().unwrap();
        let own = change(json!({"seedRatioMode": 1, "seedRatioLimit": 1.5}))
            .apply(None, global)
            .unwrap();
        assert_eq!(own.ratio, Some(1.5));
        assert_eq!(
            own.seeding_time, None,
            "idle mode 0 follows the session's none"
        );
        let unlimited = change(json!({"seedRatioMode": 2}))
            .apply(Some(&own), global)
            .unwrap();
        assert_eq!(unlimited.ratio, None);
        let idle = change(json!({"seedIdleMode": 1, "seedIdleLimit": 20}))
            .apply(Some(&own), global)
            .unwrap();
        assert_eq!(idle.ratio, Some(1.5), "the ratio side is kept");
        assert_eq!(idle.seeding_time, Some(Duration::from_secs(1200)));
        let back =
            change(json!({"seedRatioMode": 0, "seedIdleMode": 0})).apply(Some(&idle), global);
        assert_eq!(back, None, "both sides global: no limits of its own");
        assert!(SeedingChange::from_args(&args(json!({})))
            .unwrap()
            .is_none());
        assert!(SeedingChange::from_args(&args(json!({"seedRatioMode": 3}))).is_err());
        assert!(SeedingChange::from_args(&args(json!({"seedRatioLimit": -1.0}))).is_err());
    }

    #[test]
    fn files_unwanted_at_add() {
        let none = args(json!({}));
        assert_eq!(selected_files(&none, 3).unwrap(), None);
        let some = args(json!({"files-unwanted": [0, 2], "files-wanted": [0]}));
        assert_eq!(selected_files(&some, 3).unwrap(), Some(vec![1]));
        let bad = args(json!({"files-unwanted": [3]}));
        assert!(matches!(selected_files(&bad, 3), Err(RpcError::FileIndex)));
    }

    #[test]
    fn labels_are_checked() {
        let ok = args(json!({"labels": [" tv ", "tv", "hd"]}));
        assert_eq!(labels(&ok).unwrap(), Some(vec!["tv".into(), "hd".into()]));
        for bad in [
            json!({"labels": [""]}),
            json!({"labels": ["a,b"]}),
            json!({"labels": "x"}),
        ] {
            assert!(labels(&args(bad)).is_err());
        }
    }

    #[test]
    fn limits_in_kilobytes() {
        let l = |kb, on| Limit { kb, on };
        assert_eq!(l(Some(50), None).apply(0), 50_000);
        assert_eq!(l(Some(50), Some(false)).apply(9), 0);
        assert_eq!(l(None, Some(true)).apply(7_000), 7_000);
        assert_eq!(l(None, Some(true)).apply(0), DEFAULT_LIMIT_KB * KB);
        assert_eq!(l(None, None).apply(7), 7);
    }
}
