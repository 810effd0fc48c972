//! The borrowing decoder.

use super::value::{Dict, Kind, Value};
use super::{MAX_DEPTH, MAX_ITEMS, MAX_SIZE};
use crate::error::{DecodeError, DecodeErrorKind};

/// Named bounds on what one input may make the decoder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries.
    pub max_depth: usize,
    /// Most values (of any kind) in one input.
    pub max_items: usize,
    /// Largest input, in bytes.
    pub max_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: MAX_DEPTH,
            max_items: MAX_ITEMS,
            max_size: MAX_SIZE,
        }
    }
}

/// How dictionary keys were ordered in a decoded input.
///
/// BEP 3 requires sorted, unique keys. Real torrents sometimes break the
/// rule; the lenient decoder accepts them and reports the first offence
/// here, so callers can warn (the info-hash stays right because it is taken
/// over the raw bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KeyOrder {
    /// Offset of the first key that sorts before the key preceding it.
    pub first_unsorted: Option<usize>,
    /// Offset of the first key equal to the key preceding it.
    pub first_duplicate: Option<usize>,
}

impl KeyOrder {
    /// Whether every dictionary had sorted, unique keys.
    pub fn is_canonical(&self) -> bool {
        self.first_unsorted.is_none() && self.first_duplicate.is_none()
    }
}

/// A decoded input: its root value and how its keys were ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document<'a> {
    /// The one top-level value.
    pub root: Value<'a>,
    /// Irregular key order found while decoding (always canonical in strict
    /// mode, which rejects irregular input instead).
    pub key_order: KeyOrder,
}

/// A configured bencode decoder.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decoder {
    limits: Limits,
    strict: bool,
    unparsed: &'static [&'static [u8]],
}

impl Decoder {
    /// A lenient decoder with the default [`Limits`].
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Decoder {
        self.limits = limits;
        self
    }

    /// In strict mode unsorted or duplicate dictionary keys are errors
    /// ([`DecodeErrorKind::UnsortedKeys`], [`DecodeErrorKind::DuplicateKey`]).
    pub fn strict(mut self, strict: bool) -> Decoder {
        self.strict = strict;
        self
    }

    /// Leaves the list or dictionary at this path of keys from the root
    /// dictionary as [`Kind::Unparsed`]: checked with every rule, counted
    /// against the limits, but no tree is built for it (a .torrent's
    /// `info.files` can hold millions of values).
    pub fn leave_unparsed(mut self, path: &'static [&'static [u8]]) -> Decoder {
        self.unparsed = path;
        self
    }

    /// Decodes exactly one value that must fill `input` entirely.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Document<'a>, DecodeError> {
        let (doc, used) = self.decode_prefix(input)?;
        if used != input.len() {
            return Err(DecodeError::new(
                DecodeErrorKind::TrailingBytes,
                used,
                "end of bencoded value",
            ));
        }
        Ok(doc)
    }

    /// Decodes one value from the start of `input` and returns how many
    /// bytes it took; the rest is left for the caller (BEP 9 metadata
    /// messages put raw piece data after a bencoded dictionary).
    pub fn decode_prefix<'a>(&self, input: &'a [u8]) -> Result<(Document<'a>, usize), DecodeError> {
        if input.len() > self.limits.max_size {
            return Err(DecodeError::new(
                DecodeErrorKind::SizeLimit,
                self.limits.max_size,
                "bencoded input",
            ));
        }
        let mut parser = Parser {
            s: Scanner { input, pos: 0 },
            items: 0,
            limits: self.limits,
            strict: self.strict,
            key_order: KeyOrder::default(),
            list_stack: Vec::new(),
            dict_stack: Vec::new(),
            unparsed: self.unparsed,
        };
        let on_path = (!self.unparsed.is_empty()).then_some(0);
        let root = parser.value(0, on_path)?;
        Ok((
            Document {
                root,
                key_order: parser.key_order,
            },
            parser.s.pos,
        ))
    }
}

/// Decodes one value leniently with the default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    Decoder::new().decode(input).map(|d| d.root)
}

/// Decodes one value, rejecting unsorted or duplicate keys.
pub fn decode_strict(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    Decoder::new().strict(true).decode(input).map(|d| d.root)
}

struct Parser<'a> {
    s: Scanner<'a>,
    items: usize,
    limits: Limits,
    strict: bool,
    key_order: KeyOrder,
    /// Items of the lists being decoded, innermost last: each list is
    /// collected here and then moved into a vector of exactly its length
    /// (a vector grown by pushing keeps up to twice the room, which for a
    /// torrent of 500,000 files was most of its memory).
    list_stack: Vec<Value<'a>>,
    /// The same for dictionary entries.
    dict_stack: Vec<(&'a [u8], Value<'a>)>,
    /// See [`Decoder::leave_unparsed`].
    unparsed: &'static [&'static [u8]],
}

