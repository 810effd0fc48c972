//! `ut_pex` messages (BEP 11): peers tell each other which peers they are
//! connected to, so a swarm spreads addresses without a tracker.
//!
//! The payload is a bencoded dictionary of compact addresses: `added` (6
//! bytes each: IPv4 and port) with one flag byte each in `added.f`,
//! `dropped`, and the IPv6 forms `added6` (18 bytes each), `added6.f`,
//! `dropped6`.

use std::net::SocketAddr;

use crate::bencode::{self, Value};
use crate::compact;
use crate::error::{DecodeError, DecodeErrorKind};

/// The extension's name in the BEP 10 handshake's `m`.
pub const UT_PEX: &str = "ut_pex";
/// Most addresses read from one list of one message; the rest are
/// ignored (BEP 11 asks senders for at most 50 added and 50 dropped).
pub const MAX_PEX_PEERS: usize = 200;
/// Largest payload read.
const MAX_PEX_PAYLOAD: usize = 16 * 1024;

/// BEP 11 flags of an added peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// 0x01: prefers encrypted connections.
    pub const ENCRYPTION: u8 = 0x01;
    /// 0x02: a seed (or upload only).
    pub const SEED: u8 = 0x02;
    /// 0x04: supports uTP.
    pub const UTP: u8 = 0x04;
    /// 0x08: supports ut_holepunch.
    pub const HOLEPUNCH: u8 = 0x08;
    /// 0x10: reachable (the sender connected out to it).
    pub const REACHABLE: u8 = 0x10;

    /// Whether `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

