//! The side that connects (A in the spec).
//!
//! It sends `Ya, PadA` at once; on `Yb` it sends step 3 (the req hashes,
//! then `VC, crypto_provide, len(PadC), PadC, len(IA), IA` under `keyA`),
//! carrying as the initial payload (IA) whatever the application queued so
//! far; then it looks for `VC` under `keyB` within the 512 bytes of `PadB`
//! and reads `crypto_select` and `PadD`. Payload queued after step 3 waits
//! for `crypto_select`, which says whether it goes out in RC4 or plain.

use super::dh::{KeyPair, SharedSecret, KEY_LEN};
use super::handshake::{
    find_within_pad, pad_len, public_key_and_padding, CryptoMethods, Established, Status,
    MAX_HELD_PAYLOAD, VC, VC_METHOD_PAD_LEN,
};
use super::keys::{self, DirectionKeys};
use super::stream::{PayloadCipher, Rc4Stream};
use super::MseError;
use crate::rng::Rng;

#[derive(Debug)]
enum State {
    /// Waiting for the 96 bytes of `Yb`.
    PeerKey,
    /// Looking for `ENCRYPT(VC)` after `PadB`.
    Vc {
        /// `ENCRYPT(VC)`: the first 8 bytes of `keyB`'s stream.
        pattern: [u8; 8],
    },
    /// Waiting for `crypto_select, len(PadD)`.
    Select,
    /// Waiting for `PadD` (its length).
    PadD {
        select: CryptoMethods,
        len: usize,
    },
    Done {
        select: CryptoMethods,
    },
    Failed(MseError),
}

/// The connecting side's handshake; see the module documentation.
///
/// Methods: [`handle_data`](Initiator::handle_data) for bytes that
/// arrived, [`send_payload`](Initiator::send_payload) for what the
/// application wants to send, [`poll_transmit`](Initiator::poll_transmit)
/// for bytes to send (drain it after each call), and
/// [`finish`](Initiator::finish) once [`Status::Established`].
#[derive(Debug)]
pub struct Initiator {
    skey: [u8; 20],
    provide: CryptoMethods,
    keys: KeyPair,
    state: State,
    received: Vec<u8>,
    transmit: Vec<u8>,
    /// Application payload not yet sent.
    held: Vec<u8>,
    /// `keyA` and `keyB` once `S` is known.
    ciphers: Option<(Rc4Stream, Rc4Stream)>,
}

impl Initiator {
    /// A handshake for the torrent `skey` offering `provide`; `Ya, PadA`
    /// are ready in [`poll_transmit`](Initiator::poll_transmit).
    pub fn new(skey: [u8; 20], provide: CryptoMethods, rng: &mut Rng) -> Initiator {
        let keys = KeyPair::generate(rng);
        let transmit = public_key_and_padding(keys.public(), rng);
        Initiator {
            skey,
            provide,
            keys,
            state: State::PeerKey,
            received: Vec::new(),
            transmit,
            held: Vec::new(),
            ciphers: None,
        }
    }

    /// Queues payload (the BitTorrent handshake and what follows): it goes
    /// out as the initial payload if step 3 has not been sent yet, else
    /// once the method is chosen.
    pub fn send_payload(&mut self, data: &[u8]) -> Result<(), MseError> {
        if self.held.len() + data.len() > MAX_HELD_PAYLOAD {
            return Err(MseError::PayloadOverflow);
        }
        self.held.extend_from_slice(data);
        if let State::Done { select } = self.state {
            self.send_held(select);
        }
        Ok(())
    }

    /// Bytes received and held while the handshake is in progress (at
    /// most the padding window plus the last delivery).
    pub fn buffered(&self) -> usize {
        self.received.len()
    }

