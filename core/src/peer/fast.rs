//! BEP 6 allowed-fast sets: pieces a peer may request even while choked,
//! so a new peer can get its first pieces (and something to trade) quickly.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

use crate::metainfo::{InfoHash, PieceIndex};

/// The canonical allowed-fast set of `k` pieces for a peer at `ip`
/// (BEP 6, "Allowed Fast"): derived from the peer's /24 and the info-hash,
/// so every client computes the same set and a peer cannot widen it by
/// reconnecting from a neighbouring address.
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    piece_count: u32,
    k: usize,
) -> Vec<PieceIndex> {
    let k = k.min(piece_count as usize);
    let mut out = Vec::with_capacity(k);
    if k == 0 {
        return out;
    }
    let masked = u32::from(ip) & 0xffff_ff00;
    let mut x: Vec<u8> = masked.to_be_bytes().to_vec();
    x.extend_from_slice(&info_hash.0);
    while out.len() < k {
        let digest: [u8; 20] = Sha1::digest(&x).into();
        for chunk in digest.chunks_exact(4) {
            if out.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = PieceIndex(y % piece_count);
            if !out.contains(&index) {
                out.push(index);
            }
        }
        x = digest.to_vec();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep6_test_vectors() {
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        let hash = InfoHash([0xaa; 20]);
        let seven: Vec<u32> = allowed_fast_set(ip, &hash, 1313, 7)
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(seven, vec![1059, 431, 808, 1217, 287, 376, 1188]);
        let nine: Vec<u32> = allowed_fast_set(ip, &hash, 1313, 9)
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(nine, vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
    }

    #[test]
    fn small_torrents_and_neighbours() {
        let hash = InfoHash([1; 20]);
        assert_eq!(allowed_fast_set(Ipv4Addr::LOCALHOST, &hash, 3, 10).len(), 3);
        assert!(allowed_fast_set(Ipv4Addr::LOCALHOST, &hash, 0, 10).is_empty());
        assert_eq!(
            allowed_fast_set(Ipv4Addr::new(10, 0, 0, 1), &hash, 100, 5),
            allowed_fast_set(Ipv4Addr::new(10, 0, 0, 99), &hash, 100, 5),
            "same /24, same set"
        );
    }
}
