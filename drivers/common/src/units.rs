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

/// A rate in bytes per second: `0` (no limit), `65536`, `500K`, `2M`, `1G`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = split_suffix(s, true);
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a rate such as 500K or 2M (bytes per second)"))
}

/// A duration: `90` or `90s` (seconds), `10m`, `2h`; saturates at the
/// largest number of seconds rather than overflow.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (90, 90s, 10m, 2h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("`{text}`: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(secs))
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
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("5é").is_err());
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
