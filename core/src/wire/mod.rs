//! The peer wire protocol (BEP 3), with the fast extension (BEP 6) and the
//! extension protocol (BEP 10) and three of its extensions: metadata
//! exchange (BEP 9), peer exchange (BEP 11) and holepunching (BEP 55).
//!
//! A connection starts with a 68-byte [`Handshake`] each way: the protocol
//! string, 8 reserved bytes whose bits advertise extensions
//! ([`Reserved`]), the info-hash and the peer id. After that both sides send
//! length-prefixed [`Frame`]s: `<u32 length><u8 id><payload>`.
//!
//! [`FrameDecoder`] is the streaming decoder: bytes may arrive in any
//! chunking (one at a time included) and yield the same frames; a length
//! prefix above the named limit for its message is an error before anything
//! is allocated; piece payloads are [`bytes::Bytes`] slices of the receive
//! buffer, never copies.

mod extension;
mod frame;
mod handshake;
mod hashes;
mod holepunch;
mod metadata;
mod pex;
mod receive;

pub use extension::{ExtensionHandshake, MAX_EXTENSION_HANDSHAKE};
pub use frame::{
    BlockRef, Frame, FrameDecoder, FrameLimits, BLOCK_SIZE, MAX_BITFIELD_BYTES, MAX_EXTENDED_LEN,
    MAX_UNKNOWN_LEN,
};
pub use handshake::{Handshake, PeerId, Reserved, HANDSHAKE_LEN, PROTOCOL};
pub use hashes::{HashList, HashRequest, HASH_REQUEST_LEN, MAX_HASHES};
pub use holepunch::{
    HolepunchDecodeError, HolepunchErrorCode, HolepunchForm, HolepunchMessage, UT_HOLEPUNCH,
};
pub use metadata::{
    metadata_piece_count, MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE, UT_METADATA,
};
pub use pex::{PexFlags, PexMessage, MAX_PEX_PEERS, UT_PEX};
pub use receive::{FrameCursor, PIECE_FRAME_LEN, PIECE_HEADER_LEN};
