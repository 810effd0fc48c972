//! Magnet URIs (BEP 9, with BEP 53 file selection).
//!
//! `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<peer>…`
//!
//! The info-hash comes as 40 hex digits or 32 base32 characters; a BEP 52
//! v2 hash comes as `xt=urn:btmh:1220<64 hex>` (a SHA-256 multihash) and is
//! recognised and kept. Values are percent-decoded. Unknown parameters are
//! ignored, as BEP 9 expects of extensions. [`Magnet`]'s `Display` writes a
//! URI that parses back to an equal `Magnet`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use super::InfoHash;

/// Longest magnet URI accepted; real ones with dozens of trackers stay
/// under a few KiB.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Magnet {
    /// `xt=urn:btih:`: the v1 info-hash.
    pub info_hash: Option<InfoHash>,
    /// `xt=urn:btmh:1220…`: the BEP 52 v2 info-hash (SHA-256).
    pub info_hash_v2: Option<[u8; 32]>,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in order.
    pub trackers: Vec<String>,
    /// `ws`: web seed URLs (BEP 19).
    pub web_seeds: Vec<String>,
    /// `x.pe`: peers to connect to directly.
    pub peers: Vec<PeerAddr>,
    /// `so` (BEP 53): the file indices to download, as inclusive ranges.
    pub select_only: Vec<RangeInclusive<u32>>,
}

/// A peer address from `x.pe`: `ip:port`, `[ipv6]:port` or `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// An IP literal and port.
    Ip(SocketAddr),
    /// A host name and port, resolved by the driver.
    Host(String, u16),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(a) => a.fmt(f),
            PeerAddr::Host(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Why a magnet URI was refused. Offsets count bytes from the start of the
/// URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    NotAMagnet,
    /// Longer than [`MAX_MAGNET_LEN`].
    TooLong,
    /// No `xt=urn:btih:` or `xt=urn:btmh:` parameter.
    MissingInfoHash,
    /// An `xt` whose hash is not 40 hex, 32 base32, or a SHA-256 multihash.
    BadInfoHash {
        /// Offset of the value.
        offset: usize,
    },
    /// Two `xt` parameters name different torrents.
    ConflictingInfoHashes {
        /// Offset of the second one.
        offset: usize,
    },
    /// A `%` not followed by two hex digits, or text that is not UTF-8.
    BadEncoding {
        /// Offset of the value.
        offset: usize,
    },
    /// An `x.pe` that is not `host:port`.
    BadPeerAddress {
        /// Offset of the value.
        offset: usize,
    },
    /// A `so` that is not a list of indices and ranges.
    BadSelectOnly {
        /// Offset of the value.
        offset: usize,
    },
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::NotAMagnet => f.write_str("not a magnet link (expected `magnet:?…`)"),
            MagnetError::TooLong => write!(f, "magnet link longer than {MAX_MAGNET_LEN} bytes"),
            MagnetError::MissingInfoHash => {
                f.write_str("magnet link has no `xt=urn:btih:` info-hash")
            }
            MagnetError::BadInfoHash { offset } => write!(
                f,
                "magnet info-hash at byte {offset} is not 40 hex or 32 base32 characters"
            ),
            MagnetError::ConflictingInfoHashes { offset } => {
                write!(
                    f,
                    "magnet link names two different info-hashes (byte {offset})"
                )
            }
            MagnetError::BadEncoding { offset } => {
                write!(f, "bad percent-encoding or non-UTF-8 text at byte {offset}")
            }
            MagnetError::BadPeerAddress { offset } => {
                write!(f, "`x.pe` at byte {offset} is not a host:port peer address")
            }
            MagnetError::BadSelectOnly { offset } => {
                write!(
                    f,
                    "`so` at byte {offset} is not a list of file indices and ranges"
                )
            }
        }
    }
}

impl std::error::Error for MagnetError {}

impl Magnet {
    /// The name the torrent goes by on the wire: the v1 info-hash, or for
    /// a v2-only link (`btmh` alone) the v2 hash truncated (BEP 52).
    pub fn wire_hash(&self) -> Option<InfoHash> {
        self.info_hash
            .or_else(|| self.info_hash_v2.as_ref().map(InfoHash::truncated))
    }

