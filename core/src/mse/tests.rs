//! Both sides against each other, known answers computed independently
//! (Python's `pow` and `hashlib` and a textbook RC4 checked against RFC
//! 6229), and hostile input at each step.

use super::dh::{KeyPair, KEY_LEN};
use super::keys::{self, DirectionKeys};
use super::stream::Rc4Stream;
use super::*;
use crate::rng::{Rng, Seed};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SKEY: [u8; 20] = [0xaa; 20];

#[test]
fn known_answers_for_keys_hashes_and_keystreams() {
    let xa: Vec<u8> = (1..=20).collect();
    let xb: Vec<u8> = (101..=120).collect();
    let a = KeyPair::from_private(&xa);
    let b = KeyPair::from_private(&xb);
    assert_eq!(
        a.public().to_vec(),
        hex("96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d406258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693")
    );
    let s = a.shared_secret(b.public()).unwrap();
    assert_eq!(s, b.shared_secret(a.public()).unwrap());
    assert_eq!(
        s.0.to_vec(),
        hex("d05ed96a95215a89b44073afe5d0b1626289ac01cff7849392948b2470b346547e944d7562a897ae86976bc389999083ec09572dbdc8ed7f6a0a86a1aa42a3ca04209b72d8239890360435640643b76479ed7836f1857963fcc7cb72084c3ab4")
    );
    assert_eq!(
        keys::req1(&s).to_vec(),
        hex("78fffb0f23055a793ff7609f359e04e383ec3505")
    );
    assert_eq!(
        keys::xor(&keys::req2(&SKEY), &keys::req3(&s)).to_vec(),
        hex("f2f74cb293cbfc230fbc6707cd5dca1d7ea0e6fd")
    );
    let mut k = DirectionKeys::derive(&s, &SKEY);
    let mut ks = [0u8; 16];
    k.initiator.apply(&mut ks);
    assert_eq!(ks.to_vec(), hex("e50e282022084479e72308e7a3a4e880"));
    let mut ks = [0u8; 16];
    k.responder.apply(&mut ks);
    assert_eq!(ks.to_vec(), hex("943d5a81d0106aa03a3f5991e0bb8b9c"));
}

/// Our RC4 is the RustCrypto `rc4` crate's cipher 1,024 bytes on, over
/// a long stream applied in uneven pieces; and that crate (like the
/// textbook RC4 the known answers were made with) gives RFC 6229's first
/// keystream bytes for key 0x0102030405.
#[test]
fn rc4_stream_is_rc4_past_its_first_1024_bytes() {
    use rc4::{KeyInit, Rc4, StreamCipher};
    for seed in 0..8u8 {
        let key: [u8; 20] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ seed);
        let mut reference = Rc4::new_from_slice(&key).unwrap();
        let mut expected = vec![0u8; 1024 + 70_000];
        reference.apply_keystream(&mut expected);
        let mut ours = Rc4Stream::new(&key);
        let mut got = vec![0u8; 70_000];
        let mut at = 0;
        for len in [1, 15, 16_384, 3, 40_000].into_iter().cycle() {
            let end = (at + len).min(got.len());
            ours.apply(&mut got[at..end]);
            at = end;
            if at == got.len() {
                break;
            }
        }
        assert!(got == expected[1024..], "key {seed}");
    }

    let mut rfc = Rc4::new_from_slice(&[1, 2, 3, 4, 5]).unwrap();
    let mut ks = [0u8; 16];
    rfc.apply_keystream(&mut ks);
    assert_eq!(ks.to_vec(), hex("b2396305f03dc027ccc3524a0a1118a8"));
}

