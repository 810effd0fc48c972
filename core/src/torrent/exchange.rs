//! What a torrent trades with its peers over the extension protocol
//! (BEP 10) besides pieces: its metadata (BEP 9 `ut_metadata`, served to
//! peers that came from a magnet link) and the addresses of its other peers
//! (BEP 11 `ut_pex`).
//!
//! The torrent calls in here; this module keeps the per-peer PEX state and
//! the rules: what to send, how often, and how much to believe.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::holepunch::OUR_UT_HOLEPUNCH;
use crate::time::Instant;
use crate::wire::{
    metadata_piece_count, MetadataMessage, PexFlags, PexMessage, METADATA_PIECE, UT_HOLEPUNCH,
    UT_METADATA, UT_PEX,
};

/// The id we receive `ut_metadata` under (our handshake's `m`).
pub const OUR_UT_METADATA: u8 = 1;
/// The id we receive `ut_pex` under.
pub const OUR_UT_PEX: u8 = 2;

/// BEP 11: "a peer should not send PEX messages more often than once a
/// minute".
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// BEP 11: at most 50 added and 50 dropped addresses per message.
pub const PEX_MAX_PER_MESSAGE: usize = 50;
/// A peer's PEX messages closer together than this are ignored (a little
/// under a minute, for clock skew and queueing).
const PEX_MIN_GAP: Duration = Duration::from_secs(45);
/// Metadata pieces served to one peer before we reject the rest: a peer
/// needs each piece once, a few retries are fair, more is abuse.
const METADATA_REQUESTS_PER_PIECE: u32 = 4;

/// Our handshake's `m`: `ut_metadata` when we have the metadata to serve,
/// `ut_pex` and (when on) `ut_holepunch` unless the torrent is private
/// (BEP 27: peers from the tracker only).
pub fn our_extensions(private: bool, has_metadata: bool, holepunch: bool) -> Vec<(String, u8)> {
    let mut m = Vec::new();
    if has_metadata {
        m.push((UT_METADATA.to_owned(), OUR_UT_METADATA));
    }
    if !private {
        m.push((UT_PEX.to_owned(), OUR_UT_PEX));
        if holepunch {
            m.push((UT_HOLEPUNCH.to_owned(), OUR_UT_HOLEPUNCH));
        }
    }
    m
}

/// One peer's extension state, kept by the torrent beside its session.
#[derive(Debug, Default)]
pub struct PeerExchange {
    /// The addresses this peer has heard from us and not seen dropped.
    told: BTreeSet<SocketAddr>,
    /// When we may next send it a PEX message.
    next_pex: Option<Instant>,
    /// When it last sent one that we read.
    last_pex_in: Option<Instant>,
    /// Metadata pieces served to it.
    metadata_served: u32,
    /// BEP 52 hash requests answered for it.
    pub(super) hashes_served: u32,
    /// BEP 52 leaf requests it made (each costs a piece read).
    pub(super) leaves_served: u32,
}

impl PeerExchange {
    /// The next PEX message for this peer, given the torrent's connected
    /// peers now (listen address and flags; the peer itself excluded by the
    /// caller), or `None` when it is not time yet or nothing changed.
    pub fn pex_due(
        &mut self,
        now: Instant,
        connected: &[(SocketAddr, PexFlags)],
    ) -> Option<PexMessage> {
        match self.next_pex {
            None => {
                // The first message goes out one interval after we met:
                // by then the peer list has settled.
                self.next_pex = Some(now + PEX_INTERVAL);
                return None;
            }
            Some(t) if t > now => return None,
            Some(_) => {}
        }
        self.next_pex = Some(now + PEX_INTERVAL);
        let now_set: BTreeSet<SocketAddr> = connected.iter().map(|(a, _)| *a).collect();
        let dropped: Vec<SocketAddr> = self
            .told
            .difference(&now_set)
            .take(PEX_MAX_PER_MESSAGE)
            .copied()
            .collect();
        let added: Vec<(SocketAddr, PexFlags)> = connected
            .iter()
            .filter(|(a, _)| !self.told.contains(a))
            .take(PEX_MAX_PER_MESSAGE)
            .copied()
            .collect();
        for a in &dropped {
            self.told.remove(a);
        }
        for (a, _) in &added {
            self.told.insert(*a);
        }
        (!added.is_empty() || !dropped.is_empty()).then_some(PexMessage { added, dropped })
    }

    /// Reads a PEX payload from this peer: the addresses worth adding to
    /// our peer list (at most [`PEX_MAX_PER_MESSAGE`]), or nothing when it
    /// is malformed or came too soon after the last one.
    pub fn pex_received(&mut self, now: Instant, payload: &[u8]) -> Vec<(SocketAddr, PexFlags)> {
        if self
            .last_pex_in
            .is_some_and(|t| now.saturating_duration_since(t) < PEX_MIN_GAP)
        {
            return Vec::new();
        }
        let Ok(m) = PexMessage::decode(payload) else {
            return Vec::new();
        };
        self.last_pex_in = Some(now);
        m.added
            .into_iter()
            .filter(|(a, _)| !a.ip().is_unspecified() && !a.ip().is_multicast())
            .take(PEX_MAX_PER_MESSAGE)
            .collect()
    }

