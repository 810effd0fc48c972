//! The payload once the handshake is over: RC4 in each direction, or
//! plaintext if that is what both sides chose (`crypto_select`).

/// Keystream bytes thrown away after keying; the spec: "the first 1024
/// bytes of the RC4 output are discarded" (the weak start of RC4).
const DISCARD: usize = 1024;

/// One direction's RC4 keystream, past the discarded start.
///
/// RC4 is written out here rather than taken from the `rc4` crate: the
/// loop below keeps `i` and `j` in registers and indexes a `[u8; 256]` by
/// `u8` (no bounds checks), which measured faster on the payload path
/// (`benches/benches/mse.rs`); the known answers in `tests.rs` pin it.
pub struct Rc4Stream {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl std::fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4Stream(…)")
    }
}

impl Rc4Stream {
    /// A stream keyed with a 20-byte key, its first 1,024 bytes dropped.
    pub fn new(key: &[u8; 20]) -> Rc4Stream {
        // The key schedule (KSA).
        let mut state = [0u8; 256];
        for (n, s) in (0..=255u8).zip(state.iter_mut()) {
            *s = n;
        }
        let mut j = 0u8;
        for (i, k) in (0..256).zip(key.iter().cycle()) {
            j = j.wrapping_add(state[i]).wrapping_add(*k);
            state.swap(i, usize::from(j));
        }
        let mut stream = Rc4Stream { state, i: 0, j: 0 };
        stream.apply(&mut [0u8; DISCARD]);
        stream
    }

    /// XORs the next `data.len()` keystream bytes into `data` (RC4
    /// encrypts and decrypts alike).
    pub fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.state;
        for byte in data {
            i = i.wrapping_add(1);
            let si = s[usize::from(i)];
            j = j.wrapping_add(si);
            let sj = s[usize::from(j)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            *byte ^= s[usize::from(si.wrapping_add(sj))];
        }
        (self.i, self.j) = (i, j);
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
    /// The cipher `crypto_select` chose, from the handshake's two RC4
    /// streams (they are dropped when plaintext was chosen).
    pub(crate) fn selected(
        select: super::handshake::CryptoMethods,
        send: Rc4Stream,
        receive: Rc4Stream,
    ) -> PayloadCipher {
        if select == super::handshake::CryptoMethods::RC4 {
            PayloadCipher::Rc4 {
                send: Box::new(send),
                receive: Box::new(receive),
            }
        } else {
            PayloadCipher::Plaintext
        }
    }

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
