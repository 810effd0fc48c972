//! `session-get`, `session-set`, `session-stats`: the session-wide
//! settings in Transmission's names and units (speeds in kB/s of 1000
//! bytes, idle limits in minutes).

use std::path::{Path, PathBuf};

use bittide_driver::runtime::Runtime;
use bittide_driver::session::views::{SessionSettings, SettingsPatch};
use serde_json::{json, Map, Value};

use super::{arg, flag, lock, Answer, RpcError};
use crate::App;

/// The RPC version of Transmission 4.0, whose fields and words this
/// module follows.
pub(super) const RPC_VERSION: u64 = 17;
const RPC_VERSION_MINIMUM: u64 = 14;
const RPC_VERSION_SEMVER: &str = "5.3.0";

/// The version clients see: Transmission's, then ours. Sonarr reads the
/// first dotted number outside parentheses.
fn version() -> String {
    format!("4.0.6 (bittide {})", env!("CARGO_PKG_VERSION"))
}

/// A kB/s the way Transmission counts it.
const KB: u64 = 1000;

/// Values Transmission keeps while their switch is off (a ratio limit
/// that is not enforced still has a number); bittide keeps only the
/// enforced ones, so these are remembered here for the daemon's life.
pub(super) struct Remembered {
    ratio: f64,
    idle_minutes: u64,
    down_kb: u64,
    up_kb: u64,
}

impl Default for Remembered {
    fn default() -> Remembered {
        // Transmission's defaults.
        Remembered {
            ratio: 2.0,
            idle_minutes: 30,
            down_kb: 100,
            up_kb: 100,
        }
    }
}

impl Remembered {
    /// Takes the enforced values from the session's settings.
    fn learn(&mut self, s: &SessionSettings) {
        if let Some(r) = s.seed_ratio {
            self.ratio = r;
        }
        if let Some(t) = s.seed_time {
            self.idle_minutes = t / 60;
        }
        if s.download_rate > 0 {
            self.down_kb = s.download_rate / KB;
        }
        if s.upload_rate > 0 {
            self.up_kb = s.upload_rate / KB;
        }
    }
}

/// The global seeding goals in Transmission's terms, for torrent-get too:
/// (ratio, ratio enforced, idle minutes, idle enforced).
pub(super) fn goals<R: Runtime>(app: &App<R>, s: &SessionSettings) -> (f64, bool, u64, bool) {
    let mut r = lock(&app.transmission.remembered);
    r.learn(s);
    (
        r.ratio,
        s.seed_ratio.is_some(),
        r.idle_minutes,
        s.seed_time.is_some(),
    )
}

/// `session-get`: every field, or those named in `fields`.
pub(super) async fn get<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let s = app.session.settings().await?;
    let stats = app.session.stats().await?;
    let (ratio, ratio_on, idle, idle_on) = goals(app, &s);
    let (down_kb, up_kb) = {
        let r = lock(&app.transmission.remembered);
        (r.down_kb, r.up_kb)
    };
    let dir = s.download_dir.to_string_lossy().into_owned();
    let all = json!({
        "rpc-version": RPC_VERSION,
        "rpc-version-minimum": RPC_VERSION_MINIMUM,
        "rpc-version-semver": RPC_VERSION_SEMVER,
        "version": version(),
        "session-id": app.transmission.session_id,
        "download-dir": dir,
        "incomplete-dir": dir,
        "incomplete-dir-enabled": false,
        "seedRatioLimit": ratio,
        "seedRatioLimited": ratio_on,
        "idle-seeding-limit": idle,
        "idle-seeding-limit-enabled": idle_on,
        "speed-limit-down": down_kb,
        "speed-limit-down-enabled": s.download_rate > 0,
        "speed-limit-up": up_kb,
        "speed-limit-up-enabled": s.upload_rate > 0,
        "alt-speed-enabled": false,
        "alt-speed-down": 50,
        "alt-speed-up": 50,
        "download-queue-enabled": s.active_downloads.is_some(),
        "download-queue-size": s.active_downloads.unwrap_or(5),
        "seed-queue-enabled": s.active_seeds.is_some(),
        "seed-queue-size": s.active_seeds.unwrap_or(10),
        "queue-stalled-enabled": false,
        "queue-stalled-minutes": 30,
    });
    let more = json!({
        "peer-limit-global": s.max_connections,
        "peer-limit-per-torrent": s.max_connections,
        "peer-port": stats.listen.port(),
        "peer-port-random-on-start": false,
        "port-forwarding-enabled": false,
        "dht-enabled": stats.dht_nodes.is_some(),
        "pex-enabled": true,
        "lpd-enabled": false,
        "utp-enabled": true,
        "encryption": "preferred",
        "start-added-torrents": true,
        "rename-partial-files": false,
        "trash-original-torrent-files": false,
        "script-torrent-done-enabled": false,
        "script-torrent-done-filename": "",
        "blocklist-enabled": false,
        "blocklist-size": 0,
        "blocklist-url": "",
        "cache-size-mb": 4,
        "config-dir": "",
        "default-trackers": "",
        "units": {
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
            "speed-bytes": KB,
            "size-units": ["kB", "MB", "GB", "TB"],
            "size-bytes": KB,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"],
            "memory-bytes": 1024,
        },
    });
    let (Value::Object(mut all), Value::Object(more)) = (all, more) else {
        return Err(RpcError::Params("internal: session fields".into()));
    };
    all.extend(more);
    if let Some(wanted) = arg::<Vec<String>>(args, "fields")? {
        if !wanted.is_empty() {
            all.retain(|k, _| wanted.iter().any(|w| w == k));
        }
    }
    Ok(all)
}