    /// Answers a `ut_metadata` payload from this peer: the reply to send
    /// (under the peer's id), if any. `metadata` is the info dictionary
    /// when we have it.
    pub fn metadata_request(
        &mut self,
        payload: &Bytes,
        metadata: Option<&Bytes>,
    ) -> Option<Vec<u8>> {
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(payload) else {
            // Data and rejects are for a torrent still fetching its
            // metadata; unknown types are ignored (BEP 9).
            return None;
        };
        let reply = match metadata {
            Some(m)
                if piece < metadata_piece_count(m.len() as u64)
                    && self.metadata_served
                        < METADATA_REQUESTS_PER_PIECE * metadata_piece_count(m.len() as u64) =>
            {
                self.metadata_served += 1;
                let start = piece as usize * METADATA_PIECE;
                let end = (start + METADATA_PIECE).min(m.len());
                MetadataMessage::Data {
                    piece,
                    total_size: m.len() as u64,
                    data: m.slice(start..end),
                }
            }
            _ => MetadataMessage::Reject { piece },
        };
        let mut out = Vec::new();
        reply.encode(&mut out);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 6881))
    }

    #[test]
    fn pex_sends_differences_once_a_minute() {
        let mut x = PeerExchange::default();
        let t0 = Instant::ZERO;
        let peers: Vec<_> = (1..=3).map(|i| (addr(i), PexFlags(0))).collect();
        assert_eq!(x.pex_due(t0, &peers), None, "first one waits a minute");
        assert_eq!(x.pex_due(t0 + Duration::from_secs(30), &peers), None);
        let m = x.pex_due(t0 + PEX_INTERVAL, &peers).unwrap();
        assert_eq!(m.added.len(), 3);
        // Nothing changed: nothing to say.
        assert_eq!(x.pex_due(t0 + PEX_INTERVAL * 2, &peers), None);
        // One left, one came.
        let later = vec![
            (addr(1), PexFlags(0)),
            (addr(2), PexFlags(0)),
            (addr(9), PexFlags(2)),
        ];
        let m = x.pex_due(t0 + PEX_INTERVAL * 3, &later).unwrap();
        assert_eq!(m.added, vec![(addr(9), PexFlags(2))]);
        assert_eq!(m.dropped, vec![addr(3)]);
    }

    #[test]
    fn pex_is_capped_both_ways() {
        let mut x = PeerExchange::default();
        let many: Vec<_> = (0..200u8).map(|i| (addr(i), PexFlags(0))).collect();
        x.pex_due(Instant::ZERO, &many);
        let m = x.pex_due(Instant::ZERO + PEX_INTERVAL, &many).unwrap();
        assert_eq!(m.added.len(), PEX_MAX_PER_MESSAGE);
        // What we receive is capped and rate limited.
        let mut payload = Vec::new();
        PexMessage {
            added: many.clone(),
            dropped: Vec::new(),
        }
        .encode(&mut payload);
        let mut y = PeerExchange::default();
        assert_eq!(
            y.pex_received(Instant::ZERO, &payload).len(),
            PEX_MAX_PER_MESSAGE
        );
        assert!(y
            .pex_received(Instant::ZERO + Duration::from_secs(10), &payload)
            .is_empty());
        assert_eq!(
            y.pex_received(Instant::ZERO + PEX_INTERVAL, &payload).len(),
            PEX_MAX_PER_MESSAGE
        );
        assert!(y
            .pex_received(Instant::ZERO + PEX_INTERVAL * 3, b"garbage")
            .is_empty());
    }

    #[test]
    fn metadata_is_served_in_pieces_and_refused_past_the_end() {
        let meta = Bytes::from(vec![7u8; METADATA_PIECE + 100]);
        let mut x = PeerExchange::default();
        let ask = |piece: u32| {
            let mut p = Vec::new();
            MetadataMessage::Request { piece }.encode(&mut p);
            Bytes::from(p)
        };
        let decode = |v: Vec<u8>| MetadataMessage::decode(&Bytes::from(v)).unwrap();
        match decode(x.metadata_request(&ask(1), Some(&meta)).unwrap()) {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                assert_eq!((piece, total_size, data.len()), (1, meta.len() as u64, 100));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode(x.metadata_request(&ask(2), Some(&meta)).unwrap()),
            MetadataMessage::Reject { piece: 2 }
        );
        assert_eq!(
            decode(x.metadata_request(&ask(0), None).unwrap()),
            MetadataMessage::Reject { piece: 0 }
        );
        // A peer asking over and over is refused after a few rounds.
        let served = (0..20)
            .filter(|_| {
                matches!(
                    decode(x.metadata_request(&ask(0), Some(&meta)).unwrap()),
                    MetadataMessage::Data { .. }
                )
            })
            .count();
        assert_eq!(served, 7, "8 in all, one already served");
    }
}
