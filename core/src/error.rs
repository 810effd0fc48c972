//! Errors that say who is at fault.
//!
//! Following rustls's split, each error type names a culprit:
//!
//! - [`DecodeError`]: bytes from outside (a file, a tracker, a peer, a DHT
//!   node) are malformed. It carries a kind, the byte offset and a static
//!   description of what was being read; nothing in it is built from the
//!   attacker's bytes, so producing one never allocates.
//! - [`PeerError`]: a remote peer broke the protocol; the session drops it.
//! - [`UsageError`]: the embedding application asked for something invalid.
//!
//! [`Error`] is the one non-exhaustive umbrella for callers who just want to
//! report.

use std::fmt;

use crate::metainfo::{MagnetError, MetainfoError};

/// What was wrong with some bytes. See [`DecodeError`] for where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// Bytes were left after the complete value.
    TrailingBytes,
    /// A byte that cannot start or continue the value here.
    UnexpectedByte,
    /// An integer with no digits (`ie`, `i-e`).
    EmptyInteger,
    /// An integer or length with a leading zero (`i03e`, `03:abc`); BEP 3:
    /// "integers have no leading zeros".
    LeadingZero,
    /// `i-0e`; BEP 3: "i-0e is invalid".
    NegativeZero,
    /// An integer that does not fit in 64 bits.
    IntegerOverflow,
    /// A string length larger than the bytes left.
    StringPastEnd,
    /// A dictionary key that is not a byte string; BEP 3: "keys must be
    /// strings".
    KeyNotString,
    /// Dictionary keys out of order (strict mode only); BEP 3: "keys must
    /// appear in sorted order".
    UnsortedKeys,
    /// The same key twice in one dictionary (strict mode only).
    DuplicateKey,
    /// Lists and dictionaries nested deeper than the limit.
    DepthLimit,
    /// More values than the limit.
    ItemLimit,
    /// The whole input is larger than the limit.
    SizeLimit,
    /// A length prefix or count above its named limit.
    LengthLimit,
    /// A length prefix that cannot be right for its message (a `have` that
    /// is not 5 bytes, a bitfield of the wrong size for the torrent).
    InvalidLength,
    /// A bitfield with bits set past the last piece; BEP 3: "spare bits at
    /// the end are set to zero".
    SpareBits,
    /// A field the message needs is absent.
    MissingField,
    /// A number outside the range its field allows.
    OutOfRange,
}

impl DecodeErrorKind {
    fn describe(self) -> &'static str {
        use DecodeErrorKind::*;
        match self {
            UnexpectedEnd => "input ends in the middle of a value",
            TrailingBytes => "unexpected bytes after the end of the value",
            UnexpectedByte => "unexpected byte",
            EmptyInteger => "integer has no digits",
            LeadingZero => "number has a leading zero",
            NegativeZero => "negative zero is not allowed",
            IntegerOverflow => "integer does not fit in 64 bits",
            StringPastEnd => "string length runs past the end of the input",
            KeyNotString => "dictionary key is not a byte string",
            UnsortedKeys => "dictionary keys are not in sorted order",
            DuplicateKey => "dictionary key appears twice",
            DepthLimit => "values nested too deeply",
            ItemLimit => "too many values",
            SizeLimit => "input too large",
            LengthLimit => "length above the allowed limit",
            InvalidLength => "length does not fit the message",
            SpareBits => "bitfield has bits set past the last piece",
            MissingField => "a required field is missing",
            OutOfRange => "number out of range",
        }
    }
}

/// Malformed input: what, where (byte offset) and while reading what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
    context: &'static str,
}

impl DecodeError {
    /// An error of `kind` at byte `offset` while reading `context`.
    pub const fn new(kind: DecodeErrorKind, offset: usize, context: &'static str) -> DecodeError {
        DecodeError {
            kind,
            offset,
            context,
        }
    }

    /// What was wrong.
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// Byte offset in the input where the problem was found.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What was being read, e.g. `"dictionary key"`.
    pub const fn context(&self) -> &'static str {
        self.context
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} (reading {})",
            self.kind.describe(),
            self.offset,
            self.context
        )
    }
}