    /// Bytes to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// Bytes from the responder. After an error the handshake is dead and
    /// every later call returns the same error.
    pub fn handle_data(&mut self, data: &[u8]) -> Result<Status, MseError> {
        match self.state {
            State::Failed(e) => return Err(e),
            State::Done { .. } => {
                self.received.extend_from_slice(data);
                return Ok(Status::Established);
            }
            _ => {}
        }
        self.received.extend_from_slice(data);
        match self.advance() {
            Ok(status) => Ok(status),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn advance(&mut self) -> Result<Status, MseError> {
        loop {
            match self.state {
                State::PeerKey => {
                    let Some(yb) = self.received.get(..KEY_LEN) else {
                        return Ok(Status::Pending);
                    };
                    let mut peer = [0u8; KEY_LEN];
                    peer.copy_from_slice(yb);
                    self.received.drain(..KEY_LEN);
                    let secret = self.keys.shared_secret(&peer)?;
                    self.state = State::Vc {
                        pattern: self.send_step3(&secret),
                    };
                }
                State::Vc { pattern } => {
                    match find_within_pad(&self.received, &pattern, MseError::VcNotFound)? {
                        Some(at) => {
                            self.received.drain(..at + VC.len());
                            // The keystream moves past the VC just found.
                            let mut vc = VC;
                            if let Some((_, rx)) = self.ciphers.as_mut() {
                                rx.apply(&mut vc);
                            }
                            self.state = State::Select;
                        }
                        None => return Ok(Status::Pending),
                    }
                }
                State::Select => {
                    let Some((_, rx)) = self.ciphers.as_mut() else {
                        return Err(MseError::BadVc);
                    };
                    const LEN: usize = VC_METHOD_PAD_LEN - VC.len();
                    if self.received.len() < LEN {
                        return Ok(Status::Pending);
                    }
                    let mut head = [0u8; LEN];
                    head.copy_from_slice(&self.received[..LEN]);
                    self.received.drain(..LEN);
                    rx.apply(&mut head);
                    let select = CryptoMethods::from_bits(u32::from_be_bytes([
                        head[0], head[1], head[2], head[3],
                    ]));
                    let single = select == CryptoMethods::RC4 || select == CryptoMethods::PLAINTEXT;
                    if !single || !self.provide.contains(select) {
                        return Err(MseError::BadSelect);
                    }
                    let len = pad_len([head[4], head[5]])?;
                    self.state = State::PadD { select, len };
                }
                State::PadD { select, len } => {
                    let Some((_, rx)) = self.ciphers.as_mut() else {
                        return Err(MseError::BadVc);
                    };
                    if self.received.len() < len {
                        return Ok(Status::Pending);
                    }
                    let mut pad: Vec<u8> = self.received.drain(..len).collect();
                    rx.apply(&mut pad);
                    self.state = State::Done { select };
                    self.send_held(select);
                    return Ok(Status::Established);
                }
                State::Done { .. } => return Ok(Status::Established),
                State::Failed(e) => return Err(e),
            }
        }
    }

    /// Sends step 3 and returns the encrypted `VC` to look for in step 4.
    fn send_step3(&mut self, secret: &SharedSecret) -> [u8; 8] {
        let DirectionKeys {
            initiator: mut tx,
            responder: rx,
        } = DirectionKeys::derive(secret, &self.skey);
        let mut pattern = VC;
        keys::responder_stream(secret, &self.skey).apply(&mut pattern);

        let ia_len = self.held.len().min(usize::from(u16::MAX));
        let out = &mut self.transmit;
        out.extend_from_slice(&keys::req1(secret));
        out.extend_from_slice(&keys::xor(&keys::req2(&self.skey), &keys::req3(secret)));
        let start = out.len();
        out.extend_from_slice(&VC);
        out.extend_from_slice(&self.provide.bits().to_be_bytes());
        // PadC: "standard practice at this time is for it to be zero-length".
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(ia_len as u16).to_be_bytes());
        out.extend(self.held.drain(..ia_len));
        tx.apply(&mut out[start..]);
        self.ciphers = Some((tx, rx));
        pattern
    }

    /// Sends the payload queued after step 3, now that the method is known.
    fn send_held(&mut self, select: CryptoMethods) {
        let mut held = std::mem::take(&mut self.held);
        if select == CryptoMethods::RC4 {
            if let Some((tx, _)) = self.ciphers.as_mut() {
                tx.apply(&mut held);
            }
        }
        self.transmit.extend_from_slice(&held);
    }

    /// The established connection; `None` before [`Status::Established`].
    /// Drain [`poll_transmit`](Initiator::poll_transmit) first.
    pub fn finish(self) -> Option<Established> {
        let State::Done { select } = self.state else {
            return None;
        };
        let (send, receive) = self.ciphers?;
        let mut cipher = PayloadCipher::selected(select, send, receive);
        let mut received = self.received;
        cipher.decrypt(&mut received);
        Some(Established {
            skey: self.skey,
            method: select,
            cipher,
            received,
        })
    }
}
