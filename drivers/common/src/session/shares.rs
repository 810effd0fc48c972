//! A torrent's own seeding goal ("share limits" in qBittorrent's words):
//! a ratio, a seeding time and/or a time seeding without uploading after
//! which it stops, in place of the session's default goal. Kept in the torrent's settings file and given
//! to the engine at every start ([`Engine::set_seeding_goal`]).
//!
//! [`Engine::set_seeding_goal`]: bittide_core::engine::Engine::set_seeding_goal

use std::collections::BTreeMap;
use std::time::Duration;

use bittide_core::bencode::{Dict, Value};
use bittide_core::engine::SeedingGoal;
use bittide_core::InfoHash;

use super::handle::SessionHandle;
use super::views::RequestError;
use crate::control::Command;
use crate::runtime::Runtime;

/// A torrent's own goal; a field left `None` never stops it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ShareLimits {
    /// Stop once uploaded / wanted size reaches this.
    pub ratio: Option<f64>,
    /// Stop after seeding this long.
    pub seeding_time: Option<Duration>,
    /// Stop after seeding this long without uploading a byte.
    pub inactive_time: Option<Duration>,
}

impl ShareLimits {
    pub(crate) fn goal(&self) -> SeedingGoal {
        SeedingGoal {
            ratio: self.ratio,
            seeding_time: self.seeding_time,
            inactive_time: self.inactive_time,
        }
    }
}

/// Bencode has no fractions: the ratio is stored in thousandths.
const RATIO_SCALE: f64 = 1000.0;

/// The settings-file entries for `limits` (none when it has no own goal).
pub(crate) fn encode(limits: Option<&ShareLimits>) -> Vec<(&'static [u8], Value<'static>)> {
    let Some(l) = limits else {
        return Vec::new();
    };
    let ratio = l.ratio.map_or(-1, |r| (r * RATIO_SCALE).round() as i64);
    let seconds =
        |d: Option<Duration>| d.map_or(-1, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    vec![
        (&b"share_ratio_milli"[..], Value::int(ratio)),
        (&b"share_seconds"[..], Value::int(seconds(l.seeding_time))),
        (
            &b"share_inactive_seconds"[..],
            Value::int(seconds(l.inactive_time)),
        ),
    ]
}

/// The limits a settings file holds (`None`: the session's goal applies).
pub(crate) fn decode(d: &Dict<'_>) -> Option<ShareLimits> {
    let ratio = d.get(b"share_ratio_milli")?.as_int()?;
    let seconds = |v: i64| u64::try_from(v).ok().map(Duration::from_secs);
    let time = d.get(b"share_seconds")?.as_int()?;
    // Absent in files written before the inactivity goal: none.
    let inactive = d
        .get(b"share_inactive_seconds")
        .and_then(Value::as_int)
        .unwrap_or(-1);
    Some(ShareLimits {
        ratio: (ratio >= 0).then(|| ratio as f64 / RATIO_SCALE),
        seeding_time: seconds(time),
        inactive_time: seconds(inactive),
    })
}

impl<R: Runtime> SessionHandle<R> {
    /// Gives a torrent a seeding goal of its own (`None`: the session's
    /// default again). Reaching it pauses the torrent (or removes it, as
    /// the session's `seed_goal_remove` says).
    pub async fn set_share_limits(
        &self,
        hash: InfoHash,
        limits: Option<ShareLimits>,
    ) -> Result<(), RequestError> {
        if let Some(r) = limits.and_then(|l| l.ratio) {
            if !(r.is_finite() && r >= 0.0) {
                return Err(RequestError::BadRequest(
                    "the ratio limit must be a number ≥ 0".into(),
                ));
            }
        }
        let id = self.id(hash)?;
        self.send(Command::SetSeedingGoal(id, limits.map(|l| l.goal())))?;
        self.update(hash, |e| e.settings.share_limits = limits)
            .await
    }

    /// Every torrent's time spent seeding, this run and earlier ones
    /// (what a seeding-time goal counts).
    pub async fn seeding_times(&self) -> Result<BTreeMap<InfoHash, Duration>, RequestError> {
        let now = self.rt.now();
        self.ask(move |view, reg| {
            reg.entries
                .iter()
                .map(|(h, e)| {
                    let time = view
                        .engine()
                        .torrent(e.id)
                        .map_or(Duration::from_secs(e.settings.seeding_time), |t| {
                            t.seeding_time(now)
                        });
                    (*h, time)
                })
                .collect()
        })
        .await
    }

    /// Every torrent's own limits (torrents without are left out).
    pub async fn share_limits(&self) -> BTreeMap<InfoHash, ShareLimits> {
        self.shared
            .registry()
            .entries
            .iter()
            .filter_map(|(h, e)| Some((*h, e.settings.share_limits?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_survive_the_settings_file() {
        for limits in [
            ShareLimits {
                ratio: Some(1.5),
                seeding_time: Some(Duration::from_secs(7200)),
                inactive_time: Some(Duration::from_secs(900)),
            },
            ShareLimits {
                ratio: None,
                seeding_time: Some(Duration::from_secs(60)),
                inactive_time: None,
            },
            ShareLimits::default(),
        ] {
            let entries = encode(Some(&limits));
            let bytes = Value::dict(entries).to_vec();
            let root = bittide_core::bencode::decode(&bytes).unwrap();
            assert_eq!(decode(root.as_dict().unwrap()), Some(limits));
        }
        assert!(encode(None).is_empty());
        // Written before the inactivity goal existed: none.
        let old = b"d17:share_ratio_millii1500e13:share_secondsi60ee";
        let root = bittide_core::bencode::decode(old).unwrap();
        let limits = decode(root.as_dict().unwrap()).unwrap();
        assert_eq!(limits.inactive_time, None);
        assert_eq!(limits.seeding_time, Some(Duration::from_secs(60)));
    }
}
