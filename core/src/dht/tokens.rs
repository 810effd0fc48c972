//! announce_peer tokens (BEP 5): "the token is the SHA1 hash of the IP
//! address concatenated onto a secret that changes every five minutes and
//! tokens up to ten minutes old are accepted". Binding the token to the IP
//! means a node can only announce itself, not someone else.

use std::net::IpAddr;
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::rng::Rng;
use crate::time::Instant;

/// How often the secret changes.
pub const ROTATION: Duration = Duration::from_secs(5 * 60);
/// Bytes of a token.
pub const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

fn token_for(secret: &[u8; 16], ip: &IpAddr) -> [u8; TOKEN_LEN] {
    let mut h = Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    let d = h.finalize();
    let mut t = [0u8; TOKEN_LEN];
    t.copy_from_slice(&d[..TOKEN_LEN]);
    t
}

impl Tokens {
    /// Fresh secrets from `rng`.
    pub fn new(now: Instant, rng: &mut Rng) -> Tokens {
        let mut current = [0u8; 16];
        let mut previous = [0u8; 16];
        rng.fill(&mut current);
        rng.fill(&mut previous);
        Tokens {
            current,
            previous,
            rotated: now,
        }
    }

    /// Rotates the secret if five minutes passed.
    pub fn maintain(&mut self, now: Instant, rng: &mut Rng) {
        if now.saturating_duration_since(self.rotated) >= ROTATION {
            self.previous = self.current;
            rng.fill(&mut self.current);
            self.rotated = now;
        }
    }

    /// When the next rotation is due.
    pub fn next_rotation(&self) -> Instant {
        self.rotated + ROTATION
    }

    /// The token to give `ip`.
    pub fn issue(&self, ip: &IpAddr) -> [u8; TOKEN_LEN] {
        token_for(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` within the last two secrets.
    pub fn check(&self, ip: &IpAddr, token: &[u8]) -> bool {
        token == token_for(&self.current, ip) || token == token_for(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    #[test]
    fn tokens_are_bound_to_ip_and_live_two_rotations() {
        let mut rng = Rng::new(Seed::from_u64(1));
        let t0 = Instant::ZERO;
        let mut tokens = Tokens::new(t0, &mut rng);
        let a: IpAddr = "20.0.0.1".parse().unwrap();
        let b: IpAddr = "20.0.0.2".parse().unwrap();
        let tok = tokens.issue(&a);
        assert!(tokens.check(&a, &tok));
        assert!(!tokens.check(&b, &tok), "another IP cannot use it");
        tokens.maintain(t0 + ROTATION, &mut rng);
        assert!(tokens.check(&a, &tok), "still valid after one rotation");
        tokens.maintain(t0 + ROTATION * 2, &mut rng);
        assert!(!tokens.check(&a, &tok), "expired after two");
    }
}
