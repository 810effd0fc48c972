//! The MSE handshake targets: each side fed bytes from a hostile peer.
//!
//! The first input byte picks how: raw bytes as the whole peer stream, or
//! an honest peer's messages with the rest of the input xored over them
//! (which reaches the steps after the Diffie-Hellman exchange, where
//! random bytes never get). Oracles: no panic; never more sent than the
//! handshake's own messages; never more held than the spec's windows plus
//! one delivery; the same outcome whether the input arrives whole or split
//! at a fuzz-chosen point; and an established side hands over its payload.

use crate::mse::dh::KEY_LEN;
use crate::mse::{keys, CryptoMethods, Initiator, MseError, Responder, Status, MAX_PAD};
use crate::rng::{Rng, Seed};

const SKEY: [u8; 20] = [0x5a; 20];

/// The most a side sends during the handshake: a key, padding, step 3 or
/// 4 with empty PadC/PadD, and an initial payload of `ia` bytes.
fn max_sent(ia: usize) -> usize {
    KEY_LEN + MAX_PAD + 20 + 20 + 8 + 4 + 2 + 2 + ia
}

/// The most a side holds: the padding window, the longest fixed fields,
/// a PadC and a 16-bit initial payload, plus one delivery.
fn max_held(delivery: usize) -> usize {
    KEY_LEN + MAX_PAD + 20 + 20 + 14 + MAX_PAD + 2 + usize::from(u16::MAX) + delivery
}

fn find(req2: &[u8; 20]) -> Option<[u8; 20]> {
    (keys::req2(&SKEY) == *req2).then_some(SKEY)
}

fn xor_over(honest: &mut [u8], noise: &[u8]) {
    for (h, n) in honest.iter_mut().zip(noise) {
        *h ^= n;
    }
}

/// What one run ended with, compared between whole and split deliveries.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<Status, MseError>,
    sent: Vec<u8>,
    received: Option<Vec<u8>>,
}

fn run_responder(stream: &[u8], split: usize) -> Outcome {
    let mut rng = Rng::new(Seed::from_u64(1));
    let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
    let mut sent = Vec::new();
    let mut result = Ok(Status::Pending);
    let (head, tail) = stream.split_at(split.min(stream.len()));
    for part in [head, tail] {
        result = b.handle_data(part, find);
        assert!(b.buffered() <= max_held(part.len()));
        sent.extend(b.poll_transmit().unwrap_or_default());
        if result.is_err() {
            break;
        }
    }
    assert!(sent.len() <= max_sent(0));
    let received = (result == Ok(Status::Established)).then(|| b.finish().unwrap().received);
    Outcome {
        result,
        sent,
        received,
    }
}

fn run_initiator(stream: &[u8], split: usize) -> Outcome {
    let mut rng = Rng::new(Seed::from_u64(2));
    let mut a = Initiator::new(SKEY, CryptoMethods::BOTH, &mut rng);
    a.send_payload(b"payload").unwrap();
    let mut sent = a.poll_transmit().unwrap_or_default();
    let mut result = Ok(Status::Pending);
    let (head, tail) = stream.split_at(split.min(stream.len()));
    for part in [head, tail] {
        result = a.handle_data(part);
        assert!(a.buffered() <= max_held(part.len()));
        sent.extend(a.poll_transmit().unwrap_or_default());
        if result.is_err() {
            break;
        }
    }
    assert!(sent.len() <= max_sent(b"payload".len()));
    let received = (result == Ok(Status::Established)).then(|| a.finish().unwrap().received);
    Outcome {
        result,
        sent,
        received,
    }
}

/// The stream an initiator sends, honest or with `noise` over it.
fn initiator_stream(noise: &[u8]) -> Vec<u8> {
    // The responder the target runs uses seed 1: its Yb is what an honest
    // initiator answers.
    let mut rng = Rng::new(Seed::from_u64(3));
    let mut a = Initiator::new(SKEY, CryptoMethods::BOTH, &mut rng);
    a.send_payload(b"\x13BitTorrent protocol").unwrap();
    let mut stream = a.poll_transmit().unwrap_or_default();
    let mut b = Responder::new(CryptoMethods::BOTH, &mut Rng::new(Seed::from_u64(1)));
    let _ = b.handle_data(&stream, find);
    if let Some(step2) = b.poll_transmit() {
        let _ = a.handle_data(&step2);
    }
    stream.extend(a.poll_transmit().unwrap_or_default());
    xor_over(&mut stream, noise);
    stream.extend_from_slice(noise.get(stream.len()..).unwrap_or_default());
    stream
}

/// The stream a responder sends to the target's initiator, honest or with
/// `noise` over it.
fn responder_stream(noise: &[u8]) -> Vec<u8> {
    let mut a = Initiator::new(SKEY, CryptoMethods::BOTH, &mut Rng::new(Seed::from_u64(2)));
    a.send_payload(b"payload").unwrap();
    let mut b = Responder::new(CryptoMethods::BOTH, &mut Rng::new(Seed::from_u64(4)));
    let step1 = a.poll_transmit().unwrap_or_default();
    let _ = b.handle_data(&step1, find);
    let mut stream = b.poll_transmit().unwrap_or_default();
    let _ = a.handle_data(&stream);
    if let Some(step3) = a.poll_transmit() {
        let _ = b.handle_data(&step3, find);
    }
    stream.extend(b.poll_transmit().unwrap_or_default());
    xor_over(&mut stream, noise);
    stream.extend_from_slice(noise.get(stream.len()..).unwrap_or_default());
    stream
}

/// Splits `data` into (mode, split point, rest).
fn header(data: &[u8]) -> Option<(u8, usize, &[u8])> {
    let (&mode, rest) = data.split_first()?;
    let (split, rest) = rest.split_first_chunk::<2>()?;
    Some((mode, usize::from(u16::from_be_bytes(*split)), rest))
}

/// A responder fed a hostile initiator's bytes.
pub fn mse_responder(data: &[u8]) {
    let Some((mode, split, rest)) = header(data) else {
        return;
    };
    let stream = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        initiator_stream(rest)
    };
    let whole = run_responder(&stream, stream.len());
    assert_eq!(whole, run_responder(&stream, split));
    if rest.iter().all(|b| *b == 0) && mode & 1 == 1 {
        // The honest handshake, untouched: it must succeed.
        assert_eq!(whole.result, Ok(Status::Established));
        assert!(whole.received.unwrap().starts_with(b"\x13BitTorrent"));
    }
}

/// An initiator fed a hostile responder's bytes.
pub fn mse_initiator(data: &[u8]) {
    let Some((mode, split, rest)) = header(data) else {
        return;
    };
    let stream = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        responder_stream(rest)
    };
    let whole = run_initiator(&stream, stream.len());
    assert_eq!(whole, run_initiator(&stream, split));
    if rest.iter().all(|b| *b == 0) && mode & 1 == 1 {
        assert_eq!(whole.result, Ok(Status::Established));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honest_streams_succeed_whole_and_split() {
        for split in [0, 1, 96, 200, 700, 5000] {
            let mut input = vec![1];
            input.extend_from_slice(&(split as u16).to_be_bytes());
            mse_responder(&input);
            mse_initiator(&input);
        }
    }
}
