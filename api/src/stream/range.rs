//! The `Range` request header (RFC 9110 §14.2, "Range"; §14.1.2, byte
//! ranges): which bytes of a file a client asks for.
//!
//! ```text
//! Range = "bytes=" range-spec *( "," range-spec )
//! range-spec = first-pos "-" [ last-pos ]   ; bytes=500-999, bytes=500-
//!            / "-" suffix-length            ; bytes=-500 (the last 500)
//! ```
//!
//! Only single ranges are served: a request for several is answered with
//! the first satisfiable one (RFC 9110 §14.2 lets a server ignore or
//! coalesce ranges; players only ask for one). A header that does not
//! parse is ignored, as the RFC says (the whole file, `200`).

use std::ops::Range;

/// What to send for a request's `Range` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// The whole file (`200`): no header, another unit, or one that does
    /// not parse.
    Whole,
    /// These bytes (`206`), never empty.
    Part(Range<u64>),
    /// No range overlaps the file (`416` with `Content-Range: bytes */LEN`).
    Unsatisfiable,
}

/// Decimal digits, saturating at `u64::MAX` (a position that large is
/// past the end of any file, and a last position that large means "to
/// the end"); `None` if not all digits.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// One range-spec against a file of `len` bytes: `Err` if it does not
/// parse, `Ok(None)` if it parses and is unsatisfiable.
fn spec(text: &str, len: u64) -> Result<Option<Range<u64>>, ()> {
    let (first, last) = text.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix = number(last).ok_or(())?;
        if suffix == 0 || len == 0 {
            return Ok(None);
        }
        return Ok(Some(len.saturating_sub(suffix)..len));
    }
    let first = number(first).ok_or(())?;
    let end = match last {
        "" => len,
        last => {
            let last = number(last).ok_or(())?;
            // "A byte-range-spec is invalid if the last-pos value is
            // present and less than the first-pos." (RFC 9110 §14.1.2)
            if last < first {
                return Err(());
            }
            last.saturating_add(1).min(len)
        }
    };
    Ok((first < len).then_some(first..end))
}

/// The answer to `Range: value` for a file of `len` bytes.
pub(crate) fn parse(value: &str, len: u64) -> Ranged {
    let value = value.trim();
    let Some((unit, specs)) = value.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut first = None;
    let mut any = false;
    // Empty list elements are allowed (RFC 9110 §5.6.1).
    for text in specs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        any = true;
        match spec(text, len) {
            Err(()) => return Ranged::Whole,
            Ok(Some(r)) if first.is_none() => first = Some(r),
            Ok(_) => {}
        }
    }
    match first {
        Some(r) => Ranged::Part(r),
        None if any => Ranged::Unsatisfiable,
        None => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_range_form() {
        assert_eq!(parse("bytes=0-99", 1000), Ranged::Part(0..100));
        assert_eq!(parse("bytes=500-", 1000), Ranged::Part(500..1000));
        assert_eq!(parse("bytes=-100", 1000), Ranged::Part(900..1000));
        assert_eq!(parse("bytes=999-999", 1000), Ranged::Part(999..1000));
        // A last position past the end is cut to the end.
        assert_eq!(parse("bytes=900-5000", 1000), Ranged::Part(900..1000));
        // A suffix longer than the file is the whole file, as a 206.
        assert_eq!(parse("bytes=-5000", 1000), Ranged::Part(0..1000));
        // Unit case and spaces around the specs.
        assert_eq!(parse("Bytes= 10 - 19 ", 1000), Ranged::Part(10..20));
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse("bytes=1000-", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=1000-2000", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-10", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=2000-,3000-", 1000), Ranged::Unsatisfiable);
    }

    #[test]
    fn several_ranges_answer_the_first_satisfiable_one() {
        assert_eq!(parse("bytes=0-9,20-29", 1000), Ranged::Part(0..10));
        assert_eq!(parse("bytes=5000-,-10", 1000), Ranged::Part(990..1000));
        assert_eq!(parse("bytes=,0-1,", 1000), Ranged::Part(0..2));
    }

    #[test]
    fn bad_forms_are_ignored() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "items=0-9",
            "bytes=abc",
            "bytes=5",
            "bytes=9-5",
            "bytes=-",
            "bytes=--5",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes=0-9,oops",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse(bad, 1000), Ranged::Whole, "{bad:?}");
        }
    }

    #[test]
    fn numbers_beyond_u64_saturate() {
        let huge = "99999999999999999999999999";
        assert_eq!(
            parse(&format!("bytes={huge}-"), 1000),
            Ranged::Unsatisfiable
        );
        assert_eq!(
            parse(&format!("bytes=10-{huge}"), 1000),
            Ranged::Part(10..1000)
        );
        assert_eq!(
            parse(&format!("bytes=-{huge}"), 1000),
            Ranged::Part(0..1000)
        );
        assert_eq!(
            parse(&format!("bytes={huge}-{huge}"), u64::MAX),
            Ranged::Unsatisfiable
        );
        assert_eq!(
            parse("bytes=18446744073709551614-", u64::MAX),
            Ranged::Part(u64::MAX - 1..u64::MAX)
        );
    }
}
