//! The hashes an MSE handshake sends and the RC4 keys it derives.
//!
//! From the spec (`HASH` is SHA-1, `S` the Diffie-Hellman secret, `SKEY`
//! the torrent's info-hash):
//!
//! - the initiator sends `HASH('req1', S)`, which the responder looks for
//!   to find where the initiator's padding ends, then
//!   `HASH('req2', SKEY) xor HASH('req3', S)`: only someone who knows `S`
//!   can undo the xor, and `HASH('req2', SKEY)` names the torrent without
//!   naming its info-hash, so a responder with many torrents compares it
//!   with each torrent's [`req2`] ("find the torrent among many");
//! - `keyA = HASH('keyA', S, SKEY)` keys what the initiator sends and
//!   `keyB = HASH('keyB', S, SKEY)` what the responder sends; "RC4 ... the
//!   first 1024 bytes of the RC4 output are discarded".

use sha1::{Digest, Sha1};

use super::dh::SharedSecret;
use super::stream::Rc4Stream;

/// A SHA-1 digest as the handshake sends it.
pub type Digest20 = [u8; 20];

fn hash(parts: &[&[u8]]) -> Digest20 {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HASH('req1', S)`: marks the end of the initiator's padding.
pub fn req1(secret: &SharedSecret) -> Digest20 {
    hash(&[b"req1", &secret.0])
}

/// `HASH('req2', SKEY)`: the torrent, as the responder finds it.
pub fn req2(skey: &[u8; 20]) -> Digest20 {
    hash(&[b"req2", skey])
}

/// `HASH('req3', S)`: hides `req2` from anyone without `S`.
pub fn req3(secret: &SharedSecret) -> Digest20 {
    hash(&[b"req3", &secret.0])
}

/// `HASH('req2', SKEY) xor HASH('req3', S)`, as sent (and, xored again
/// with `req3`, undone).
pub fn xor(a: &Digest20, b: &Digest20) -> Digest20 {
    let mut out = *a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

/// The two directions' ciphers, derived from `S` and `SKEY`.
#[derive(Debug)]
pub struct DirectionKeys {
    /// What the initiator sends (`keyA`).
    pub initiator: Rc4Stream,
    /// What the responder sends (`keyB`).
    pub responder: Rc4Stream,
}

impl DirectionKeys {
    /// Both RC4 streams, each past its first 1,024 discarded bytes.
    pub fn derive(secret: &SharedSecret, skey: &[u8; 20]) -> DirectionKeys {
        DirectionKeys {
            initiator: Rc4Stream::new(&hash(&[b"keyA", &secret.0, skey])),
            responder: responder_stream(secret, skey),
        }
    }
}

/// The responder's stream alone: the initiator keys a second copy to
/// know what `ENCRYPT(VC)` looks like before it decrypts anything.
pub fn responder_stream(secret: &SharedSecret, skey: &[u8; 20]) -> Rc4Stream {
    Rc4Stream::new(&hash(&[b"keyB", &secret.0, skey]))
}
