//! The command line's quantities: sizes (`256K`), rates (`2M` bytes per
//! second), durations (`10m`) and info-hashes (40 hex digits), parsed from
//! what a user types, and sizes written for people (`1.5 KiB`).
//!
//! Parsers say what they expected in their error; they never panic on any
//! text (`fuzz/fuzz_targets/units.rs`).

use std::time::Duration;

use bittide_core::InfoHash;

/// Splits a binary-unit suffix (`K`, `M`, and `G` if `giga`) off `s`.
fn split_suffix(s: &str, giga: bool) -> (&str, u64) {
    let mult = match s.as_bytes().last() {
        Some(b'k' | b'K') => 1 << 10,
        Some(b'm' | b'M') => 1 << 20,
        Some(b'g' | b'G') if giga => 1 << 30,
        _ => return (s, 1),
    };
    // The suffix is one ASCII byte, so this is a character boundary.
    (&s[..s.len() - 1], mult)
}

/// A size in bytes that fits 32 bits: `262144`, `256K`, `1M`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (digits, mult) = split_suffix(s, false);
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("`{s}` is not a size such as 262144, 256K or 1M"))
}

/// A rate in bytes per second: `0`, `none` or `unlimited` (no limit),
/// `65536`, `500K`, `2M`, `1G`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    let (digits, mult) = split_suffix(s, true);
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!(
                "`{s}` is not a rate such as 500K or 2M (bytes per second; 0 or none: unlimited)"
            )
        })
}

/// A duration: `90` (a bare number is seconds), `90s`, `10m`, `2h`, or
/// units together from the largest down (`1h30m`, `2m30s`); saturates at
/// the largest number of seconds rather than overflow.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("`{s}` is not a duration such as 30, 30s, 10m, 2h or 1h30m");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut secs = 0u64;
    // Each unit at most once and in order: `30m1h` is more likely a typo
    // than a sum.
    let mut smallest_so_far = u64::MAX;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}`: a number needs its unit (s, m or h)"))?;
        let (digits, after) = rest.split_at(end);
        let n: u64 = match digits.parse() {
            Ok(n) => n,
            Err(_) if !digits.is_empty() => u64::MAX,
            Err(_) => return Err(bad()),
        };
        let mut chars = after.chars();
        let scale = match chars.next() {
            Some('h') => 3600,
            Some('m') => 60,
            Some('s') => 1,
            _ => return Err(format!("`{s}`: the units are s, m and h")),
        };
        if scale >= smallest_so_far {
            return Err(format!("`{s}`: give each unit once, largest first (1h30m)"));
        }
        smallest_so_far = scale;
        secs = secs.saturating_add(n.saturating_mul(scale));
        rest = chars.as_str();
    }
    if s.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// A duration as [`parse_duration`] reads it: `0s`, `45s`, `10m`,
/// `1h30m`, `2h0m5s` — the largest units first, zero parts left out.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A v1 info-hash as 40 hex digits (either case).
pub fn parse_hash(text: &str) -> Result<InfoHash, String> {
    InfoHash::from_hex(text.as_bytes())
        .ok_or_else(|| format!("`{text}` is not a 40-digit hex info-hash"))
}

/// A byte count for people: `10 B`, `1.5 KiB`, `2.0 GiB` (one decimal,
/// binary units up to TiB).
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("262144"), Ok(262144));
        assert_eq!(parse_size("256K"), Ok(262144));
        assert_eq!(parse_size(" 1m "), Ok(1 << 20));
        assert!(parse_size("4096M").is_err());
        assert!(parse_size("1G").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("é").is_err());
    }

    #[test]
    fn rates_parse_with_suffixes() {
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("2g"), Ok(2 << 30));
        assert!(parse_rate("18446744073709551615K").is_err());
        assert!(parse_rate("-1").is_err());
        assert_eq!(parse_rate("none"), Ok(0));
        assert_eq!(parse_rate(" Unlimited "), Ok(0));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration(" 30s "), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert!(parse_duration("1h30").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("5é").is_err());
    }

    #[test]
    fn durations_format_as_they_parse() {
        for (secs, text) in [
            (0, "0s"),
            (45, "45s"),
            (600, "10m"),
            (5400, "1h30m"),
            (7205, "2h5s"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn hashes_parse_from_hex() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(parse_hash(&h.to_string()), Ok(h));
        assert_eq!(parse_hash(&"AB".repeat(20)), Ok(h));
        assert!(parse_hash("ab").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(1 << 30), "1.0 GiB");
        assert_eq!(human(u64::MAX), "16777216.0 TiB");
    }
}
