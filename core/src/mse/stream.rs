//! The payload once the handshake is over: RC4 in each direction, or
//! plaintext if that is what both sides chose (`crypto_select`).

use rc4::{KeyInit, Rc4, StreamCipher};

/// Keystream bytes thrown away after keying; the spec: "the first 1024
/// bytes of the RC4 output are discarded" (the weak start of RC4).
const DISCARD: usize = 1024;

/// One direction's RC4 keystream, past the discarded start.
pub struct Rc4Stream(Rc4);

impl std::fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4Stream(…)")
    }
}

impl Rc4Stream {
    /// A stream keyed with a 20-byte key, its first 1,024 bytes dropped.
    pub fn new(key: &[u8; 20]) -> Rc4Stream {
        let Ok(mut rc4) = Rc4::new_from_slice(key) else {
            // RC4 takes keys of 1..=256 bytes; ours are always 20.
            unreachable!("a 20-byte RC4 key is always valid")
        };
        let mut discard = [0u8; DISCARD];
        rc4.apply_keystream(&mut discard);
        Rc4Stream(rc4)
    }

    /// XORs the next `data.len()` keystream bytes into `data` (RC4
    /// encrypts and decrypts alike).
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

/// What a connection's payload goes through after the handshake.
#[derive(Debug)]
pub enum PayloadCipher {
    /// `crypto_select` chose plaintext: only the handshake was obfuscated.
    Plaintext,
    /// `crypto_select` chose RC4: every byte both ways.
    Rc4 {
        /// Applied to what we send.
        send: Box<Rc4Stream>,
        /// Applied to what we receive.
        receive: Box<Rc4Stream>,
    },
}

impl PayloadCipher {
    /// Encrypts bytes we are about to send, in place.
    pub fn encrypt(&mut self, data: &mut [u8]) {
        if let PayloadCipher::Rc4 { send, .. } = self {
            send.apply(data);
        }
    }

    /// Decrypts bytes that arrived, in place.
    pub fn decrypt(&mut self, data: &mut [u8]) {
        if let PayloadCipher::Rc4 { receive, .. } = self {
            receive.apply(data);
        }
    }

    /// Whether the payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, PayloadCipher::Rc4 { .. })
    }
}
