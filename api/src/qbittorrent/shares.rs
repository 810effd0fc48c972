//! Share limits: qBittorrent's per-torrent ratio, seeding-time and
//! inactive-seeding-time limits (`-2` the global setting, `-1` none, else
//! the limit; times in minutes), mapped onto the session's per-torrent
//! seeding goal.

use std::time::Duration;

use axum::response::Response;
use bittide_driver::runtime::Runtime;
use bittide_driver::session::ShareLimits;

use super::{ok, Call, QbtError};

/// A torrent's limits as `torrents/info` shows them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Shown {
    pub(crate) ratio: f64,
    pub(crate) seeding_minutes: i64,
    pub(crate) inactive_minutes: i64,
}

/// The values qBittorrent shows for "the global setting".
pub(crate) const GLOBAL: Shown = Shown {
    ratio: -2.0,
    seeding_minutes: -2,
    inactive_minutes: -2,
};

/// What `torrents/info` shows of a torrent's own limits (`None`: global).
pub(crate) fn shown(limits: Option<&ShareLimits>) -> Shown {
    let minutes = |d: Option<Duration>| d.map_or(-1, |d| (d.as_secs() / 60) as i64);
    match limits {
        None => GLOBAL,
        Some(l) => Shown {
            ratio: l.ratio.unwrap_or(-1.0),
            seeding_minutes: minutes(l.seeding_time),
            inactive_minutes: minutes(l.inactive_time),
        },
    }
}

/// The inactive-seeding-time parameter's key, the same on `torrents/add`
/// and `torrents/setShareLimits`.
const INACTIVE_KEY: &str = "inactiveSeedingTimeLimit";

/// The limits the parameters ask for: `None` when none is given,
/// `Some(None)` for "the global setting" (all `-2`). A `-2` beside an own
/// limit takes the session's current value for that part, since a
/// torrent's own goal replaces the session's whole. With `required`, the
/// ratio and seeding time must be given (the inactive time may be left
/// out: clients older than WebAPI 2.9.2 do not send it).
pub(crate) async fn parse<R: Runtime>(
    call: &Call<R>,
    ratio_key: &str,
    time_key: &str,
    required: bool,
) -> Result<Option<Option<ShareLimits>>, QbtError> {
    let ratio = call.params.number(ratio_key)?;
    let minutes = call.params.int(time_key)?;
    let inactive = call.params.int(INACTIVE_KEY)?;
    let missing = || {
        QbtError::BadParams(format!(
            "Missing required parameters: {ratio_key}, {time_key}"
        ))
    };
    if required && (ratio.is_none() || minutes.is_none()) {
        return Err(missing());
    }
    if ratio.is_none() && minutes.is_none() && inactive.is_none() {
        return Ok(None);
    }
    let (ratio, minutes, inactive) = (
        ratio.unwrap_or(-2.0),
        minutes.unwrap_or(-2),
        inactive.unwrap_or(-2),
    );
    if ratio == -2.0 && minutes == -2 && inactive == -2 {
        return Ok(Some(None));
    }
    let global = call.app.session.settings().await?;
    let ratio = match ratio {
        -2.0 => global.seed_ratio,
        -1.0 => None,
        r if r >= 0.0 => Some(r),
        _ => return Err(QbtError::BadParams(format!("'{ratio_key}' is invalid"))),
    };
    let time = |key: &str, minutes: i64, global: Option<u64>| match minutes {
        -2 => Ok(global.map(Duration::from_secs)),
        -1 => Ok(None),
        m if m >= 0 => Ok(Some(Duration::from_secs(m as u64 * 60))),
        _ => Err(QbtError::BadParams(format!("'{key}' is invalid"))),
    };
    Ok(Some(Some(ShareLimits {
        ratio,
        seeding_time: time(time_key, minutes, global.seed_time)?,
        inactive_time: time(INACTIVE_KEY, inactive, global.seed_inactive_time)?,
    })))
}

/// `torrents/setShareLimits`: `hashes`, `ratioLimit`, `seedingTimeLimit`,
/// `inactiveSeedingTimeLimit`.
pub(crate) async fn set<R: Runtime>(call: Call<R>) -> Result<Response, QbtError> {
    let limits = parse(&call, "ratioLimit", "seedingTimeLimit", true)
        .await?
        .flatten();
    for hash in call.hashes().await? {
        call.app.session.set_share_limits(hash, limits).await?;
    }
    Ok(ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_shown_in_minutes_with_qbittorrents_markers() {
        assert_eq!(shown(None), GLOBAL);
        let l = ShareLimits {
            ratio: Some(1.5),
            seeding_time: None,
            inactive_time: Some(Duration::from_secs(1800)),
        };
        let want = Shown {
            ratio: 1.5,
            seeding_minutes: -1,
            inactive_minutes: 30,
        };
        assert_eq!(shown(Some(&l)), want);
    }
}
