//! Message stream encryption (MSE, also called PE or "protocol
//! encryption"): the obfuscated handshake and RC4 stream that libtorrent,
//! Vuze, Transmission and most clients speak in front of the BitTorrent
//! handshake, so that the stream is not recognisable as BitTorrent.
//!
//! The protocol, from Vuze's "Message Stream Encryption" spec (there is no
//! BEP; libtorrent's `pe_crypto` follows it), with A the side that
//! connects and B the side that accepts:
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(padD), padD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! `Y` are Diffie-Hellman public keys ([`dh`]), `S` the shared secret,
//! `SKEY` the torrent's info-hash, `VC` eight zero bytes whose encrypted
//! form each side searches for to find the end of the other's random
//! padding, and `crypto_provide`/`crypto_select` choose between RC4 for the
//! whole payload and plaintext after the handshake ([`CryptoMethods`]).
//! The hashes and keys are in [`keys`], the payload ciphers in [`stream`].
//!
//! The two sides are machines in the core's vocabulary ([`Initiator`],
//! [`Responder`]): bytes in through `handle_data`, bytes to send from
//! `poll_transmit`, and once [`Status::Established`] the
//! [`Established`] connection: the payload cipher and the payload bytes
//! that already arrived. They do no I/O and draw their private keys and
//! padding from the [`Rng`](crate::Rng) they are given. Every wait is
//! bounded by the spec's limits (padding of at most 512 bytes, the initial
//! payload's 16-bit length): a peer that sends garbage or too much padding
//! gets an [`MseError`], never an unbounded buffer.

use std::fmt;

pub mod dh;
mod handshake;
mod initiator;
pub mod keys;
mod responder;
pub mod stream;

pub use handshake::{CryptoMethods, Established, Status, MAX_PAD};
pub use initiator::Initiator;
pub use responder::Responder;
pub use stream::PayloadCipher;

/// Why an MSE handshake failed; every variant is the peer's doing except
/// [`PayloadOverflow`](MseError::PayloadOverflow), which is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MseError {
    /// The peer's Diffie-Hellman key is 0, 1, `P - 1` or not below `P`.
    BadPublicKey,
    /// The responder found no `HASH('req1', S)` within the 512 bytes of
    /// padding the spec allows.
    Req1NotFound,
    /// The initiator found no encrypted `VC` within the 512 bytes of
    /// padding the spec allows.
    VcNotFound,
    /// `HASH('req2', SKEY)` names no torrent we have.
    UnknownTorrent,
    /// The decrypted `VC` is not eight zero bytes (wrong key).
    BadVc,
    /// A `len(PadC)` or `len(PadD)` above 512.
    PadTooLong,
    /// No method both sides allow (`crypto_provide` and ours share none).
    NoCommonMethod,
    /// A `crypto_select` that is not exactly one method we provided.
    BadSelect,
    /// The application queued more payload than a handshake in progress
    /// holds.
    PayloadOverflow,
}

impl fmt::Display for MseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MseError::BadPublicKey => "MSE: the peer's Diffie-Hellman key is weak or out of range",
            MseError::Req1NotFound => "MSE: no req1 hash within the allowed padding",
            MseError::VcNotFound => "MSE: no verification constant within the allowed padding",
            MseError::UnknownTorrent => "MSE: the req2 hash names no torrent of ours",
            MseError::BadVc => "MSE: the verification constant does not decrypt to zeros",
            MseError::PadTooLong => "MSE: padding longer than 512 bytes",
            MseError::NoCommonMethod => "MSE: no encryption method both sides allow",
            MseError::BadSelect => "MSE: the peer selected a method we did not provide",
            MseError::PayloadOverflow => "MSE: too much payload queued during the handshake",
        })
    }
}

impl std::error::Error for MseError {}

#[cfg(test)]
mod tests;