/// `session-set`: the fields bittide has; the others are ignored, as
/// Transmission ignores keys it does not know.
pub(super) async fn set<R: Runtime>(app: &App<R>, args: &Map<String, Value>) -> Answer {
    let current = app.session.settings().await?;
    let mut patch = SettingsPatch::default();
    let (ratio, idle, down_kb, up_kb) = {
        let mut r = lock(&app.transmission.remembered);
        r.learn(&current);
        if let Some(v) = arg::<f64>(args, "seedRatioLimit")? {
            if !(v.is_finite() && v >= 0.0) {
                return Err(RpcError::Params("Invalid params: seedRatioLimit".into()));
            }
            r.ratio = v;
        }
        if let Some(v) = arg::<u64>(args, "idle-seeding-limit")? {
            r.idle_minutes = v;
        }
        if let Some(v) = arg::<u64>(args, "speed-limit-down")? {
            r.down_kb = v;
        }
        if let Some(v) = arg::<u64>(args, "speed-limit-up")? {
            r.up_kb = v;
        }
        (r.ratio, r.idle_minutes, r.down_kb, r.up_kb)
    };
    let ratio_on = flag(args, "seedRatioLimited")?.unwrap_or(current.seed_ratio.is_some());
    if args.contains_key("seedRatioLimited") || args.contains_key("seedRatioLimit") {
        patch.seed_ratio = Some(ratio_on.then_some(ratio));
    }
    let idle_on = flag(args, "idle-seeding-limit-enabled")?.unwrap_or(current.seed_time.is_some());
    if args.contains_key("idle-seeding-limit-enabled") || args.contains_key("idle-seeding-limit") {
        patch.seed_time = Some(idle_on.then_some(idle * 60));
    }
    let down_on = flag(args, "speed-limit-down-enabled")?.unwrap_or(current.download_rate > 0);
    if args.contains_key("speed-limit-down-enabled") || args.contains_key("speed-limit-down") {
        patch.download_rate = Some(if down_on { down_kb * KB } else { 0 });
    }
    let up_on = flag(args, "speed-limit-up-enabled")?.unwrap_or(current.upload_rate > 0);
    if args.contains_key("speed-limit-up-enabled") || args.contains_key("speed-limit-up") {
        patch.upload_rate = Some(if up_on { up_kb * KB } else { 0 });
    }
    patch.active_downloads = queue(args, "download-queue", current.active_downloads)?;
    patch.active_seeds = queue(args, "seed-queue", current.active_seeds)?;
    if let Some(v) = arg::<usize>(args, "peer-limit-global")? {
        patch.max_connections = Some(v);
    }
    if let Some(dir) = arg::<String>(args, "download-dir")? {
        if !Path::new(&dir).is_absolute() {
            return Err(RpcError::NotAbsolute(
                "download directory path is not absolute",
            ));
        }
        patch.download_dir = Some(PathBuf::from(dir));
    }
    app.session.set_settings(patch).await?;
    Ok(Map::new())
}

/// `<prefix>-enabled` and `<prefix>-size` as one optional limit.
fn queue(
    args: &Map<String, Value>,
    prefix: &str,
    current: Option<usize>,
) -> Result<Option<Option<usize>>, RpcError> {
    let on = flag(args, &format!("{prefix}-enabled"))?;
    let size = arg::<usize>(args, &format!("{prefix}-size"))?;
    Ok(match (on, size) {
        (None, None) => None,
        (Some(false), _) => Some(None),
        (Some(true), s) => Some(Some(s.or(current).unwrap_or(5))),
        (None, Some(s)) => current.map(|_| Some(s)),
    })
}

/// `session-stats`: rates, counts, and bytes since the daemon started
/// (bittide keeps no all-time totals, so both blocks say the same).
pub(super) async fn stats<R: Runtime>(app: &App<R>) -> Answer {
    let s = app.session.stats().await?;
    let block = json!({
        "uploadedBytes": s.uploaded,
        "downloadedBytes": s.downloaded,
        "filesAdded": s.torrents,
        "sessionCount": 1,
        "secondsActive": s.uptime,
    });
    let active = s.downloading + s.seeding;
    let answer = json!({
        "activeTorrentCount": active,
        "pausedTorrentCount": s.paused,
        "torrentCount": s.torrents,
        "downloadSpeed": s.download_rate,
        "uploadSpeed": s.upload_rate,
        "cumulative-stats": block,
        "current-stats": block,
    });
    match answer {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}
