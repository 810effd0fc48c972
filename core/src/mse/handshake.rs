//! What both sides of the handshake share: the wire constants, the
//! method bitfield, the outcome, and the bounded receive buffer.

use super::dh::KEY_LEN;
use super::stream::PayloadCipher;
use super::MseError;
use crate::rng::Rng;

/// The spec: "PadA, PadB: Random data with a random length of 0 to 512
/// bytes each"; also the most `len(PadC)`/`len(PadD)` may say.
pub const MAX_PAD: usize = 512;

/// The verification constant: "VC is a verification constant that is
/// used to verify whether the other side knows S and SKEY ... 8 bytes
/// set to 0x00".
pub(super) const VC: [u8; 8] = [0; 8];

/// Bytes of `VC, crypto_provide/select, len(Pad)`.
pub(super) const VC_METHOD_PAD_LEN: usize = 8 + 4 + 2;

/// The most payload the initiator holds while its handshake is in
/// progress (its BitTorrent handshake, extension handshake and bitfield
/// come to far less for any torrent).
pub(super) const MAX_HELD_PAYLOAD: usize = 4 << 20;

/// The `crypto_provide`/`crypto_select` bitfield: "0x01 means plaintext,
/// 0x02 means RC4 ... the remaining bits are reserved".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoMethods(u32);

impl CryptoMethods {
    /// Plaintext after the obfuscated handshake.
    pub const PLAINTEXT: CryptoMethods = CryptoMethods(0x01);
    /// RC4 for the whole stream.
    pub const RC4: CryptoMethods = CryptoMethods(0x02);
    /// Either.
    pub const BOTH: CryptoMethods = CryptoMethods(0x03);

    /// The bits as sent.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The bits as received (reserved bits kept: they are ignored, not
    /// refused, so that a later extension does not break us).
    pub const fn from_bits(bits: u32) -> CryptoMethods {
        CryptoMethods(bits)
    }

    /// Whether every method in `other` is in `self`.
    pub const fn contains(self, other: CryptoMethods) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The method a responder allowing `self` picks from `provided`:
    /// plaintext when both sides allow it, else RC4. This is libtorrent's
    /// default (`prefer_rc4` off): the handshake and the initiator's first
    /// payload are still hidden, which is what keeps a connection from
    /// being recognised, while RC4 over the whole stream costs about
    /// 2 CPU-s per GiB on each side and hides nothing from anyone who
    /// wants to look (RC4 is broken). A side that wants the payload
    /// encrypted allows RC4 alone (`EncryptionMode::Required`).
    pub(super) fn select(self, provided: CryptoMethods) -> Result<CryptoMethods, MseError> {
        [CryptoMethods::PLAINTEXT, CryptoMethods::RC4]
            .into_iter()
            .find(|m| self.contains(*m) && provided.contains(*m))
            .ok_or(MseError::NoCommonMethod)
    }
}

/// What a `handle_data` call left the handshake in.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// More bytes are needed (drain `poll_transmit` first).
    Pending,
    /// Done: drain `poll_transmit`, then call `finish`.
    Established,
}

/// A connection after its handshake.
#[derive(Debug)]
pub struct Established {
    /// The torrent's info-hash (`SKEY`).
    pub skey: [u8; 20],
    /// The method chosen.
    pub method: CryptoMethods,
    /// What the rest of the payload goes through, both ways.
    pub cipher: PayloadCipher,
    /// Payload bytes that already arrived, decrypted: the responder's
    /// initial payload (IA) and anything after the handshake.
    pub received: Vec<u8>,
}

/// Our public key followed by 0–512 random bytes of padding.
pub(super) fn public_key_and_padding(public: &[u8; KEY_LEN], rng: &mut Rng) -> Vec<u8> {
    let pad = rng.below(MAX_PAD as u64 + 1) as usize;
    let mut out = vec![0u8; KEY_LEN + pad];
    out[..KEY_LEN].copy_from_slice(public);
    rng.fill(&mut out[KEY_LEN..]);
    out
}

/// Where `pattern` starts in `buf`, if it starts within the first
/// `MAX_PAD + 1` positions; `Err` once it cannot be there any more.
pub(super) fn find_within_pad(
    buf: &[u8],
    pattern: &[u8],
    missing: MseError,
) -> Result<Option<usize>, MseError> {
    let found = buf
        .windows(pattern.len())
        .take(MAX_PAD + 1)
        .position(|w| w == pattern);
    match found {
        Some(at) => Ok(Some(at)),
        None if buf.len() >= MAX_PAD + pattern.len() => Err(missing),
        None => Ok(None),
    }
}

/// Reads a big-endian `u16` length and checks it against the padding
/// limit.
pub(super) fn pad_len(bytes: [u8; 2]) -> Result<usize, MseError> {
    let len = usize::from(u16::from_be_bytes(bytes));
    if len > MAX_PAD {
        return Err(MseError::PadTooLong);
    }
    Ok(len)
}
