//! Compact peer addresses (BEP 23, BEP 7): 4-byte IPv4 or 16-byte IPv6
//! address followed by a 2-byte big-endian port, back to back. Trackers,
//! the DHT and PEX all use them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes per compact IPv4 peer.
pub const V4_LEN: usize = 6;
/// Bytes per compact IPv6 peer.
pub const V6_LEN: usize = 18;

/// Decodes compact IPv4 peers; a trailing partial entry is ignored (some
/// trackers pad), port 0 entries are dropped (nobody listens there).
pub fn decode_v4(bytes: &[u8]) -> impl Iterator<Item = SocketAddr> + '_ {
    bytes.chunks_exact(V4_LEN).filter_map(decode_entry)
}

/// Decodes compact IPv6 peers, as [`decode_v4`].
pub fn decode_v6(bytes: &[u8]) -> impl Iterator<Item = SocketAddr> + '_ {
    bytes.chunks_exact(V6_LEN).filter_map(decode_entry)
}

/// One compact entry of 6 or 18 bytes; `None` for another length or port 0.
pub fn decode_entry(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = match entry.len() {
        V4_LEN => (
            IpAddr::V4(Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3])),
            [entry[4], entry[5]],
        ),
        V6_LEN => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&entry[..16]);
            (IpAddr::V6(Ipv6Addr::from(a)), [entry[16], entry[17]])
        }
        _ => return None,
    };
    let port = u16::from_be_bytes(port);
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// Appends `addr` in compact form (6 or 18 bytes by family).
pub fn encode(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_junk() {
        let a: SocketAddr = "10.1.2.3:6881".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:51413".parse().unwrap();
        let mut v4 = Vec::new();
        encode(&mut v4, &a);
        v4.extend_from_slice(&[1, 2, 3, 4, 0, 0]); // port 0
        v4.extend_from_slice(&[9, 9]); // partial
        assert_eq!(decode_v4(&v4).collect::<Vec<_>>(), vec![a]);
        let mut v6 = Vec::new();
        encode(&mut v6, &b);
        assert_eq!(v6.len(), V6_LEN);
        assert_eq!(decode_v6(&v6).collect::<Vec<_>>(), vec![b]);
    }
}
