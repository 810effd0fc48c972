//! BEP 42, the DHT security extension: a node id is tied to the node's IP
//! address, so one machine cannot pick ids next to a target and surround
//! it (a Sybil attack).
//!
//! The first 21 bits of a valid id are the top 21 bits of
//! `crc32c((ip & mask) | r << 29)` (IPv4 mask `03 0f 3f ff`, IPv6 mask
//! `01 03 07 0f 1f 3f 7f ff` over the first 8 bytes), where `r` is the last
//! byte of the id, masked to 3 bits. Addresses in local networks are
//! exempt: any id is valid for them.

use std::net::IpAddr;

use crate::krpc::NodeId;

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

/// BEP 42's exempt networks: 10/8, 172.16/12, 192.168/16, 169.254/16,
/// 127/8 (and, for IPv6, loopback, unique-local and link-local).
pub fn is_exempt(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The crc of `ip` with `r` (its low 3 bits), as BEP 42 computes it.
fn crc_of(ip: &IpAddr, r: u8) -> u32 {
    let mut buf = [0u8; 8];
    let n = match ip {
        IpAddr::V4(v4) => {
            for (i, (b, m)) in v4.octets().iter().zip(V4_MASK).enumerate() {
                buf[i] = b & m;
            }
            4
        }
        IpAddr::V6(v6) => {
            for (i, (b, m)) in v6.octets().iter().zip(V6_MASK).enumerate() {
                buf[i] = b & m;
            }
            8
        }
    };
    buf[0] |= (r & 7) << 5;
    CASTAGNOLI.checksum(&buf[..n])
}

/// A valid id for `ip`: `rand` supplies byte 19 (whose low 3 bits are BEP
/// 42's `r`) and `fill` the free bits (the low 3 bits of byte 2 and bytes
/// 3..19).
pub fn secure_id(ip: &IpAddr, rand: u8, fill: [u8; 17]) -> NodeId {
    let crc = crc_of(ip, rand).to_be_bytes();
    let mut id = [0u8; 20];
    id[0] = crc[0];
    id[1] = crc[1];
    id[2] = (crc[2] & 0xf8) | (fill[0] & 0x07);
    id[3..19].copy_from_slice(&fill[1..]);
    id[19] = rand;
    NodeId(id)
}

/// Whether `id` is valid for `ip` (always, for exempt addresses).
pub fn id_matches(id: &NodeId, ip: &IpAddr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = crc_of(ip, id.0[19]).to_be_bytes();
    id.0[0] == crc[0] && id.0[1] == crc[1] && (id.0[2] & 0xf8) == (crc[2] & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(id: &NodeId) -> String {
        id.to_string()
    }

    /// BEP 42's table of example ids: the first 21 bits and the last byte
    /// are fixed by the IP and `rand`; the rest is free, so the example
    /// ids' own free bits are passed in.
    #[test]
    fn bep42_examples() {
        let examples = [
            (
                "124.31.75.21",
                1u8,
                "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
            ),
            (
                "21.75.31.124",
                86,
                "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256",
            ),
            (
                "65.23.51.170",
                22,
                "a5d43220bc8f112a3d426c84764f8c2a1150e616",
            ),
            (
                "84.124.73.14",
                65,
                "1b0321dd1bb1fe518101ceef99462b947a01ff41",
            ),
            (
                "43.213.53.83",
                90,
                "e56f6cbf5b7c4be0237986d5243b87aa6d51305a",
            ),
        ];
        for (ip, rand, want) in examples {
            let ip: IpAddr = ip.parse().unwrap();
            let want_bytes: Vec<u8> = (0..20)
                .map(|i| u8::from_str_radix(&want[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let mut fill = [0u8; 17];
            fill[0] = want_bytes[2] & 7;
            fill[1..].copy_from_slice(&want_bytes[3..19]);
            let id = secure_id(&ip, rand, fill);
            assert_eq!(hex(&id), want, "{ip}");
            assert!(id_matches(&id, &ip));
            let mut other = id;
            other.0[1] ^= 0x40;
            assert!(!id_matches(&other, &ip), "{ip}");
            let mut other_r = id;
            other_r.0[19] ^= 1;
            assert!(!id_matches(&other_r, &ip), "{ip}: r is part of the crc");
        }
    }

    #[test]
    fn local_addresses_are_exempt_and_ipv6_works() {
        let any = NodeId([0xaa; 20]);
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.20.0.1",
            "169.254.1.1",
            "127.0.0.1",
            "::1",
            "fd00::1",
        ] {
            assert!(id_matches(&any, &ip.parse().unwrap()), "{ip}");
        }
        assert!(!id_matches(&any, &"8.8.8.8".parse().unwrap()));
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let id = secure_id(&v6, 0x33, [9; 17]);
        assert!(id_matches(&id, &v6));
        assert!(!id_matches(&id, &"2001:db9:1:2:3:4:5:6".parse().unwrap()));
    }
}