impl<'a> Parser<'a> {
    fn count_item(&mut self) -> Result<(), DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(self.s.err(DecodeErrorKind::ItemLimit, "value"));
        }
        Ok(())
    }

    /// Recursion is bounded by `max_depth`, checked before descending.
    /// `on_path`: how many keys of the unparsed path led here, if all of
    /// the way here followed it.
    fn value(&mut self, depth: usize, on_path: Option<usize>) -> Result<Value<'a>, DecodeError> {
        let start = self.s.pos;
        self.count_item()?;
        let kind = match self.s.peek("value")? {
            b'i' => {
                self.s.pos += 1;
                Kind::Int(self.s.integer()?)
            }
            b'0'..=b'9' => Kind::Bytes(self.s.string("byte string")?),
            b'l' | b'd' if depth >= self.limits.max_depth => {
                return Err(self
                    .s
                    .err(DecodeErrorKind::DepthLimit, "nested list or dictionary"));
            }
            b'l' => {
                self.s.pos += 1;
                let first = self.list_stack.len();
                while self.s.peek("list item")? != b'e' {
                    let item = self.value(depth + 1, None)?;
                    self.list_stack.push(item);
                }
                self.s.pos += 1;
                Kind::List(self.list_stack.drain(first..).collect())
            }
            b'd' => {
                self.s.pos += 1;
                Kind::Dict(self.dict_entries(depth, on_path)?)
            }
            _ => return Err(self.s.err(DecodeErrorKind::UnexpectedByte, "value")),
        };
        Ok(Value::decoded(
            kind,
            &self.s.input[start..self.s.pos],
            start,
        ))
    }

    fn dict_entries(
        &mut self,
        depth: usize,
        on_path: Option<usize>,
    ) -> Result<Dict<'a>, DecodeError> {
        let first = self.dict_stack.len();
        let mut prev: Option<&'a [u8]> = None;
        while let Some(key) = self.next_key(&mut prev)? {
            let next = on_path.filter(|&i| self.unparsed.get(i) == Some(&key));
            let value = match next.map(|i| i + 1) {
                Some(n)
                    if n == self.unparsed.len() && matches!(self.s.peek("value")?, b'l' | b'd') =>
                {
                    let start = self.s.pos;
                    self.skip(depth + 1)?;
                    Value::decoded(Kind::Unparsed, &self.s.input[start..self.s.pos], start)
                }
                n => self.value(depth + 1, n)?,
            };
            self.dict_stack.push((key, value));
        }
        Ok(Dict::from_entries(self.dict_stack.drain(first..).collect()))
    }

    /// The next key of a dictionary (`None` at its end, which is
    /// consumed), checked for order against `prev`, which it becomes.
    fn next_key(&mut self, prev: &mut Option<&'a [u8]>) -> Result<Option<&'a [u8]>, DecodeError> {
        let b = self.s.peek("dictionary key")?;
        if b == b'e' {
            self.s.pos += 1;
            return Ok(None);
        }
        if !b.is_ascii_digit() {
            return Err(self.s.err(DecodeErrorKind::KeyNotString, "dictionary key"));
        }
        let key_offset = self.s.pos;
        self.count_item()?;
        let key = self.s.string("dictionary key")?;
        if let Some(prev) = *prev {
            self.check_order(prev, key, key_offset)?;
        }
        *prev = Some(key);
        Ok(Some(key))
    }

    /// Checks one value with every rule of [`Parser::value`] (limits, key
    /// order) without building it.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.count_item()?;
        match self.s.peek("value")? {
            b'i' => {
                self.s.pos += 1;
                self.s.integer()?;
            }
            b'0'..=b'9' => {
                self.s.string("byte string")?;
            }
            b'l' | b'd' if depth >= self.limits.max_depth => {
                return Err(self
                    .s
                    .err(DecodeErrorKind::DepthLimit, "nested list or dictionary"));
            }
            b'l' => {
                self.s.pos += 1;
                while self.s.peek("list item")? != b'e' {
                    self.skip(depth + 1)?;
                }
                self.s.pos += 1;
            }
            b'd' => {
                self.s.pos += 1;
                let mut prev: Option<&'a [u8]> = None;
                while self.next_key(&mut prev)?.is_some() {
                    self.skip(depth + 1)?;
                }
            }
            _ => return Err(self.s.err(DecodeErrorKind::UnexpectedByte, "value")),
        }
        Ok(())
    }

    fn check_order(&mut self, prev: &[u8], key: &[u8], offset: usize) -> Result<(), DecodeError> {
        use std::cmp::Ordering;
        let (kind, slot) = match prev.cmp(key) {
            Ordering::Less => return Ok(()),
            Ordering::Equal => (
                DecodeErrorKind::DuplicateKey,
                &mut self.key_order.first_duplicate,
            ),
            Ordering::Greater => (
                DecodeErrorKind::UnsortedKeys,
                &mut self.key_order.first_unsorted,
            ),
        };
        if self.strict {
            return Err(DecodeError::new(kind, offset, "dictionary key"));
        }
        slot.get_or_insert(offset);
        Ok(())
    }
}

