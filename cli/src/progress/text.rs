//! The words of the progress display: the status line a terminal redraws
//! (and a pipe gets now and then), and the lines said once — resumed,
//! metadata, the summary at the end.
//!
//! Everything here is a pure function of numbers, so the widths can be
//! tested: a status line never exceeds [`WIDTH`] columns, because a line
//! that wraps cannot be redrawn in place and a terminal fills with copies.

use bittide_driver::units::human;

use super::status::{Phase, Snapshot};

/// Columns a status line may use: an 80-column terminal less the last
/// column, where some terminals wrap early.
pub(super) const WIDTH: usize = 79;

/// The narrowest bar worth drawing; below it the bar is left out.
const MIN_BAR: usize = 10;

/// The widest bar: beyond it more width says nothing more.
const MAX_BAR: usize = 30;

/// `1 peer`, `2 peers`, `0 peers`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration for an ETA: `45s`, `3m20s`, `1h05m`, `>99h`.
pub(super) fn eta(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..=359_999 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => ">99h".into(),
    }
}

/// A measured duration: `0.4 s`, `16.2 s`, then as [`eta`].
pub(super) fn took(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        eta(secs as u64)
    }
}

/// A rate in bytes per second.
pub(super) fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human(bytes_per_sec.max(0.0) as u64))
}

/// `23.8/64.0 MiB` when both have the same unit, else `512 KiB/64.0 MiB`.
fn sizes(done: u64, total: u64) -> String {
    let (d, t) = (human(done), human(total));
    match (d.rsplit_once(' '), t.rsplit_once(' ')) {
        (Some((dn, du)), Some((_, tu))) if du == tu => format!("{dn}/{t}"),
        _ => format!("{d}/{t}"),
    }
}

/// Percent done, one decimal, never 100.0 before the end.
fn percent(done: u64, total: u64) -> String {
    if total == 0 {
        return "0.0%".into();
    }
    let pct = done as f64 * 100.0 / total as f64;
    // 99.96 % would round to "100.0%" while pieces are still missing.
    let pct = if done < total { pct.min(99.9) } else { pct };
    format!("{pct:.1}%")
}

/// A ratio with two decimals, or `-` when there is none yet.
fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

/// An ASCII bar `[####------]` `width` columns wide in all.
fn bar(fraction: f64, width: usize) -> String {
    let inner = width.saturating_sub(2);
    let filled = ((fraction.clamp(0.0, 1.0) * inner as f64) as usize).min(inner);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(inner - filled))
}