    /// Parses a magnet URI.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong);
        }
        let query = uri
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &uri[8..])
            .ok_or(MagnetError::NotAMagnet)?;
        let mut m = Magnet::default();
        let mut offset = 8;
        for param in query.split('&') {
            let here = offset;
            offset += param.len() + 1;
            let Some((key, raw)) = param.split_once('=') else {
                continue;
            };
            let at = here + key.len() + 1;
            // Parameters may be numbered (`tr.1=`), as some tools write them.
            let base = key.split_once('.').map_or(key, |(b, n)| {
                if n.bytes().all(|c| c.is_ascii_digit()) {
                    b
                } else {
                    key
                }
            });
            match base {
                "xt" => m.parse_xt(raw, at)?,
                "dn" => m.display_name = Some(decode(raw, at, true)?),
                "tr" => m.trackers.push(decode(raw, at, false)?),
                "ws" => m.web_seeds.push(decode(raw, at, false)?),
                "x.pe" => {
                    let text = decode(raw, at, false)?;
                    let peer =
                        parse_peer(&text).ok_or(MagnetError::BadPeerAddress { offset: at })?;
                    m.peers.push(peer);
                }
                "so" => {
                    let text = decode(raw, at, false)?;
                    m.select_only = parse_select_only(&text)
                        .ok_or(MagnetError::BadSelectOnly { offset: at })?;
                }
                _ => {}
            }
        }
        if m.info_hash.is_none() && m.info_hash_v2.is_none() {
            return Err(MagnetError::MissingInfoHash);
        }
        Ok(m)
    }

    fn parse_xt(&mut self, raw: &str, at: usize) -> Result<(), MagnetError> {
        let value = decode(raw, at, false)?;
        let lower = value.to_ascii_lowercase();
        if let Some(hash) = lower.strip_prefix("urn:btih:") {
            let parsed = match hash.len() {
                40 => InfoHash::from_hex(hash.as_bytes()),
                32 => base32_20(hash.as_bytes()).map(InfoHash),
                _ => None,
            }
            .ok_or(MagnetError::BadInfoHash { offset: at })?;
            if self.info_hash.is_some_and(|h| h != parsed) {
                return Err(MagnetError::ConflictingInfoHashes { offset: at });
            }
            self.info_hash = Some(parsed);
        } else if let Some(multihash) = lower.strip_prefix("urn:btmh:") {
            // 0x12 = SHA-256, 0x20 = 32 bytes, then the digest.
            let digest = multihash
                .strip_prefix("1220")
                .filter(|d| d.len() == 64)
                .and_then(|d| {
                    let mut out = [0u8; 32];
                    for (i, pair) in d.as_bytes().chunks_exact(2).enumerate() {
                        out[i] = (super::hex_digit(pair[0])? << 4) | super::hex_digit(pair[1])?;
                    }
                    Some(out)
                })
                .ok_or(MagnetError::BadInfoHash { offset: at })?;
            if self.info_hash_v2.is_some_and(|h| h != digest) {
                return Err(MagnetError::ConflictingInfoHashes { offset: at });
            }
            self.info_hash_v2 = Some(digest);
        }
        // Other URN kinds (ed2k, …) belong to other networks: ignored.
        Ok(())
    }
}

/// Percent-decodes a parameter value; `plus_is_space` for display names,
/// where form-style `+` is common.
fn decode(raw: &str, offset: usize, plus_is_space: bool) -> Result<String, MagnetError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(super::hex_digit);
                let lo = bytes.get(i + 2).copied().and_then(super::hex_digit);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h << 4) | l),
                    _ => return Err(MagnetError::BadEncoding { offset: offset + i }),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| MagnetError::BadEncoding { offset })
}

/// RFC 4648 base32 (either case) of exactly 20 bytes.
fn base32_20(s: &[u8]) -> Option<[u8; 20]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut n = 0;
    for &c in s {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    Some(out)
}

fn parse_peer(text: &str) -> Option<PeerAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(PeerAddr::Ip(addr));
    }
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    if host.parse::<IpAddr>().is_ok() {
        // An IPv6 literal without brackets is ambiguous.
        return None;
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
    valid.then(|| PeerAddr::Host(host.to_owned(), port))
}

