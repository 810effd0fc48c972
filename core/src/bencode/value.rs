//! The decoded value tree.

use std::fmt;

/// A bencoded value borrowed from its input.
///
/// Values that came out of the [`Decoder`](super::Decoder) know the exact
/// bytes they were decoded from ([`raw`](Value::raw)) and where those start
/// ([`offset`](Value::offset)). Values built in code with the constructors
/// have an empty `raw`.
#[derive(Clone, PartialEq, Eq)]
pub struct Value<'a> {
    kind: Kind<'a>,
    raw: &'a [u8],
    offset: usize,
}

/// The four kinds of bencoded value (and one left unparsed).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Kind<'a> {
    /// `i…e`
    Int(i64),
    /// `N:…`, borrowed from the input.
    Bytes(&'a [u8]),
    /// `l…e`
    List(Vec<Value<'a>>),
    /// `d…e`
    Dict(Dict<'a>),
    /// A list or dictionary the decoder was told to leave as bytes
    /// ([`Decoder::leave_unparsed`](super::Decoder::leave_unparsed)):
    /// checked like any other, but read from [`Value::raw`] with a
    /// [`Reader`](super::Reader), so a huge one costs no tree.
    Unparsed,
}

/// A dictionary's entries in the order they appeared in the input.
///
/// Lookups return the first entry with the key, which is what the
/// canonical encoder keeps, so a re-encoded dictionary means the same thing.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Value<'a> {
    pub(super) fn decoded(kind: Kind<'a>, raw: &'a [u8], offset: usize) -> Value<'a> {
        Value { kind, raw, offset }
    }

    /// An integer built in code.
    pub fn int(n: i64) -> Value<'a> {
        Value::decoded(Kind::Int(n), &[], 0)
    }

    /// A byte string built in code.
    pub fn bytes(b: &'a [u8]) -> Value<'a> {
        Value::decoded(Kind::Bytes(b), &[], 0)
    }

    /// A list built in code.
    pub fn list(items: Vec<Value<'a>>) -> Value<'a> {
        Value::decoded(Kind::List(items), &[], 0)
    }

    /// A dictionary built in code; the encoder sorts the keys.
    pub fn dict(entries: Vec<(&'a [u8], Value<'a>)>) -> Value<'a> {
        Value::decoded(Kind::Dict(Dict { entries }), &[], 0)
    }

    /// Which kind of value this is, with its contents.
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// The exact bytes this value was decoded from (empty if built in code).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Offset of [`raw`](Value::raw) in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is one and it is valid.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list's items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match &self.kind {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }
}

impl<'a> Dict<'a> {
    pub(super) fn from_entries(entries: Vec<(&'a [u8], Value<'a>)>) -> Dict<'a> {
        Dict { entries }
    }

    /// The value of the first entry named `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Entries in input order (duplicates included).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &Value<'a>)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// Number of entries, duplicates included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn entries(&self) -> &[(&'a [u8], Value<'a>)] {
        &self.entries
    }
}

/// Shows byte strings as text when they are printable, else as hex, and
/// long strings cut short: debugging output of untrusted data stays small.
impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Int(n) => write!(f, "{n}"),
            Kind::Bytes(b) => {
                const SHOWN: usize = 48;
                let cut = &b[..b.len().min(SHOWN)];
                if cut.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                    write!(f, "{:?}", String::from_utf8_lossy(cut))?;
                } else {
                    f.write_str("0x")?;
                    for c in cut {
                        write!(f, "{c:02x}")?;
                    }
                }
                if b.len() > SHOWN {
                    write!(f, "…({} bytes)", b.len())?;
                }
                Ok(())
            }
            Kind::List(items) => f.debug_list().entries(items).finish(),
            Kind::Unparsed => write!(f, "<unparsed, {} bytes>", self.raw.len()),
            Kind::Dict(d) => f
                .debug_map()
                .entries(
                    d.entries
                        .iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k), v)),
                )
                .finish(),
        }
    }
}
