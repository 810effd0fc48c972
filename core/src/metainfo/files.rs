//! The `files` list of a multi-file torrent (BEP 3), read token by token
//! from its bytes.
//!
//! The decoder leaves `info.files` unparsed ([`Kind::Unparsed`]): a
//! torrent of 500,000 files would otherwise build three million tree
//! values just to be copied into [`FileEntry`]s. The rules are those of
//! the rest of the metainfo: each entry a dictionary with a non-negative
//! `length` and a `path` list (its `path.utf-8` twin preferred when every
//! component is UTF-8), every component checked by [`check_component`];
//! the first of duplicated keys counts, as in a [`Dict`](crate::bencode::Dict).
//! Errors carry offsets into the whole .torrent.
//!
//! [`Kind::Unparsed`]: crate::bencode::Kind::Unparsed

use crate::bencode::{Reader, Token, Value};
use crate::error::DecodeError;

use super::{check_component, FileAttr, FileEntry, MetainfoError, PathProblem};

/// One item of a path list: the byte string (`None`: something else) and
/// its offset.
type PathItem<'a> = (Option<&'a [u8]>, usize);

/// A `path` or `path.utf-8` value as read: its offset, and its items if it
/// is a list.
struct PathValue<'a> {
    offset: usize,
    items: Option<Vec<PathItem<'a>>>,
}

impl PathValue<'_> {
    fn all_utf8(&self) -> bool {
        self.items.as_ref().is_some_and(|items| {
            items
                .iter()
                .all(|(c, _)| c.is_some_and(|c| std::str::from_utf8(c).is_ok()))
        })
    }
}

/// One entry's fields (the first of each key).
#[derive(Default)]
struct Entry<'a> {
    length: Option<(Option<i64>, usize)>,
    path: Option<PathValue<'a>>,
    path_utf8: Option<PathValue<'a>>,
    /// `path.utf-8` was seen (only the first counts, whatever it held).
    seen_utf8: bool,
    /// It was a UTF-8 byte string, not a list.
    utf8_bytes: bool,
    /// `attr`, if the first one was a byte string.
    attr: Option<Option<&'a [u8]>>,
}

fn invalid_at(field: &'static str, offset: usize, expected: &'static str) -> MetainfoError {
    MetainfoError::InvalidField {
        field,
        offset,
        expected,
    }
}

/// The files of `value`, the `files` entry of the info dictionary.
pub(super) fn parse_files<'a>(value: &Value<'a>) -> Result<Vec<FileEntry<'a>>, MetainfoError> {
    let base = value.offset();
    if !matches!(value.kind(), crate::bencode::Kind::Unparsed) {
        return Err(invalid_at("files", base, "a list"));
    }
    let mut r = Reader::new(value.raw());
    if r.next_token()? != Token::List {
        return Err(invalid_at("files", base, "a list"));
    }
    let mut files = Vec::new();
    loop {
        let at = base + r.offset();
        match r.next_token()? {
            Token::End => break,
            Token::Dict => {}
            _ => return Err(invalid_at("files", at, "a list of dictionaries")),
        }
        let entry = read_entry(&mut r, base)?;
        files.push(file_entry(entry, files.len())?);
    }
    if files.is_empty() {
        return Err(MetainfoError::Empty);
    }
    Ok(files)
}

/// Reads one entry's dictionary, up to and including its end.
fn read_entry<'a>(r: &mut Reader<'a>, base: usize) -> Result<Entry<'a>, DecodeError> {
    let mut e = Entry::default();
    loop {
        let key = match r.next_token()? {
            Token::Bytes(k) => k,
            // The reader only gives keys or the end inside a dictionary.
            _ => return Ok(e),
        };
        let at = base + r.offset();
        let token = r.next_token()?;
        match key {
            b"length" if e.length.is_none() => {
                let n = match token {
                    Token::Int(n) => Some(n),
                    other => {
                        r.skip(other)?;
                        None
                    }
                };
                e.length = Some((n, at));
            }
            b"path" if e.path.is_none() => e.path = Some(read_path(r, token, at, base)?),
            b"path.utf-8" if !e.seen_utf8 => {
                e.seen_utf8 = true;
                if let Token::Bytes(b) = token {
                    // A byte string there is taken if it is UTF-8 (and
                    // then refused: a path must be a list).
                    if std::str::from_utf8(b).is_ok() {
                        e.utf8_bytes = true;
                        e.path_utf8 = Some(PathValue {
                            offset: at,
                            items: None,
                        });
                    }
                } else {
                    e.path_utf8 = Some(read_path(r, token, at, base)?);
                }
            }
            b"attr" if e.attr.is_none() => match token {
                Token::Bytes(b) => e.attr = Some(Some(b)),
                other => {
                    e.attr = Some(None);
                    r.skip(other)?;
                }
            },
            _ => r.skip(token)?,
        }
    }
}

fn read_path<'a>(
    r: &mut Reader<'a>,
    first: Token<'a>,
    offset: usize,
    base: usize,
) -> Result<PathValue<'a>, DecodeError> {
    if first != Token::List {
        r.skip(first)?;
        return Ok(PathValue {
            offset,
            items: None,
        });
    }
    let mut items = Vec::new();
    loop {
        let at = base + r.offset();
        match r.next_token()? {
            Token::End => break,
            Token::Bytes(b) => items.push((Some(b), at)),
            other => {
                r.skip(other)?;
                items.push((None, at));
            }
        }
    }
    Ok(PathValue {
        offset,
        items: Some(items),
    })
}

fn file_entry(e: Entry<'_>, index: usize) -> Result<FileEntry<'_>, MetainfoError> {
    let (length, at) = e
        .length
        .ok_or(MetainfoError::MissingField { field: "length" })?;
    let length = length
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| invalid_at("length", at, "a non-negative integer"))?;
    let utf8_chosen = e.utf8_bytes || e.path_utf8.as_ref().is_some_and(PathValue::all_utf8);
    let chosen = if utf8_chosen { e.path_utf8 } else { e.path }
        .ok_or(MetainfoError::MissingField { field: "path" })?;
    let items = chosen
        .items
        .ok_or_else(|| invalid_at("path", chosen.offset, "a list of byte strings"))?;
    if items.is_empty() {
        return Err(MetainfoError::UnsafePath {
            file: Some(index),
            offset: chosen.offset,
            problem: PathProblem::NoComponents,
        });
    }
    let mut path = Vec::with_capacity(items.len());
    for (c, at) in items {
        let c = c.ok_or_else(|| invalid_at("path", at, "a list of byte strings"))?;
        check_component(c).map_err(|problem| MetainfoError::UnsafePath {
            file: Some(index),
            offset: at,
            problem,
        })?;
        path.push(c);
    }
    Ok(FileEntry {
        path,
        length,
        attr: e.attr.flatten().map(FileAttr::parse).unwrap_or_default(),
    })
}