fn parse_select_only(text: &str) -> Option<Vec<RangeInclusive<u32>>> {
    const MAX_RANGES: usize = 10_000;
    let mut out = Vec::new();
    for item in text.split(',') {
        if out.len() >= MAX_RANGES {
            return None;
        }
        let range = match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                (a <= b).then_some(a..=b)?
            }
            None => {
                let a = number(item)?;
                a..=a
            }
        };
        out.push(range);
    }
    Some(out)
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn push_encoded(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut sep = "";
        if let Some(h) = &self.info_hash {
            write!(f, "xt=urn:btih:{h}")?;
            sep = "&";
        }
        if let Some(h) = &self.info_hash_v2 {
            write!(f, "{sep}xt=urn:btmh:1220")?;
            for b in h {
                write!(f, "{b:02x}")?;
            }
            sep = "&";
        }
        if let Some(dn) = &self.display_name {
            write!(f, "{sep}dn=")?;
            push_encoded(f, dn)?;
        }
        for (key, values) in [("tr", &self.trackers), ("ws", &self.web_seeds)] {
            for v in values {
                write!(f, "&{key}=")?;
                push_encoded(f, v)?;
            }
        }
        for p in &self.peers {
            f.write_str("&x.pe=")?;
            push_encoded(f, &p.to_string())?;
        }
        if !self.select_only.is_empty() {
            f.write_str("&so=")?;
            for (i, r) in self.select_only.iter().enumerate() {
                if i > 0 {
                    f.write_str("%2C")?;
                }
                if r.start() == r.end() {
                    write!(f, "{}", r.start())?;
                } else {
                    write!(f, "{}-{}", r.start(), r.end())?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn hex_and_base32_name_the_same_torrent() {
        let a = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
        let b = Magnet::parse("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK").unwrap();
        assert_eq!(a.info_hash, b.info_hash);
        assert_eq!(a.info_hash.unwrap().to_string(), HEX);
        let upper = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())).unwrap();
        assert_eq!(upper.info_hash, a.info_hash);
    }

    #[test]
    fn all_parameters() {
        let uri = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Some+Name%21&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce\
             &tr=udp://127.0.0.1:6969&ws=http://127.0.0.1/x&x.pe=127.0.0.1:6881&x.pe=[::1]:6882\
             &x.pe=peer.example:7000&so=0,2,4-6&unknown=zzz"
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("Some Name!"));
        assert_eq!(
            m.trackers,
            vec!["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"]
        );
        assert_eq!(m.web_seeds, vec!["http://127.0.0.1/x"]);
        assert_eq!(m.peers.len(), 3);
        assert_eq!(m.peers[1], PeerAddr::Ip("[::1]:6882".parse().unwrap()));
        assert_eq!(m.peers[2], PeerAddr::Host("peer.example".into(), 7000));
        assert_eq!(m.select_only, vec![0..=0, 2..=2, 4..=6]);
        let again = Magnet::parse(&m.to_string()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn v2_multihash_is_recognised() {
        let v2 = "1220".to_string() + &"ab".repeat(32);
        let m = Magnet::parse(&format!("magnet:?xt=urn:btmh:{v2}")).unwrap();
        assert_eq!(m.info_hash, None);
        assert_eq!(m.info_hash_v2, Some([0xab; 32]));
        assert_eq!(Magnet::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn malformed_magnets_have_clear_errors() {
        let e = |s: &str| Magnet::parse(s).unwrap_err();
        assert_eq!(e("http://x"), MagnetError::NotAMagnet);
        assert_eq!(e("magnet:?dn=x"), MagnetError::MissingInfoHash);
        assert_eq!(
            e("magnet:?xt=urn:btih:1234"),
            MagnetError::BadInfoHash { offset: 11 }
        );
        assert_eq!(
            e(&format!("magnet:?xt=urn:btih:{HEX}&dn=%zz")),
            MagnetError::BadEncoding { offset: 64 }
        );
        assert_eq!(
            e(&format!("magnet:?xt=urn:btih:{HEX}&dn=%ff")),
            MagnetError::BadEncoding { offset: 64 }
        );
        assert!(matches!(
            e(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=127.0.0.1")),
            MagnetError::BadPeerAddress { .. }
        ));
        assert!(matches!(
            e(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=::1:80")),
            MagnetError::BadPeerAddress { .. }
        ));
        assert!(matches!(
            e(&format!("magnet:?xt=urn:btih:{HEX}&so=3-1")),
            MagnetError::BadSelectOnly { .. }
        ));
        assert!(matches!(
            e(&format!(
                "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}",
                "0".repeat(40)
            )),
            MagnetError::ConflictingInfoHashes { .. }
        ));
        assert_eq!(e(&"magnet:?".repeat(10_000)), MagnetError::TooLong);
    }
}