/// The status line for one report: a bar (with `with_bar`, when it fits)
/// then the phase's facts, most important first. Facts that do not fit
/// in [`WIDTH`] columns are left out, the least important first.
pub(super) fn status(s: &Snapshot, with_bar: bool) -> String {
    // (text, importance): the higher, the longer it survives.
    let mut parts: Vec<(String, u8)> = Vec::new();
    let mut fraction = None;
    match s.phase {
        Phase::Metadata => {
            parts.push((
                format!("fetching metadata from {}", count(s.peers, "peer", "peers")),
                9,
            ));
        }
        Phase::Starting => parts.push(("starting".into(), 9)),
        Phase::Checking => {
            let (checked, pieces) = s.checked.unwrap_or((0, 0));
            let frac = if pieces == 0 {
                0.0
            } else {
                f64::from(checked) / f64::from(pieces)
            };
            fraction = Some(frac);
            parts.push((format!("checking {:.0}%", frac * 100.0), 9));
            parts.push((format!("{checked} of {pieces} pieces"), 5));
        }
        Phase::Downloading => {
            fraction = Some(if s.total == 0 {
                0.0
            } else {
                s.done as f64 / s.total as f64
            });
            parts.push((percent(s.done, s.total), 9));
            parts.push((sizes(s.done, s.total), 6));
            parts.push((format!("↓ {}", rate(s.down_rate)), 8));
            parts.push((format!("↑ {}", rate(s.up_rate)), 3));
            parts.push((count(s.peers, "peer", "peers"), 7));
            if s.web_seeds > 0 {
                parts.push((count(s.web_seeds, "web seed", "web seeds"), 4));
            }
            let eta = s.eta.map_or_else(|| "?".into(), eta);
            parts.push((format!("eta {eta}"), 5));
        }
        Phase::Seeding => {
            parts.push(("seeding".into(), 9));
            parts.push((format!("↑ {}", human(s.uploaded)), 8));
            parts.push((format!("({})", rate(s.up_rate)), 4));
            parts.push((format!("ratio {}", ratio(s.ratio)), 6));
            parts.push((count(s.peers, "peer", "peers"), 7));
        }
        Phase::Waiting => parts.push(("waiting".into(), 9)),
        Phase::Stopped => parts.push(("stopping".into(), 9)),
    }
    const SEP: &str = "  ";
    let width = |parts: &[(String, u8)]| {
        parts.iter().map(|(t, _)| t.chars().count()).sum::<usize>()
            + SEP.len() * parts.len().saturating_sub(1)
    };
    while width(&parts) > WIDTH && parts.len() > 1 {
        let least = parts
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, importance))| *importance)
            .map_or(0, |(i, _)| i);
        parts.remove(least);
    }
    let text = parts
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join(SEP);
    let room = WIDTH.saturating_sub(text.chars().count() + 1);
    let line = match fraction {
        Some(f) if with_bar && room >= MIN_BAR => format!("{} {text}", bar(f, room.min(MAX_BAR))),
        _ => text,
    };
    // A single fact longer than the line (it cannot be: phases' words
    // are short) would still be cut rather than wrap.
    line.chars().take(WIDTH).collect()
}

/// Said at start when resume data vouched for some of the content.
pub(super) fn resumed(resumed: u64, size: u64) -> String {
    format!(
        "resumed: {} of {} already verified",
        human(resumed),
        human(size)
    )
}

/// Said once when a magnet link's metadata has arrived.
pub(super) fn metadata(name: &str, total: u64, secs: f64) -> String {
    format!(
        "metadata: {name}, {} (received in {})",
        human(total),
        took(secs)
    )
}

/// The summary of a finished download: what, how much, how fast, where.
pub(super) fn finished(name: &str, total: u64, downloaded: u64, secs: f64, path: &str) -> String {
    if downloaded == 0 {
        return format!("done: {name} — {}, already complete → {path}", human(total));
    }
    let avg = if secs > 0.0 {
        downloaded as f64 / secs
    } else {
        0.0
    };
    let fetched = if downloaded < total {
        format!(", {} fetched", human(downloaded))
    } else {
        String::new()
    };
    format!(
        "done: {name} — {}{fetched} in {} ({}) → {path}",
        human(total),
        took(secs),
        rate(avg)
    )
}

