//! Share limits: qBittorrent's per-torrent ratio and seeding-time limits
//! (`-2` the global setting, `-1` none, else the limit; seeding time in
//! minutes), mapped onto the session's per-torrent seeding goal.

use std::time::Duration;

use axum::response::Response;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::ShareLimits;

use super::{ok, Call, QbtError};

/// What `torrents/info` shows: `(ratio_limit, seeding_time_limit)`.
pub(crate) fn shown(limits: Option<&ShareLimits>) -> (f64, i64) {
    match limits {
        None => (-2.0, -2),
        Some(l) => (
            l.ratio.unwrap_or(-1.0),
            l.seeding_time.map_or(-1, |d| (d.as_secs() / 60) as i64),
        ),
    }
}

/// The limits two parameters ask for: `None` when neither is given,
/// `Some(None)` for "the global setting" (both `-2`). A `-2` beside an
/// own limit takes the session's current value for that half, since a
/// torrent's own goal replaces the session's whole.
pub(crate) async fn parse<R: Runtime>(
    call: &Call<R>,
    ratio_key: &str,
    time_key: &str,
    required: bool,
) -> Result<Option<Option<ShareLimits>>, QbtError> {
    let ratio = call.params.number(ratio_key)?;
    let minutes = call.params.int(time_key)?;
    let (ratio, minutes) = match (ratio, minutes) {
        (None, None) if !required => return Ok(None),
        (Some(r), Some(m)) => (r, m),
        (Some(r), None) if !required => (r, -2),
        (None, Some(m)) if !required => (-2.0, m),
        _ => {
            return Err(QbtError::BadParams(format!(
                "Missing required parameters: {ratio_key}, {time_key}"
            )))
        }
    };
    if ratio == -2.0 && minutes == -2 {
        return Ok(Some(None));
    }
    let global = call.app.session.settings().await?;
    let ratio = match ratio {
        -2.0 => global.seed_ratio,
        -1.0 => None,
        r if r >= 0.0 => Some(r),
        _ => return Err(QbtError::BadParams(format!("'{ratio_key}' is invalid"))),
    };
    let seeding_time = match minutes {
        -2 => global.seed_time.map(Duration::from_secs),
        -1 => None,
        m if m >= 0 => Some(Duration::from_secs(m as u64 * 60)),
        _ => return Err(QbtError::BadParams(format!("'{time_key}' is invalid"))),
    };
    Ok(Some(Some(ShareLimits {
        ratio,
        seeding_time,
    })))
}

/// `torrents/setShareLimits`: `hashes`, `ratioLimit`, `seedingTimeLimit`
/// (`inactiveSeedingTimeLimit` is accepted and ignored: bittide has no
/// inactivity goal).
pub(crate) async fn set<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let limits = parse(&call, "ratioLimit", "seedingTimeLimit", true)
        .await?
        .flatten();
    for hash in call.hashes().await? {
        call.app.session.set_share_limits(hash, limits).await?;
    }
    Ok(ok())
}