/// The byte-level reading shared by the tree decoder and the [`Reader`]:
/// one string, one integer, with BEP 3's rules and offsets in errors.
///
/// [`Reader`]: super::Reader
#[derive(Clone, Copy, Debug)]
pub(super) struct Scanner<'a> {
    pub(super) input: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn err(&self, kind: DecodeErrorKind, context: &'static str) -> DecodeError {
        DecodeError::new(kind, self.pos, context)
    }

    pub(super) fn peek(&self, context: &'static str) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(DecodeErrorKind::UnexpectedEnd, context))
    }

    /// Reads `N:` and the N bytes after it; N is checked against the bytes
    /// left before slicing.
    pub(super) fn string(&mut self, context: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.digits(b':', context)?;
        let left = self.input.len() - self.pos;
        if len > left as u64 {
            return Err(self.err(DecodeErrorKind::StringPastEnd, context));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.input[start..self.pos])
    }

    /// Reads the unsigned decimal digits of a string length up to `end`.
    fn digits(&mut self, end: u8, context: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut n: u64 = 0;
        loop {
            let b = self.peek(context)?;
            if b == end {
                break;
            }
            if !b.is_ascii_digit() {
                return Err(self.err(DecodeErrorKind::UnexpectedByte, context));
            }
            if self.pos > start && self.input[start] == b'0' {
                return Err(DecodeError::new(
                    DecodeErrorKind::LeadingZero,
                    start,
                    context,
                ));
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| self.err(DecodeErrorKind::IntegerOverflow, context))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err(DecodeErrorKind::EmptyInteger, context));
        }
        self.pos += 1;
        Ok(n)
    }

    /// Reads the body of `i…e` (the `i` is already consumed).
    ///
    /// BEP 3: "i-0e is invalid. All encodings with a leading zero, such as
    /// i03e, are invalid, other than i0e".
    pub(super) fn integer(&mut self) -> Result<i64, DecodeError> {
        const CONTEXT: &str = "integer";
        let negative = self.peek(CONTEXT)? == b'-';
        if negative {
            self.pos += 1;
            if self.peek(CONTEXT)? == b'0' {
                return Err(self.err(DecodeErrorKind::NegativeZero, CONTEXT));
            }
        }
        let start = self.pos;
        let magnitude = self.digits(b'e', CONTEXT).map_err(|e| {
            if e.kind() == DecodeErrorKind::EmptyInteger {
                DecodeError::new(DecodeErrorKind::EmptyInteger, start, CONTEXT)
            } else {
                e
            }
        })?;
        if negative {
            if magnitude > 1 << 63 {
                return Err(DecodeError::new(
                    DecodeErrorKind::IntegerOverflow,
                    start,
                    CONTEXT,
                ));
            }
            Ok((magnitude as i64).wrapping_neg())
        } else {
            i64::try_from(magnitude)
                .map_err(|_| DecodeError::new(DecodeErrorKind::IntegerOverflow, start, CONTEXT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Kind;

    fn kind_of(input: &[u8]) -> DecodeErrorKind {
        decode(input).unwrap_err().kind()
    }

    #[test]
    fn bep3_examples() {
        assert_eq!(decode(b"4:spam").unwrap().as_bytes(), Some(&b"spam"[..]));
        assert_eq!(decode(b"i3e").unwrap().as_int(), Some(3));
        assert_eq!(decode(b"i-3e").unwrap().as_int(), Some(-3));
        assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
        let l = decode(b"l4:spam4:eggse").unwrap();
        let items = l.as_list().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_bytes(), Some(&b"eggs"[..]));
        let d = decode(b"d3:cow3:moo4:spam4:eggse").unwrap();
        assert_eq!(
            d.as_dict().unwrap().get(b"cow").unwrap().as_str(),
            Some("moo")
        );
        let d = decode(b"d4:spaml1:a1:bee").unwrap();
        assert_eq!(
            d.as_dict()
                .unwrap()
                .get(b"spam")
                .unwrap()
                .as_list()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));
    }

    #[test]
    fn integers_follow_bep3() {
        assert_eq!(kind_of(b"i03e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind_of(b"i00e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind_of(b"i-0e"), DecodeErrorKind::NegativeZero);
        assert_eq!(kind_of(b"i-03e"), DecodeErrorKind::NegativeZero);
        assert_eq!(kind_of(b"ie"), DecodeErrorKind::EmptyInteger);
        assert_eq!(kind_of(b"i-e"), DecodeErrorKind::EmptyInteger);
        assert_eq!(kind_of(b"i1x2e"), DecodeErrorKind::UnexpectedByte);
        assert_eq!(kind_of(b"i12"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert_eq!(
            kind_of(b"i9223372036854775808e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind_of(b"i-9223372036854775809e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind_of(b"i99999999999999999999999999e"),
            DecodeErrorKind::IntegerOverflow
        );
    }

    #[test]
    fn errors_carry_offsets() {
        let e = decode(b"d3:fooi03ee").unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::LeadingZero, 7));
        let e = decode(b"l4:spam10:eggse").unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::StringPastEnd, 10));
        let e = decode(b"di1e1:ae").unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::KeyNotString, 1));
        assert!(e.to_string().contains("byte 1"), "{e}");
    }

    #[test]
    fn strings_are_checked_before_slicing() {
        assert_eq!(kind_of(b"5:abc"), DecodeErrorKind::StringPastEnd);
        assert_eq!(
            kind_of(b"18446744073709551615:x"),
            DecodeErrorKind::StringPastEnd
        );
        assert_eq!(
            kind_of(b"99999999999999999999999:x"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(kind_of(b"03:abc"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind_of(b"3abc"), DecodeErrorKind::UnexpectedByte);
        assert_eq!(kind_of(b"3"), DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn structure_errors() {
        assert_eq!(kind_of(b""), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"l"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"d1:a"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"x"), DecodeErrorKind::UnexpectedByte);
        assert_eq!(kind_of(b"i1ei2e"), DecodeErrorKind::TrailingBytes);
        assert_eq!(kind_of(b"dlee1:ae"), DecodeErrorKind::KeyNotString);
        assert_eq!(kind_of(b"e"), DecodeErrorKind::UnexpectedByte);
    }

    #[test]
    fn values_know_their_spans() {
        let input = b"d4:infod6:lengthi5ee3:zzz0:e";
        let root = decode(input).unwrap();
        let info = root.as_dict().unwrap().get(b"info").unwrap();
        assert_eq!(info.raw(), b"d6:lengthi5ee");
        assert_eq!(info.offset(), 7);
        assert_eq!(root.raw(), &input[..]);
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_reported_or_refused() {
        let unsorted = b"d1:bi1e1:ai2ee";
        let doc = Decoder::new().decode(unsorted).unwrap();
        assert_eq!(doc.key_order.first_unsorted, Some(7));
        assert!(!doc.key_order.is_canonical());
        let e = decode_strict(unsorted).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::UnsortedKeys, 7));

        let dup = b"d1:ai1e1:ai2ee";
        let doc = Decoder::new().decode(dup).unwrap();
        assert_eq!(doc.key_order.first_duplicate, Some(7));
        // Lookups see the first entry.
        assert_eq!(
            doc.root.as_dict().unwrap().get(b"a").unwrap().as_int(),
            Some(1)
        );
        assert_eq!(
            decode_strict(dup).unwrap_err().kind(),
            DecodeErrorKind::DuplicateKey
        );

        let sorted = Decoder::new().decode(b"d1:ai1e2:aai2e1:bi3ee").unwrap();
        assert!(sorted.key_order.is_canonical());
    }

    #[test]
    fn a_megabyte_of_list_openers_fails_fast_at_the_depth_limit() {
        let input = vec![b'l'; 1 << 20];
        let e = decode(&input).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (DecodeErrorKind::DepthLimit, MAX_DEPTH)
        );
        let dicts = b"d1:a".repeat(1000);
        assert_eq!(
            decode(&dicts).unwrap_err().kind(),
            DecodeErrorKind::DepthLimit
        );
    }

    #[test]
    fn depth_item_and_size_limits_are_named() {
        let limits = Limits {
            max_depth: 2,
            max_items: 4,
            max_size: 16,
        };
        let d = Decoder::new().limits(limits);
        assert!(d.decode(b"llee").is_ok());
        assert_eq!(
            d.decode(b"llleee").unwrap_err().kind(),
            DecodeErrorKind::DepthLimit
        );
        assert!(d.decode(b"li1ei2ei3ee").is_ok());
        assert_eq!(
            d.decode(b"li1ei2ei3ei4ee").unwrap_err().kind(),
            DecodeErrorKind::ItemLimit
        );
        assert_eq!(
            d.decode(b"17:aaaaaaaaaaaaaaaaa").unwrap_err().kind(),
            DecodeErrorKind::SizeLimit
        );
    }

    #[test]
    fn prefix_decoding_leaves_the_rest() {
        let (doc, used) = Decoder::new()
            .decode_prefix(b"d8:msg_typei1e5:piecei0eeRAWDATA")
            .unwrap();
        assert_eq!(used, 25);
        assert!(matches!(doc.root.kind(), Kind::Dict(_)));
    }
}
