//! Bencode (BEP 3), the encoding of .torrent files, tracker responses, KRPC
//! and extension messages.
//!
//! Four kinds of value: integers `i42e`, byte strings `4:spam`, lists
//! `l…e` and dictionaries `d…e` whose keys are byte strings "in sorted order
//! (sorted as raw strings, not alphanumerics)".
//!
//! The [`Decoder`] borrows: byte strings are slices of the input, and every
//! [`Value`] remembers the exact bytes it was decoded from
//! ([`Value::raw`]). That is what makes a torrent's info-hash right: it is
//! the SHA-1 of the `info` dictionary *as it appeared in the file*, never of
//! a re-encoding, so a torrent with unsorted or duplicate keys (real ones
//! have them) keeps the info-hash every other client computes.
//!
//! Hostile input is bounded by named [`Limits`] (nesting depth, number of
//! values, total size), each with its own error, so a megabyte of `l` bytes
//! is refused at the 65th byte instead of overflowing the stack.
//!
//! For hot paths that read a few keys out of small messages (KRPC), the
//! [`Reader`] walks the same grammar token by token without building a tree.
//!
//! The encoder ([`Value::encode`]) is canonical: dictionary keys sorted and
//! unique, so for canonical input `encode(decode(x)) == x` byte for byte.

mod decode;
mod encode;
mod reader;
mod value;

pub use decode::{decode, decode_strict, Decoder, Document, KeyOrder, Limits};
pub use encode::{encode_bytes, encode_int};
pub use reader::{Reader, Token};
pub use value::{Dict, Kind, Value};

/// Default nesting limit. Torrents need about 5 levels; libtorrent allows 100.
pub const MAX_DEPTH: usize = 64;
/// Default limit on the number of values in one input (libtorrent's default
/// token limit is of the same order). A torrent with 100,000 files has
/// about 500,000.
pub const MAX_ITEMS: usize = 4_000_000;
/// Default limit on the input size: larger than any real .torrent file.
pub const MAX_SIZE: usize = 64 << 20;