/// Shuttles bytes between the two sides until both are established (or
/// one fails); `chunk` splits every delivery.
fn run_pair(
    init: &mut Initiator,
    resp: &mut Responder,
    torrents: &[[u8; 20]],
    chunk: usize,
) -> Result<(), MseError> {
    let (mut a_done, mut b_done) = (false, false);
    for _ in 0..64 {
        if let Some(bytes) = init.poll_transmit() {
            for c in bytes.chunks(chunk) {
                let s = resp.handle_data(c, |req2| {
                    torrents.iter().copied().find(|t| keys::req2(t) == *req2)
                })?;
                b_done = s == Status::Established;
            }
        }
        if let Some(bytes) = resp.poll_transmit() {
            for c in bytes.chunks(chunk) {
                a_done = init.handle_data(c)? == Status::Established;
            }
        }
        if a_done && b_done {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn pair(seed: u64, provide: CryptoMethods, allowed: CryptoMethods) -> (Initiator, Responder) {
    let mut rng = Rng::new(Seed::from_u64(seed));
    (
        Initiator::new(SKEY, provide, &mut rng),
        Responder::new(allowed, &mut rng),
    )
}

fn established(
    provide: CryptoMethods,
    allowed: CryptoMethods,
    ia: &[u8],
    chunk: usize,
) -> (Established, Established) {
    let (mut a, mut b) = pair(chunk as u64, provide, allowed);
    a.send_payload(ia).unwrap();
    run_pair(&mut a, &mut b, &[[1; 20], SKEY, [2; 20]], chunk).unwrap();
    // Queued after step 3: goes out once the method is chosen.
    a.send_payload(b"after").unwrap();
    let late = a.poll_transmit().unwrap();
    let (a, b) = (a.finish().unwrap(), b.finish().unwrap());
    let mut b = b;
    let mut late = late;
    b.cipher.decrypt(&mut late);
    let mut expected = ia.to_vec();
    expected.extend_from_slice(b"after");
    let mut got = b.received.clone();
    got.extend_from_slice(&late);
    assert_eq!(got, expected);
    (a, b)
}

fn check_payload_both_ways(a: &mut Established, b: &mut Established) {
    let msg: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let mut wire = msg.clone();
    a.cipher.encrypt(&mut wire);
    assert_eq!(wire != msg, a.cipher.is_encrypted());
    b.cipher.decrypt(&mut wire);
    assert_eq!(wire, msg);
    let mut wire = msg.clone();
    b.cipher.encrypt(&mut wire);
    a.cipher.decrypt(&mut wire);
    assert_eq!(wire, msg);
}

/// RC4 when one side allows nothing else; plaintext when both allow
/// both (libtorrent's default choice).
#[test]
fn rc4_only_when_a_side_insists() {
    for ia in [&b""[..], b"\x13BitTorrent protocol and more"] {
        for chunk in [1, 7, 4096] {
            for (provide, allowed) in [
                (CryptoMethods::RC4, CryptoMethods::BOTH),
                (CryptoMethods::BOTH, CryptoMethods::RC4),
            ] {
                let (mut a, mut b) = established(provide, allowed, ia, chunk);
                assert_eq!(a.method, CryptoMethods::RC4);
                assert_eq!(b.method, CryptoMethods::RC4);
                assert_eq!(b.skey, SKEY);
                check_payload_both_ways(&mut a, &mut b);
            }
            let (a, b) = established(CryptoMethods::BOTH, CryptoMethods::BOTH, ia, chunk);
            assert_eq!(
                (a.method, b.method),
                (CryptoMethods::PLAINTEXT, CryptoMethods::PLAINTEXT)
            );
        }
    }
}

#[test]
fn plaintext_after_an_obfuscated_handshake() {
    for (provide, allowed) in [
        (CryptoMethods::PLAINTEXT, CryptoMethods::BOTH),
        (CryptoMethods::BOTH, CryptoMethods::PLAINTEXT),
    ] {
        let (mut a, mut b) = established(provide, allowed, b"initial", 4096);
        assert_eq!(a.method, CryptoMethods::PLAINTEXT);
        assert!(!b.cipher.is_encrypted());
        check_payload_both_ways(&mut a, &mut b);
    }
}

#[test]
fn payload_sent_with_the_last_handshake_bytes_is_kept() {
    let (mut a, mut b) = pair(3, CryptoMethods::RC4, CryptoMethods::RC4);
    run_pair(&mut a, &mut b, &[SKEY], 4096).unwrap();
    let mut b = b.finish().unwrap();
    let mut extra = b"piece data".to_vec();
    b.cipher.encrypt(&mut extra);
    // Arrives after establishment, before `finish`.
    assert_eq!(a.handle_data(&extra).unwrap(), Status::Established);
    assert_eq!(a.finish().unwrap().received, b"piece data");
}

#[test]
fn responder_finds_the_torrent_among_many_by_req2() {
    let torrents: Vec<[u8; 20]> = (0..50u8).map(|i| [i; 20]).collect();
    for wanted in [[0u8; 20], [17; 20], [49; 20]] {
        let mut rng = Rng::new(Seed::from_u64(u64::from(wanted[0])));
        let mut a = Initiator::new(wanted, CryptoMethods::BOTH, &mut rng);
        let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
        run_pair(&mut a, &mut b, &torrents, 4096).unwrap();
        assert_eq!(b.finish().unwrap().skey, wanted);
    }
    let (mut a, mut b) = pair(9, CryptoMethods::BOTH, CryptoMethods::BOTH);
    assert_eq!(
        run_pair(&mut a, &mut b, &torrents, 4096),
        Err(MseError::UnknownTorrent)
    );
}

#[test]
fn no_common_method_is_refused() {
    let (mut a, mut b) = pair(4, CryptoMethods::PLAINTEXT, CryptoMethods::RC4);
    assert_eq!(
        run_pair(&mut a, &mut b, &[SKEY], 4096),
        Err(MseError::NoCommonMethod)
    );
}

#[test]
fn garbage_is_refused_within_the_padding_window() {
    let mut rng = Rng::new(Seed::from_u64(5));
    let mut noise = vec![0u8; 4096];
    rng.fill(&mut noise);
    // A plausible key followed by noise: no req1 within 512 bytes.
    let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
    let mut result = Ok(Status::Pending);
    for c in noise.chunks(100) {
        result = b.handle_data(c, |_| Some(SKEY));
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(MseError::Req1NotFound));
    assert!(b.buffered() <= KEY_LEN + MAX_PAD + 20 + 100);
    // Dead for good.
    assert_eq!(b.handle_data(b"x", |_| None), Err(MseError::Req1NotFound));

    let mut a = Initiator::new(SKEY, CryptoMethods::BOTH, &mut rng);
    let mut result = Ok(Status::Pending);
    for c in noise.chunks(100) {
        result = a.handle_data(c);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(MseError::VcNotFound));
}

#[test]
fn weak_keys_are_refused_by_both_sides() {
    let mut rng = Rng::new(Seed::from_u64(6));
    let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
    assert_eq!(
        b.handle_data(&[0u8; KEY_LEN], |_| None),
        Err(MseError::BadPublicKey)
    );
    let mut a = Initiator::new(SKEY, CryptoMethods::BOTH, &mut rng);
    let mut one = [0u8; KEY_LEN];
    one[KEY_LEN - 1] = 1;
    assert_eq!(a.handle_data(&one), Err(MseError::BadPublicKey));
}

#[test]
fn truncated_handshakes_stay_pending_at_every_byte() {
    let (mut a, mut b) = pair(8, CryptoMethods::BOTH, CryptoMethods::BOTH);
    a.send_payload(b"ia").unwrap();
    let step1 = a.poll_transmit().unwrap();
    for (i, byte) in step1.iter().enumerate() {
        let s = b.handle_data(&[*byte], |_| Some(SKEY)).unwrap();
        assert_eq!(s, Status::Pending, "byte {i}");
    }
    let step2 = b.poll_transmit().unwrap();
    for byte in &step2 {
        assert_eq!(a.handle_data(&[*byte]).unwrap(), Status::Pending);
    }
    let step3 = a.poll_transmit().unwrap();
    let (last, head) = step3.split_last().unwrap();
    for byte in head {
        assert_eq!(
            b.handle_data(&[*byte], |_| Some(SKEY)).unwrap(),
            Status::Pending
        );
    }
    assert_eq!(
        b.handle_data(&[*last], |_| Some(SKEY)).unwrap(),
        Status::Established
    );
    let step4 = b.poll_transmit().unwrap();
    let (last, head) = step4.split_last().unwrap();
    for byte in head {
        assert_eq!(a.handle_data(&[*byte]).unwrap(), Status::Pending);
    }
    assert_eq!(a.handle_data(&[*last]).unwrap(), Status::Established);
    assert!(a.finish().is_some());
    assert_eq!(b.finish().unwrap().received, b"ia");
}

/// Builds step 3 by hand (the wire format read from the spec, not from
/// the initiator) with a chosen `len(PadC)` and `VC`.
fn hand_made_step3(a_keys: &KeyPair, yb: &[u8; KEY_LEN], pad_c: u16, vc: [u8; 8]) -> Vec<u8> {
    let s = a_keys.shared_secret(yb).unwrap();
    let mut k = DirectionKeys::derive(&s, &SKEY);
    let mut out = keys::req1(&s).to_vec();
    out.extend_from_slice(&keys::xor(&keys::req2(&SKEY), &keys::req3(&s)));
    let mut enc = vc.to_vec();
    enc.extend_from_slice(&2u32.to_be_bytes());
    enc.extend_from_slice(&pad_c.to_be_bytes());
    enc.extend(std::iter::repeat_n(0, usize::from(pad_c).min(600)));
    enc.extend_from_slice(&0u16.to_be_bytes());
    k.initiator.apply(&mut enc);
    out.extend_from_slice(&enc);
    out
}

fn responder_after_step1(seed: u64) -> (Responder, KeyPair, [u8; KEY_LEN]) {
    let mut rng = Rng::new(Seed::from_u64(seed));
    let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
    let a_keys = KeyPair::generate(&mut rng);
    assert_eq!(
        b.handle_data(a_keys.public(), |_| None).unwrap(),
        Status::Pending
    );
    let step2 = b.poll_transmit().unwrap();
    let mut yb = [0u8; KEY_LEN];
    yb.copy_from_slice(&step2[..KEY_LEN]);
    (b, a_keys, yb)
}

#[test]
fn a_hand_made_step3_is_accepted() {
    let (mut b, a_keys, yb) = responder_after_step1(10);
    let step3 = hand_made_step3(&a_keys, &yb, 512, [0; 8]);
    assert_eq!(
        b.handle_data(&step3, |_| Some(SKEY)).unwrap(),
        Status::Established
    );
    assert_eq!(b.finish().unwrap().method, CryptoMethods::RC4);
}

#[test]
fn padding_over_512_and_a_wrong_vc_are_refused() {
    let (mut b, a_keys, yb) = responder_after_step1(11);
    let step3 = hand_made_step3(&a_keys, &yb, 513, [0; 8]);
    assert_eq!(
        b.handle_data(&step3, |_| Some(SKEY)),
        Err(MseError::PadTooLong)
    );
    let (mut b, a_keys, yb) = responder_after_step1(12);
    let step3 = hand_made_step3(&a_keys, &yb, 0, [1; 8]);
    assert_eq!(b.handle_data(&step3, |_| Some(SKEY)), Err(MseError::BadVc));
}

#[test]
fn queued_payload_is_bounded() {
    let (mut a, _) = pair(13, CryptoMethods::BOTH, CryptoMethods::BOTH);
    a.send_payload(&vec![0; 4 << 20]).unwrap();
    assert_eq!(a.send_payload(b"x"), Err(MseError::PayloadOverflow));
}
