//! The BEP 10 extension handshake: extended message 0, a bencoded
//! dictionary saying which extensions the sender speaks and under which
//! message ids (`m`), plus facts about the sender.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bencode::{self, Value};
use crate::error::{DecodeError, DecodeErrorKind};

/// Largest extension handshake accepted.
pub const MAX_EXTENSION_HANDSHAKE: usize = 16 * 1024;
/// Most entries in `m`.
const MAX_EXTENSIONS: usize = 128;
/// Longest extension name.
const MAX_NAME: usize = 64;

/// A decoded extension handshake; absent fields are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExtensionHandshake {
    /// `m`: extension name → the id the *sender* wants to receive it under.
    /// Id 0 means the extension is disabled. Sorted by name.
    pub messages: Vec<(String, u8)>,
    /// `p`: the sender's listen port.
    pub port: Option<u16>,
    /// `v`: client name and version.
    pub client: Option<String>,
    /// `yourip`: our address as the sender sees it.
    pub your_ip: Option<IpAddr>,
    /// `reqq`: how many outstanding requests the sender queues.
    pub reqq: Option<u32>,
    /// `metadata_size` (BEP 9): size of the info dictionary.
    pub metadata_size: Option<u64>,
}

impl ExtensionHandshake {
    /// The id under which the sender wants `name`, if enabled.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.messages
            .iter()
            .find(|(n, id)| n == name && *id != 0)
            .map(|(_, id)| *id)
    }

    /// Decodes the payload of extended message 0. Unknown keys are ignored
    /// and malformed optional fields dropped, as BEP 10 asks of clients
    /// ("unknown keys should be ignored"); only a payload that is not a
    /// bencoded dictionary, or too large, is an error.
    pub fn decode(payload: &[u8]) -> Result<ExtensionHandshake, DecodeError> {
        if payload.len() > MAX_EXTENSION_HANDSHAKE {
            return Err(DecodeError::new(
                DecodeErrorKind::SizeLimit,
                MAX_EXTENSION_HANDSHAKE,
                "extension handshake",
            ));
        }
        let root = bencode::decode(payload)?;
        let dict = root.as_dict().ok_or(DecodeError::new(
            DecodeErrorKind::UnexpectedByte,
            0,
            "extension handshake dictionary",
        ))?;
        let mut out = ExtensionHandshake::default();
        if let Some(m) = dict.get(b"m").and_then(Value::as_dict) {
            if m.len() > MAX_EXTENSIONS {
                return Err(DecodeError::new(
                    DecodeErrorKind::ItemLimit,
                    0,
                    "extension handshake `m`",
                ));
            }
            for (name, id) in m.iter() {
                let (Ok(name), Some(id)) = (
                    std::str::from_utf8(name),
                    id.as_int().and_then(|i| u8::try_from(i).ok()),
                ) else {
                    continue;
                };
                if name.len() <= MAX_NAME && !out.messages.iter().any(|(n, _)| n == name) {
                    out.messages.push((name.to_owned(), id));
                }
            }
            out.messages.sort();
        }
        out.port = dict
            .get(b"p")
            .and_then(Value::as_int)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0);
        // The limit holds for the name as kept: invalid UTF-8 grows by
        // up to three times once replaced, and what we keep must encode to
        // a handshake we would accept again.
        out.client = dict
            .get(b"v")
            .and_then(Value::as_bytes)
            .filter(|v| v.len() <= MAX_NAME)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.len() <= MAX_NAME);
        out.your_ip = dict
            .get(b"yourip")
            .and_then(Value::as_bytes)
            .and_then(|b| match b.len() {
                4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    Some(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => None,
            });
        out.reqq = dict
            .get(b"reqq")
            .and_then(Value::as_int)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0);
        out.metadata_size = dict
            .get(b"metadata_size")
            .and_then(Value::as_int)
            .and_then(|n| u64::try_from(n).ok());
        Ok(out)
    }

    /// Appends the bencoded payload (canonical).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let ip_bytes;
        let mut entries: Vec<(&[u8], Value<'_>)> = Vec::new();
        entries.push((
            b"m",
            Value::dict(
                self.messages
                    .iter()
                    .map(|(n, id)| (n.as_bytes(), Value::int(i64::from(*id))))
                    .collect(),
            ),
        ));
        if let Some(size) = self.metadata_size {
            entries.push((
                b"metadata_size",
                Value::int(size.min(i64::MAX as u64) as i64),
            ));
        }
        if let Some(p) = self.port {
            entries.push((b"p", Value::int(i64::from(p))));
        }
        if let Some(q) = self.reqq {
            entries.push((b"reqq", Value::int(i64::from(q))));
        }
        if let Some(v) = &self.client {
            entries.push((b"v", Value::bytes(v.as_bytes())));
        }
        if let Some(ip) = self.your_ip {
            ip_bytes = match ip {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            entries.push((b"yourip", Value::bytes(&ip_bytes)));
        }
        Value::dict(entries).encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_stay_within_the_limit_once_made_utf8() {
        // 22 invalid bytes become 66 bytes of U+FFFD: over the limit, so
        // dropped (kept, they re-encoded to a handshake we refuse).
        let mut payload = b"d1:v22:".to_vec();
        payload.extend_from_slice(&[0xff; 22]);
        payload.push(b'e');
        assert_eq!(ExtensionHandshake::decode(&payload).unwrap().client, None);
        let mut ok = b"d1:v21:".to_vec();
        ok.extend_from_slice(&[0xff; 21]);
        ok.push(b'e');
        let h = ExtensionHandshake::decode(&ok).unwrap();
        assert_eq!(h.client.as_deref().map(str::len), Some(63));
        let mut again = Vec::new();
        h.encode(&mut again);
        assert_eq!(ExtensionHandshake::decode(&again).unwrap(), h);
    }

    #[test]
    fn decodes_what_libtorrent_sends() {
        let payload = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e4:reqqi500e11:upload_onlyi0e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";
        let h = ExtensionHandshake::decode(payload).unwrap();
        assert_eq!(h.id_of("ut_metadata"), Some(2));
        assert_eq!(h.id_of("ut_pex"), Some(1));
        assert_eq!(h.id_of("nope"), None);
        assert_eq!(h.metadata_size, Some(31235));
        assert_eq!(h.reqq, Some(500));
        assert_eq!(h.client.as_deref(), Some("libtorrent/2.0.8.0"));
        assert_eq!(h.your_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn round_trip_and_tolerance() {
        let h = ExtensionHandshake {
            messages: vec![("ut_metadata".into(), 1), ("ut_pex".into(), 0)],
            port: Some(6881),
            client: Some("bittide 0.1".into()),
            your_ip: Some("::1".parse().unwrap()),
            reqq: Some(250),
            metadata_size: Some(1234),
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(ExtensionHandshake::decode(&out).unwrap(), h);
        assert_eq!(h.id_of("ut_pex"), None, "id 0 disables");
        // Wrong types are dropped, not fatal.
        let odd = ExtensionHandshake::decode(b"d1:mi3e1:p5:hello4:reqqi-1ee").unwrap();
        assert_eq!(odd, ExtensionHandshake::default());
        assert!(ExtensionHandshake::decode(b"le").is_err());
        assert!(ExtensionHandshake::decode(b"d1:m").is_err());
    }
}