impl std::error::Error for DecodeError {}

/// A remote peer broke the protocol; the reason is shown in the event log
/// when the session drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer sent bytes that do not decode.
    Malformed(DecodeError),
    /// The handshake named a torrent other than the one we asked for.
    WrongInfoHash,
    /// The handshake carried our own peer id: we connected to ourselves.
    ConnectedToSelf,
    /// The peer asked for a block outside the torrent or one we lack.
    RequestOutOfRange,
    /// The peer sent a block we never asked for, past the tolerance.
    UnrequestedPiece,
    /// The peer sent nothing for longer than the inactivity limit.
    Inactive,
    /// Data from this peer failed hash checks too often.
    BadData,
    /// A message that is not allowed in this state (a BEP 6 message
    /// without the fast extension, a reject for a block never requested).
    UnexpectedMessage,
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Malformed(e) => write!(f, "peer sent a malformed message: {e}"),
            PeerError::WrongInfoHash => f.write_str("peer's handshake names another torrent"),
            PeerError::ConnectedToSelf => f.write_str("connected to ourselves (our own peer id)"),
            PeerError::RequestOutOfRange => {
                f.write_str("peer requested a block outside the torrent or one we lack")
            }
            PeerError::UnrequestedPiece => f.write_str("peer sent blocks we never requested"),
            PeerError::Inactive => f.write_str("peer was silent past the inactivity limit"),
            PeerError::BadData => f.write_str("peer's data failed hash checks repeatedly"),
            PeerError::UnexpectedMessage => f.write_str("peer sent a message not allowed here"),
        }
    }
}

impl std::error::Error for PeerError {}

/// The application asked for something that cannot be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// A piece length that is not a power of two of at least 16 KiB.
    InvalidPieceLength(u64),
    /// A torrent must contain at least one byte of content.
    EmptyTorrent,
    /// The number of piece hashes does not match the content's length.
    PieceHashCount {
        /// Hashes the content needs.
        expected: u64,
        /// Hashes that were given.
        given: u64,
    },
    /// A file name that is unsafe or empty was given to the torrent builder.
    UnsafeFileName,
    /// The content is larger than a torrent can describe.
    TooLarge,
    /// A v1 build of a hybrid or v2-only torrent, or a v2 build of a v1
    /// one.
    FormatMismatch,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::InvalidPieceLength(n) => {
                write!(f, "piece size {n} is not a power of two of at least 16 KiB")
            }
            UsageError::EmptyTorrent => f.write_str("a torrent needs at least one byte of content"),
            UsageError::PieceHashCount { expected, given } => {
                write!(
                    f,
                    "{given} piece hashes given, the content needs {expected}"
                )
            }
            UsageError::UnsafeFileName => {
                f.write_str("file name is empty or could escape the download folder")
            }
            UsageError::TooLarge => f.write_str("content is too large for one torrent"),
            UsageError::FormatMismatch => {
                f.write_str("the torrent's format (v1, hybrid, v2) needs the other build")
            }
        }
    }
}

impl std::error::Error for UsageError {}

/// Any error from the core.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Malformed bytes.
    Decode(DecodeError),
    /// A .torrent file that decodes but is not a valid torrent.
    Metainfo(MetainfoError),
    /// A malformed magnet URI.
    Magnet(MagnetError),
    /// A peer broke the protocol.
    Peer(PeerError),
    /// The application asked for something invalid.
    Usage(UsageError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => e.fmt(f),
            Error::Metainfo(e) => e.fmt(f),
            Error::Magnet(e) => e.fmt(f),
            Error::Peer(e) => e.fmt(f),
            Error::Usage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Decode(e)
    }
}
impl From<MetainfoError> for Error {
    fn from(e: MetainfoError) -> Error {
        Error::Metainfo(e)
    }
}
impl From<MagnetError> for Error {
    fn from(e: MagnetError) -> Error {
        Error::Magnet(e)
    }
}
impl From<PeerError> for Error {
    fn from(e: PeerError) -> Error {
        Error::Peer(e)
    }
}
impl From<UsageError> for Error {
    fn from(e: UsageError) -> Error {
        Error::Usage(e)
    }
}
