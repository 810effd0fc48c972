//! The choker: which interested peers we upload to.
//!
//! BEP 3's tit-for-tat, as mainstream clients do it:
//!
//! - **Leeching**: every 10 s, unchoke the peers that upload fastest to us
//!   (regular slots), skipping snubbed peers (anti-snubbing: a peer that
//!   stopped sending us blocks earns no slot by its past rate).
//! - **Optimistic unchoke**: one more slot, rotated every 30 s to a random
//!   interested peer, so newcomers get a chance to prove themselves.
//! - **Seeding**: nobody uploads to us, so rank by how fast we upload to
//!   them (fast peers spread the torrent) or rotate round robin.
//!
//! The choker only ranks; the torrent applies the result to its sessions.

use crate::handles::ConnId;
use crate::rng::Rng;

/// How a seeding torrent picks whom to unchoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SeedChoking {
    /// Fastest upload rate first.
    #[default]
    UploadRate,
    /// Rotate through interested peers.
    RoundRobin,
}

/// What the choker knows about one peer at a re-evaluation.
#[derive(Clone, Copy, Debug)]
pub struct ChokeCandidate {
    /// The connection.
    pub conn: ConnId,
    /// The peer wants data from us.
    pub interested: bool,
    /// Bytes per second the peer sends us.
    pub download_rate: u64,
    /// Bytes per second we send the peer.
    pub upload_rate: u64,
    /// The peer stopped answering our requests.
    pub snubbed: bool,
}

/// Rotating state across re-evaluations.
#[derive(Clone, Debug, Default)]
pub struct Choker {
    optimistic: Option<ConnId>,
    /// Round-robin position for seeding.
    cursor: u64,
}

impl Choker {
    /// The peers to unchoke: up to `slots` regular ones plus one optimistic.
    /// `rotate_optimistic` is true on every third 10-second round (30 s).
    pub fn unchoke_set(
        &mut self,
        candidates: &[ChokeCandidate],
        slots: usize,
        seeding: Option<SeedChoking>,
        rotate_optimistic: bool,
        rng: &mut Rng,
    ) -> Vec<ConnId> {
        let mut interested: Vec<&ChokeCandidate> =
            candidates.iter().filter(|c| c.interested).collect();
        // Stable tie-break by connection id keeps the result deterministic.
        interested.sort_by_key(|c| c.conn);
        let mut chosen: Vec<ConnId> = match seeding {
            Some(SeedChoking::UploadRate) => {
                let mut v = interested.clone();
                v.sort_by(|a, b| b.upload_rate.cmp(&a.upload_rate).then(a.conn.cmp(&b.conn)));
                v.iter().take(slots).map(|c| c.conn).collect()
            }
            Some(SeedChoking::RoundRobin) => {
                let n = interested.len();
                if n == 0 {
                    Vec::new()
                } else {
                    let start = (self.cursor % n as u64) as usize;
                    self.cursor = self.cursor.wrapping_add(slots as u64);
                    (0..slots.min(n))
                        .map(|i| interested[(start + i) % n].conn)
                        .collect()
                }
            }
            None => {
                let mut v: Vec<&ChokeCandidate> =
                    interested.iter().copied().filter(|c| !c.snubbed).collect();
                v.sort_by(|a, b| {
                    b.download_rate
                        .cmp(&a.download_rate)
                        .then(a.conn.cmp(&b.conn))
                });
                v.iter().take(slots).map(|c| c.conn).collect()
            }
        };
        let still_valid = self
            .optimistic
            .is_some_and(|o| interested.iter().any(|c| c.conn == o) && !chosen.contains(&o));
        if rotate_optimistic || !still_valid {
            let rest: Vec<ConnId> = interested
                .iter()
                .map(|c| c.conn)
                .filter(|c| !chosen.contains(c) && Some(*c) != self.optimistic)
                .collect();
            self.optimistic = if rest.is_empty() {
                self.optimistic.filter(|_| still_valid)
            } else {
                Some(rest[rng.below(rest.len() as u64) as usize])
            };
        }
        if let Some(o) = self.optimistic {
            if !chosen.contains(&o) {
                chosen.push(o);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn cand(id: u64, interested: bool, down: u64, up: u64, snubbed: bool) -> ChokeCandidate {
        ChokeCandidate {
            conn: ConnId::new(id),
            interested,
            download_rate: down,
            upload_rate: up,
            snubbed,
        }
    }

    #[test]
    fn leeching_rewards_the_fastest_uploaders_and_skips_snubbers() {
        let mut c = Choker::default();
        let mut rng = Rng::new(Seed::from_u64(1));
        let peers = [
            cand(1, true, 100, 0, false),
            cand(2, true, 900, 0, false),
            cand(3, true, 5000, 0, true),
            cand(4, false, 9999, 0, false),
            cand(5, true, 500, 0, false),
            cand(6, true, 0, 0, false),
        ];
        let set = c.unchoke_set(&peers, 2, None, true, &mut rng);
        assert_eq!(&set[..2], &[ConnId::new(2), ConnId::new(5)]);
        assert_eq!(set.len(), 3, "plus one optimistic");
        assert!(!set.contains(&ConnId::new(4)), "not interested");
        // The optimistic slot stays put until rotated.
        let again = c.unchoke_set(&peers, 2, None, false, &mut rng);
        assert_eq!(again, set);
    }

    #[test]
    fn seeding_by_upload_rate_and_round_robin() {
        let mut c = Choker::default();
        let mut rng = Rng::new(Seed::from_u64(2));
        let peers: Vec<_> = (1..=5).map(|i| cand(i, true, 0, i * 10, false)).collect();
        let set = c.unchoke_set(&peers, 2, Some(SeedChoking::UploadRate), true, &mut rng);
        assert_eq!(&set[..2], &[ConnId::new(5), ConnId::new(4)]);
        let mut c = Choker::default();
        let a = c.unchoke_set(&peers, 2, Some(SeedChoking::RoundRobin), false, &mut rng);
        let b = c.unchoke_set(&peers, 2, Some(SeedChoking::RoundRobin), false, &mut rng);
        assert_ne!(a[..2], b[..2]);
    }
}