/// The summary when seeding ends.
pub(super) fn seeded(name: &str, uploaded: u64, ratio_: Option<f64>, secs: f64) -> String {
    format!(
        "stopped seeding {name}: ↑ {} in {}, ratio {}",
        human(uploaded),
        took(secs),
        ratio(ratio_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(phase: Phase) -> Snapshot {
        Snapshot {
            phase,
            done: 0,
            total: 0,
            checked: None,
            peers: 0,
            web_seeds: 0,
            downloaded: 0,
            uploaded: 0,
            down_rate: 0.0,
            up_rate: 0.0,
            eta: None,
            ratio: None,
        }
    }

    /// The widest values each phase can show, and ordinary ones.
    fn every_phase() -> Vec<Snapshot> {
        let mut all = Vec::new();
        for (done, total, peers, rate, eta) in [
            (0, 0, 0, 0.0, None),
            (25_000_000, 67_108_864, 3, 2.1e6, Some(20)),
            (
                1_099_511_627_775,
                1_099_511_627_776,
                1000,
                1023.9e9,
                Some(u64::MAX),
            ),
            (1023, 1_048_575, 1, 1023.0, Some(3599)),
        ] {
            for phase in [
                Phase::Metadata,
                Phase::Starting,
                Phase::Checking,
                Phase::Downloading,
                Phase::Seeding,
                Phase::Waiting,
                Phase::Stopped,
            ] {
                all.push(Snapshot {
                    done,
                    total,
                    checked: Some((u32::MAX - 1, u32::MAX)),
                    peers,
                    downloaded: done,
                    uploaded: total * 3,
                    down_rate: rate,
                    up_rate: rate,
                    eta,
                    ratio: Some(12345.678),
                    ..snapshot(phase)
                });
            }
        }
        all
    }

    #[test]
    fn status_lines_fit_80_columns() {
        for s in every_phase() {
            for with_bar in [true, false] {
                let line = status(&s, with_bar);
                assert!(
                    line.chars().count() <= WIDTH,
                    "{} columns: {line}",
                    line.len()
                );
                assert!(!line.contains('\n'), "{line}");
            }
        }
    }

    #[test]
    fn an_ordinary_download_shows_everything_with_a_bar() {
        let s = Snapshot {
            done: 25_000_000,
            total: 67_108_864,
            peers: 3,
            down_rate: 2.0 * 1048576.0,
            eta: Some(20),
            ..snapshot(Phase::Downloading)
        };
        let line = status(&s, true);
        assert!(line.starts_with("[###"), "{line}");
        assert!(
            line.ends_with("37.3%  23.8/64.0 MiB  ↓ 2.0 MiB/s  ↑ 0 B/s  3 peers  eta 20s"),
            "{line}"
        );
    }

    #[test]
    fn plurals_are_right() {
        assert_eq!(count(1, "peer", "peers"), "1 peer");
        assert_eq!(count(0, "peer", "peers"), "0 peers");
        assert_eq!(count(2, "peer", "peers"), "2 peers");
        let one = Snapshot {
            peers: 1,
            ..snapshot(Phase::Metadata)
        };
        assert_eq!(status(&one, true), "fetching metadata from 1 peer");
    }

    #[test]
    fn checking_has_its_own_progress_and_no_byte_counts() {
        let s = Snapshot {
            checked: Some((379, 1024)),
            ..snapshot(Phase::Checking)
        };
        let line = status(&s, false);
        assert_eq!(line, "checking 37%  379 of 1024 pieces");
        assert!(!line.contains(" B"), "{line}");
    }

    #[test]
    fn seeding_says_uploaded_and_ratio() {
        let s = Snapshot {
            uploaded: 12_900_000,
            ratio: Some(0.42),
            peers: 2,
            ..snapshot(Phase::Seeding)
        };
        assert_eq!(
            status(&s, true),
            "seeding  ↑ 12.3 MiB  (0 B/s)  ratio 0.42  2 peers"
        );
    }

    #[test]
    fn percent_says_100_only_when_done() {
        assert_eq!(percent(9999, 10000), "99.9%");
        assert_eq!(percent(10000, 10000), "100.0%");
        assert_eq!(percent(0, 0), "0.0%");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(eta(45), "45s");
        assert_eq!(eta(200), "3m20s");
        assert_eq!(eta(3900), "1h05m");
        assert_eq!(eta(u64::MAX), ">99h");
        assert_eq!(took(3.25), "3.2 s");
        assert_eq!(took(125.0), "2m05s");
    }

    #[test]
    fn the_summary_has_size_time_rate_and_path() {
        assert_eq!(
            finished("big", 64 << 20, 64 << 20, 3.2, "/d/big"),
            "done: big — 64.0 MiB in 3.2 s (20.0 MiB/s) → /d/big"
        );
        assert_eq!(
            finished("big", 64 << 20, 16 << 20, 2.0, "/d/big"),
            "done: big — 64.0 MiB, 16.0 MiB fetched in 2.0 s (8.0 MiB/s) → /d/big"
        );
        assert_eq!(
            finished("big", 64 << 20, 0, 0.1, "/d/big"),
            "done: big — 64.0 MiB, already complete → /d/big"
        );
        assert_eq!(
            resumed(48 << 20, 64 << 20),
            "resumed: 48.0 MiB of 64.0 MiB already verified"
        );
    }
}