/// One ut_pex message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message, with flags.
    pub added: Vec<(SocketAddr, PexFlags)>,
    /// Peers the sender disconnected from.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// Decodes an extended message's payload. Malformed lists (a length
    /// that is not a whole number of entries) are errors; addresses with
    /// port 0 are skipped; a missing or short flag list means no flags.
    pub fn decode(payload: &[u8]) -> Result<PexMessage, DecodeError> {
        if payload.len() > MAX_PEX_PAYLOAD {
            return Err(DecodeError::new(
                DecodeErrorKind::SizeLimit,
                MAX_PEX_PAYLOAD,
                "ut_pex message",
            ));
        }
        let root = bencode::decode(payload)?;
        let dict = root.as_dict().ok_or(DecodeError::new(
            DecodeErrorKind::UnexpectedByte,
            0,
            "ut_pex dictionary",
        ))?;
        let list = |key: &[u8], width: usize, context: &'static str| {
            let Some(v) = dict.get(key) else {
                return Ok(&[][..]);
            };
            let bytes = v.as_bytes().ok_or(DecodeError::new(
                DecodeErrorKind::UnexpectedByte,
                v.offset(),
                context,
            ))?;
            if !bytes.len().is_multiple_of(width) {
                return Err(DecodeError::new(
                    DecodeErrorKind::InvalidLength,
                    v.offset(),
                    context,
                ));
            }
            Ok(bytes)
        };
        let flags = |key: &[u8]| dict.get(key).and_then(Value::as_bytes).unwrap_or(&[]);
        let mut out = PexMessage::default();
        for (key, flag_key, width) in [
            (&b"added"[..], &b"added.f"[..], 6),
            (b"added6", b"added6.f", 18),
        ] {
            let peers = list(key, width, "ut_pex added")?;
            let f = flags(flag_key);
            for (i, entry) in peers.chunks_exact(width).take(MAX_PEX_PEERS).enumerate() {
                if let Some(addr) = compact::decode_entry(entry) {
                    out.added
                        .push((addr, PexFlags(f.get(i).copied().unwrap_or(0))));
                }
            }
        }
        for (key, width) in [(&b"dropped"[..], 6), (b"dropped6", 18)] {
            let peers = list(key, width, "ut_pex dropped")?;
            out.dropped.extend(
                peers
                    .chunks_exact(width)
                    .take(MAX_PEX_PEERS)
                    .filter_map(compact::decode_entry),
            );
        }
        Ok(out)
    }

    /// Appends the payload (canonical; IPv4 and IPv6 addresses in their own
    /// lists, in the order given).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut added = (Vec::new(), Vec::new());
        let mut added6 = (Vec::new(), Vec::new());
        for (addr, flags) in &self.added {
            let list = if addr.is_ipv4() {
                &mut added
            } else {
                &mut added6
            };
            compact::encode(&mut list.0, addr);
            list.1.push(flags.0);
        }
        let (mut dropped, mut dropped6) = (Vec::new(), Vec::new());
        for addr in &self.dropped {
            compact::encode(
                if addr.is_ipv4() {
                    &mut dropped
                } else {
                    &mut dropped6
                },
                addr,
            );
        }
        out.push(b'd');
        for (key, value) in [
            (&b"added"[..], &added.0),
            (b"added.f", &added.1),
            (b"added6", &added6.0),
            (b"added6.f", &added6.1),
            (b"dropped", &dropped),
            (b"dropped6", &dropped6),
        ] {
            // Empty IPv6 lists are left out, as libtorrent does; the IPv4
            // ones are always there (some clients expect them).
            if value.is_empty() && key.contains(&b'6') {
                continue;
            }
            bencode::encode_bytes(out, key);
            bencode::encode_bytes(out, value);
        }
        out.push(b'e');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        let m = PexMessage {
            added: vec![
                ("10.0.0.1:6881".parse().unwrap(), PexFlags(PexFlags::SEED)),
                ("[2001:db8::1]:51413".parse().unwrap(), PexFlags(0x11)),
                ("10.0.0.2:80".parse().unwrap(), PexFlags(0)),
            ],
            dropped: vec!["192.0.2.7:1".parse().unwrap()],
        };
        let mut out = Vec::new();
        m.encode(&mut out);
        let back = PexMessage::decode(&out).unwrap();
        // IPv4 first, then IPv6: the order inside each family is kept.
        assert_eq!(back.added[0], m.added[0]);
        assert_eq!(back.added[1], m.added[2]);
        assert_eq!(back.added[2], m.added[1]);
        assert_eq!(back.dropped, m.dropped);
        assert!(back.added[2].1.has(PexFlags::REACHABLE));
        assert_eq!(bencode::decode_strict(&out).unwrap().to_vec(), out);
    }

    #[test]
    fn what_libtorrent_sends() {
        // One added IPv4 peer with flags, empty lists elsewhere.
        let payload = b"d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x126:added60:8:added6.f0:7:dropped0:8:dropped60:e";
        let m = PexMessage::decode(payload).unwrap();
        assert_eq!(
            m.added,
            vec![("127.0.0.1:6881".parse().unwrap(), PexFlags(0x12))]
        );
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn bad_lists_are_errors_and_port_zero_is_skipped() {
        assert!(PexMessage::decode(b"d5:added5:12345e").is_err());
        assert!(PexMessage::decode(b"d5:addedi3ee").is_err());
        assert!(PexMessage::decode(b"le").is_err());
        let m = PexMessage::decode(b"d5:added6:\x01\x02\x03\x04\x00\x00e").unwrap();
        assert!(m.added.is_empty());
        // Missing flags mean none.
        let m = PexMessage::decode(b"d5:added6:\x01\x02\x03\x04\x00\x01e").unwrap();
        assert_eq!(m.added[0].1, PexFlags(0));
    }

    #[test]
    fn long_lists_are_cut() {
        let mut added = Vec::new();
        for i in 0..1000u32 {
            added.extend_from_slice(&i.to_be_bytes());
            added.extend_from_slice(&1u16.to_be_bytes());
        }
        let mut payload = b"d5:added".to_vec();
        bencode::encode_bytes(&mut payload, &added);
        payload.push(b'e');
        assert_eq!(
            PexMessage::decode(&payload).unwrap().added.len(),
            MAX_PEX_PEERS
        );
    }
}
