//! The Diffie-Hellman exchange that opens an MSE handshake.
//!
//! MSE (Vuze's "Message Stream Encryption" spec, which libtorrent calls
//! PE) uses a fixed 768-bit prime `P` and generator `G = 2`: "Ya = G^Xa mod
//! P", "S = Yb^Xa mod P", all three as 96-byte big-endian numbers. The
//! private exponent comes from the caller's seeded generator (the core has
//! no OS randomness); the spec asks for at least 128 bits and recommends
//! 160, which is what we use.

use num_bigint::BigUint;

use super::MseError;
use crate::rng::Rng;

/// Bytes of a public key or shared secret on the wire: 768 bits.
pub const KEY_LEN: usize = 96;

/// Bytes of a private exponent (the spec's recommended 160 bits).
const PRIVATE_LEN: usize = 20;

/// The spec's prime `P` (the 768-bit MODP group of RFC 2409, Oakley 1).
const PRIME: [u8; KEY_LEN] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc9, 0x0f, 0xda, 0xa2, 0x21, 0x68, 0xc2, 0x34,
    0xc4, 0xc6, 0x62, 0x8b, 0x80, 0xdc, 0x1c, 0xd1, 0x29, 0x02, 0x4e, 0x08, 0x8a, 0x67, 0xcc, 0x74,
    0x02, 0x0b, 0xbe, 0xa6, 0x3b, 0x13, 0x9b, 0x22, 0x51, 0x4a, 0x08, 0x79, 0x8e, 0x34, 0x04, 0xdd,
    0xef, 0x95, 0x19, 0xb3, 0xcd, 0x3a, 0x43, 0x1b, 0x30, 0x2b, 0x0a, 0x6d, 0xf2, 0x5f, 0x14, 0x37,
    0x4f, 0xe1, 0x35, 0x6d, 0x6d, 0x51, 0xc2, 0x45, 0xe4, 0x85, 0xb5, 0x76, 0x62, 0x5e, 0x7e, 0xc6,
    0xf4, 0x4c, 0x42, 0xe9, 0xa6, 0x3a, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// The spec's generator `G`.
const GENERATOR: u32 = 2;

/// The shared secret `S`, 96 bytes big-endian.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(pub [u8; KEY_LEN]);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(…)")
    }
}

/// One side's key pair: the private exponent and `G^X mod P`.
#[derive(Clone)]
pub struct KeyPair {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A key pair with a private exponent drawn from `rng`.
    pub fn generate(rng: &mut Rng) -> KeyPair {
        let mut private = [0u8; PRIVATE_LEN];
        rng.fill(&mut private);
        KeyPair::from_private(&private)
    }

    /// The key pair for a given private exponent (big-endian); for
    /// known-answer tests.
    pub fn from_private(private: &[u8]) -> KeyPair {
        let private = BigUint::from_bytes_be(private);
        let public = BigUint::from(GENERATOR).modpow(&private, &prime());
        KeyPair {
            private,
            public: to_key_bytes(&public),
        }
    }

    /// Our public key `Y`, as sent.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// `S = Y_peer^X mod P`.
    ///
    /// A peer key of 0, 1 or `P - 1` (or not below `P`) would make `S`
    /// one of a few values anyone can guess, so it is refused.
    pub fn shared_secret(&self, peer_public: &[u8; KEY_LEN]) -> Result<SharedSecret, MseError> {
        let p = prime();
        let y = BigUint::from_bytes_be(peer_public);
        let one = BigUint::from(1u32);
        if y <= one || y >= &p - &one {
            return Err(MseError::BadPublicKey);
        }
        Ok(SharedSecret(to_key_bytes(&y.modpow(&self.private, &p))))
    }
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&PRIME)
}

/// A number below `P` as 96 bytes, left-padded with zeros.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Every value here is reduced mod P, so it fits in 96 bytes.
    let start = KEY_LEN.saturating_sub(bytes.len());
    let skip = bytes.len().saturating_sub(KEY_LEN);
    out[start..].copy_from_slice(&bytes[skip..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    #[test]
    fn both_sides_derive_the_same_secret() {
        let mut rng = Rng::new(Seed::from_u64(7));
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        assert_ne!(a.public(), b.public());
        let sa = a.shared_secret(b.public()).unwrap();
        let sb = b.shared_secret(a.public()).unwrap();
        assert_eq!(sa, sb);
    }

    #[test]
    fn weak_peer_keys_are_refused() {
        let a = KeyPair::from_private(&[5; PRIVATE_LEN]);
        let mut zero = [0u8; KEY_LEN];
        assert_eq!(a.shared_secret(&zero), Err(MseError::BadPublicKey));
        zero[KEY_LEN - 1] = 1;
        assert_eq!(a.shared_secret(&zero), Err(MseError::BadPublicKey));
        let mut p_minus_one = PRIME;
        p_minus_one[KEY_LEN - 1] -= 1;
        assert_eq!(a.shared_secret(&p_minus_one), Err(MseError::BadPublicKey));
        assert_eq!(
            a.shared_secret(&[0xff; KEY_LEN]),
            Err(MseError::BadPublicKey)
        );
    }

    /// `G^1 = 2` and `G^2 = 4`: the public key is the generator's power,
    /// left-padded to 96 bytes.
    #[test]
    fn public_keys_are_powers_of_two_padded_to_96_bytes() {
        let one = KeyPair::from_private(&[1]);
        let mut expected = [0u8; KEY_LEN];
        expected[KEY_LEN - 1] = 2;
        assert_eq!(one.public(), &expected);
        let two = KeyPair::from_private(&[2]);
        expected[KEY_LEN - 1] = 4;
        assert_eq!(two.public(), &expected);
    }
}
