//! The side that accepts (B in the spec).
//!
//! On `Ya` it sends `Yb, PadB`; it looks for `HASH('req1', S)` within the
//! 512 bytes of `PadA`, undoes the xor on the next 20 bytes to get
//! `HASH('req2', SKEY)` and asks the caller which torrent that is; then it
//! reads `VC, crypto_provide, len(PadC), PadC, len(IA), IA` under `keyA`,
//! chooses a method and answers `VC, crypto_select, len(PadD), PadD` under
//! `keyB`.

use super::dh::{KeyPair, SharedSecret, KEY_LEN};
use super::handshake::{
    find_within_pad, pad_len, public_key_and_padding, CryptoMethods, Established, Status, VC,
    VC_METHOD_PAD_LEN,
};
use super::keys::{self, Digest20, DirectionKeys};
use super::stream::{PayloadCipher, Rc4Stream};
use super::MseError;
use crate::rng::Rng;

#[derive(Debug)]
enum State {
    /// Waiting for the 96 bytes of `Ya`.
    PeerKey,
    /// Looking for `HASH('req1', S)` after `PadA`.
    Req1 {
        secret: Box<SharedSecret>,
    },
    /// Waiting for `HASH('req2', SKEY) xor HASH('req3', S)`.
    Req2 {
        secret: Box<SharedSecret>,
    },
    /// Waiting for `VC, crypto_provide, len(PadC)`.
    Provide,
    /// Waiting for `PadC, len(IA)` (PadC's length).
    PadC {
        provide: CryptoMethods,
        len: usize,
    },
    /// Waiting for `IA` (its length).
    InitialPayload {
        provide: CryptoMethods,
        len: usize,
    },
    Done {
        select: CryptoMethods,
    },
    Failed(MseError),
}

/// The accepting side's handshake; see the module documentation.
///
/// Methods: [`handle_data`](Responder::handle_data) for bytes that
/// arrived (with a way to find a torrent by its `req2` hash),
/// [`poll_transmit`](Responder::poll_transmit) for bytes to send (drain it
/// after each call), and [`finish`](Responder::finish) once
/// [`Status::Established`].
#[derive(Debug)]
pub struct Responder {
    allowed: CryptoMethods,
    keys: KeyPair,
    /// `Yb, PadB`, sent once `Ya` is in.
    greeting: Vec<u8>,
    state: State,
    received: Vec<u8>,
    transmit: Vec<u8>,
    initial_payload: Vec<u8>,
    skey: [u8; 20],
    /// `keyA` (received) and `keyB` (sent) once the torrent is known.
    ciphers: Option<(Rc4Stream, Rc4Stream)>,
}

impl Responder {
    /// A handshake that accepts the methods in `allowed`.
    pub fn new(allowed: CryptoMethods, rng: &mut Rng) -> Responder {
        let keys = KeyPair::generate(rng);
        let greeting = public_key_and_padding(keys.public(), rng);
        Responder {
            allowed,
            keys,
            greeting,
            state: State::PeerKey,
            received: Vec::new(),
            transmit: Vec::new(),
            initial_payload: Vec::new(),
            skey: [0; 20],
            ciphers: None,
        }
    }

    /// Bytes received and held while the handshake is in progress (at
    /// most the padding window, or the initial payload's 16-bit length,
    /// plus the last delivery).
    pub fn buffered(&self) -> usize {
        self.received.len() + self.initial_payload.len()
    }

    /// Bytes to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// Bytes from the initiator. `find` maps a `HASH('req2', SKEY)` to the
    /// torrent's info-hash ([`keys::req2`] of each torrent we serve). After
    /// an error the handshake is dead and every later call returns it.
    pub fn handle_data(
        &mut self,
        data: &[u8],
        find: impl FnOnce(&Digest20) -> Option<[u8; 20]>,
    ) -> Result<Status, MseError> {
        match self.state {
            State::Failed(e) => return Err(e),
            State::Done { .. } => {
                self.received.extend_from_slice(data);
                return Ok(Status::Established);
            }
            _ => {}
        }
        self.received.extend_from_slice(data);
        match self.advance(find) {
            Ok(status) => Ok(status),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn advance(
        &mut self,
        find: impl FnOnce(&Digest20) -> Option<[u8; 20]>,
    ) -> Result<Status, MseError> {
        let mut find = Some(find);
        loop {
            let state = std::mem::replace(&mut self.state, State::Failed(MseError::BadVc));
            let (next, status) = self.step(state, &mut find)?;
            self.state = next;
            if let Some(status) = status {
                return Ok(status);
            }
        }
    }

    /// One step: the next state, and a status if we must stop here.
    fn step(
        &mut self,
        state: State,
        find: &mut Option<impl FnOnce(&Digest20) -> Option<[u8; 20]>>,
    ) -> Result<(State, Option<Status>), MseError> {
        const PENDING: Option<Status> = Some(Status::Pending);
        match state {
            State::PeerKey => {
                let Some(ya) = self.received.get(..KEY_LEN) else {
                    return Ok((State::PeerKey, PENDING));
                };
                let mut peer = [0u8; KEY_LEN];
                peer.copy_from_slice(ya);
                self.received.drain(..KEY_LEN);
                let secret = Box::new(self.keys.shared_secret(&peer)?);
                self.transmit.append(&mut self.greeting);
                Ok((State::Req1 { secret }, None))
            }
            State::Req1 { secret } => {
                let req1 = keys::req1(&secret);
                match find_within_pad(&self.received, &req1, MseError::Req1NotFound)? {
                    Some(at) => {
                        self.received.drain(..at + req1.len());
                        Ok((State::Req2 { secret }, None))
                    }
                    None => Ok((State::Req1 { secret }, PENDING)),
                }
            }
            State::Req2 { secret } => {
                let Some(hidden) = self.received.get(..20) else {
                    return Ok((State::Req2 { secret }, PENDING));
                };
                let mut obfuscated = [0u8; 20];
                obfuscated.copy_from_slice(hidden);
                self.received.drain(..20);
                let req2 = keys::xor(&obfuscated, &keys::req3(&secret));
                let find = find.take().ok_or(MseError::UnknownTorrent)?;
                self.skey = find(&req2).ok_or(MseError::UnknownTorrent)?;
                let k = DirectionKeys::derive(&secret, &self.skey);
                self.ciphers = Some((k.initiator, k.responder));
                Ok((State::Provide, None))
            }
            State::Provide => {
                let Some(head) = self.take_decrypted::<VC_METHOD_PAD_LEN>() else {
                    return Ok((State::Provide, PENDING));
                };
                if head[..8] != VC {
                    return Err(MseError::BadVc);
                }
                let provide = CryptoMethods::from_bits(u32::from_be_bytes([
                    head[8], head[9], head[10], head[11],
                ]));
                let len = pad_len([head[12], head[13]])?;
                Ok((State::PadC { provide, len }, None))
            }
            State::PadC { provide, len } => {
                if self.received.len() < len + 2 {
                    return Ok((State::PadC { provide, len }, PENDING));
                }
                let mut pad: Vec<u8> = self.received.drain(..len + 2).collect();
                self.decrypt(&mut pad);
                let len = usize::from(u16::from_be_bytes([pad[len], pad[len + 1]]));
                Ok((State::InitialPayload { provide, len }, None))
            }
            State::InitialPayload { provide, len } => {
                if self.received.len() < len {
                    return Ok((State::InitialPayload { provide, len }, PENDING));
                }
                let mut ia: Vec<u8> = self.received.drain(..len).collect();
                self.decrypt(&mut ia);
                self.initial_payload = ia;
                let select = self.allowed.select(provide)?;
                self.send_step4(select);
                Ok((State::Done { select }, Some(Status::Established)))
            }
            State::Done { select } => Ok((State::Done { select }, Some(Status::Established))),
            State::Failed(e) => Err(e),
        }
    }

    fn decrypt(&mut self, data: &mut [u8]) {
        if let Some((rx, _)) = self.ciphers.as_mut() {
            rx.apply(data);
        }
    }

    fn take_decrypted<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.received.get(..N)?);
        self.received.drain(..N);
        self.decrypt(&mut out);
        Some(out)
    }

    /// `ENCRYPT(VC, crypto_select, len(padD), padD)`, with an empty PadD.
    fn send_step4(&mut self, select: CryptoMethods) {
        let mut step = Vec::with_capacity(VC_METHOD_PAD_LEN);
        step.extend_from_slice(&VC);
        step.extend_from_slice(&select.bits().to_be_bytes());
        step.extend_from_slice(&0u16.to_be_bytes());
        if let Some((_, tx)) = self.ciphers.as_mut() {
            tx.apply(&mut step);
        }
        self.transmit.extend_from_slice(&step);
    }

    /// The established connection; `None` before [`Status::Established`].
    /// Drain [`poll_transmit`](Responder::poll_transmit) first.
    pub fn finish(self) -> Option<Established> {
        let State::Done { select } = self.state else {
            return None;
        };
        let (receive, send) = self.ciphers?;
        let mut cipher = PayloadCipher::selected(select, send, receive);
        let mut rest = self.received;
        cipher.decrypt(&mut rest);
        let mut received = self.initial_payload;
        received.extend_from_slice(&rest);
        Some(Established {
            skey: self.skey,
            method: select,
            cipher,
            received,
        })
    }
}
