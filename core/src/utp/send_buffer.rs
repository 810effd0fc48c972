//! The sending half: bytes the application wrote and packets in flight.
//!
//! Written bytes wait in `unsent` until the windows let them go; each sent
//! packet stays in `in_flight` (oldest first, consecutive sequence numbers)
//! until the peer's `ack_nr` passes it, so it can be retransmitted. A
//! packet is "lost" after a timeout, three duplicate ACKs, or when three
//! packets after it were selectively acknowledged (BEP 29: "If a packet has
//! been acked by 3 or more SACK-packets after it, it's considered lost").
//! Both parts together never hold more than the capacity the application
//! chose, so a slow peer cannot make us buffer without bound.
//!
//! Reordering is not loss: as in RACK (RFC 8985), a packet that later
//! packets overtook only counts as lost once a round trip plus a reorder
//! window has passed since it was sent, so a path that reorders by a few
//! milliseconds does not make us retransmit and halve the window for
//! nothing, while a packet lost from a burst (all sent at one instant) is
//! still found without waiting for the retransmission timeout.

use std::collections::VecDeque;
use std::time::Duration;

use super::packet::{PacketType, SelectiveAck};
use super::seq::SeqNr;
use crate::time::Instant;

/// BEP 29: a packet is lost once this many packets after it were
/// selectively acknowledged, or after this many duplicate ACKs.
pub(crate) const LOSS_THRESHOLD: usize = 3;

/// One packet sent and not yet cumulatively acknowledged.
#[derive(Clone, Debug)]
pub(crate) struct SentPacket {
    /// Its sequence number.
    pub(crate) seq: SeqNr,
    /// `Syn`, `Data` or `Fin`: the types that use a sequence number.
    pub(crate) kind: PacketType,
    /// The data it carries.
    pub(crate) payload: Vec<u8>,
    /// When it was last (re)sent; `None` before the first send.
    pub(crate) sent_at: Option<Instant>,
    /// How many times it was sent.
    pub(crate) transmissions: u32,
    /// Whether it must be sent (again) before new data.
    pub(crate) need_resend: bool,
    /// Whether a selective ACK reported it received.
    pub(crate) sacked: bool,
    /// Whether it was already marked lost by duplicate or selective ACKs,
    /// so one loss is retransmitted once, not on every later ACK.
    pub(crate) fast_resent: bool,
}

impl SentPacket {
    /// A packet sent once at `now`, nothing known of its fate yet.
    pub(crate) fn sent(seq: SeqNr, kind: PacketType, payload: Vec<u8>, now: Instant) -> SentPacket {
        SentPacket {
            seq,
            kind,
            payload,
            sent_at: Some(now),
            transmissions: 1,
            need_resend: false,
            sacked: false,
            fast_resent: false,
        }
    }
}

/// What became of a sent packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Acknowledged, cumulatively or selectively.
    Acked,
    /// Marked lost, waiting to be resent.
    Lost,
    /// Nothing known yet.
    InFlight,
}

/// What one ACK acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Acked {
    /// Packets newly known to have arrived.
    pub(crate) packets: u32,
    /// Their payload bytes.
    pub(crate) bytes: u32,
    /// Whether our FIN was among them.
    pub(crate) fin: bool,
    /// Whether our SYN was among them.
    pub(crate) syn: bool,
}

/// Unsent bytes plus the retransmission queue.
#[derive(Clone, Debug)]
pub(crate) struct SendBuffer {
    unsent: VecDeque<u8>,
    in_flight: VecDeque<SentPacket>,
    in_flight_bytes: usize,
    capacity: usize,
}

impl SendBuffer {
    /// An empty buffer holding at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            unsent: VecDeque::new(),
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            capacity,
        }
    }

    /// Queues as much of `data` as fits; returns how much.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        let room = self
            .capacity
            .saturating_sub(self.unsent.len() + self.in_flight_bytes);
        let n = room.min(data.len());
        self.unsent.extend(&data[..n]);
        n
    }

    /// Bytes written but not yet packetised.
    pub(crate) fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Takes up to `max` unsent bytes for a new packet.
    pub(crate) fn take_unsent(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.unsent.len());
        self.unsent.drain(..n).collect()
    }

    /// Records a packet about to be sent for the first time.
    pub(crate) fn push(&mut self, packet: SentPacket) {
        self.in_flight_bytes += packet.payload.len();
        self.in_flight.push_back(packet);
    }

    /// Whether any sent packet awaits its ACK.
    pub(crate) fn has_unacked(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Packets awaiting their cumulative ACK.
    pub(crate) fn unacked_packets(&self) -> usize {
        self.in_flight.len()
    }

    /// Payload bytes counted against the windows: sent, not acknowledged
    /// in any way, and not waiting to be resent.
    pub(crate) fn flight_bytes(&self) -> usize {
        self.in_flight
            .iter()
            .filter(|p| !p.sacked && !p.need_resend && p.sent_at.is_some())
            .map(|p| p.payload.len())
            .sum()
    }

    /// Whether a packet sent at `sent_at`, overtaken by later ones, has
    /// waited `loss_delay` (a round trip plus the reorder window) by `now`.
    fn overdue(sent_at: Option<Instant>, now: Instant, loss_delay: Duration) -> bool {
        sent_at.is_some_and(|sent| sent + loss_delay <= now)
    }

    fn index_of(&self, seq: SeqNr) -> Option<usize> {
        let first = self.in_flight.front()?.seq;
        let i = usize::from(seq.distance_from(first));
        (i < self.in_flight.len()).then_some(i)
    }

    /// The peer received everything up to and including `ack_nr`. Calls
    /// `rtt_sample` with the send time of each newly acknowledged packet
    /// sent only once (Karn's rule). An `ack_nr` for a packet never sent
    /// is ignored.
    pub(crate) fn ack_up_to(
        &mut self,
        ack_nr: SeqNr,
        mut rtt_sample: impl FnMut(Instant),
    ) -> Acked {
        let mut acked = Acked::default();
        let Some(last) = self.index_of(ack_nr) else {
            return acked;
        };
        let delivered: Vec<SentPacket> = self.in_flight.drain(..=last).collect();
        for p in delivered {
            self.in_flight_bytes -= p.payload.len();
            if p.sacked {
                continue;
            }
            if let (1, Some(at)) = (p.transmissions, p.sent_at) {
                rtt_sample(at);
            }
            acked.packets += 1;
            acked.bytes += p.payload.len() as u32;
            acked.fin |= p.kind == PacketType::Fin;
            acked.syn |= p.kind == PacketType::Syn;
        }
        acked
    }

    /// Applies a selective ACK relative to `ack_nr` at `now`; returns what
    /// it newly acknowledged and whether it shows a packet lost (overtaken
    /// by [`LOSS_THRESHOLD`] delivered packets and sent `loss_delay` ago).
    pub(crate) fn selective_ack(
        &mut self,
        ack_nr: SeqNr,
        sack: &SelectiveAck,
        now: Instant,
        loss_delay: Duration,
        mut rtt_sample: impl FnMut(Instant),
    ) -> (Acked, bool) {
        let mut acked = Acked::default();
        for bit in 0..sack.bits() {
            if !sack.is_set(bit) {
                continue;
            }
            let seq = ack_nr.plus(2 + bit as u16);
            let Some(i) = self.index_of(seq) else {
                continue;
            };
            let p = &mut self.in_flight[i];
            if p.sacked || p.sent_at.is_none() {
                continue;
            }
            p.sacked = true;
            p.need_resend = false;
            if let (1, Some(at)) = (p.transmissions, p.sent_at) {
                rtt_sample(at);
            }
            acked.packets += 1;
            acked.bytes += p.payload.len() as u32;
            acked.fin |= p.kind == PacketType::Fin;
        }
        let mut sacked_after = 0;
        let mut lost = false;
        for p in self.in_flight.iter_mut().rev() {
            if p.sacked {
                sacked_after += 1;
            } else if sacked_after >= LOSS_THRESHOLD
                && !p.fast_resent
                && Self::overdue(p.sent_at, now, loss_delay)
            {
                p.fast_resent = true;
                p.need_resend = true;
                lost = true;
            }
        }
        (acked, lost)
    }

    /// Three duplicate ACKs: the oldest unacknowledged packet is lost if
    /// it was sent `loss_delay` before `now`. Returns whether it was newly
    /// marked.
    pub(crate) fn mark_oldest_lost(&mut self, now: Instant, loss_delay: Duration) -> bool {
        let Some(p) = self.in_flight.iter_mut().find(|p| !p.sacked) else {
            return false;
        };
        if p.fast_resent || !Self::overdue(p.sent_at, now, loss_delay) {
            return false;
        }
        p.fast_resent = true;
        p.need_resend = true;
        true
    }

    /// The retransmission timer fired: everything unacknowledged must go
    /// again.
    pub(crate) fn mark_all_lost(&mut self) {
        for p in self.in_flight.iter_mut().filter(|p| !p.sacked) {
            p.need_resend = true;
        }
    }

    /// What became of the sent packet `seq` (one cumulatively
    /// acknowledged is no longer held: `Acked`).
    pub(crate) fn fate(&self, seq: SeqNr) -> Fate {
        match self.index_of(seq).map(|i| &self.in_flight[i]) {
            None => Fate::Acked,
            Some(p) if p.sacked => Fate::Acked,
            Some(p) if p.need_resend => Fate::Lost,
            Some(_) => Fate::InFlight,
        }
    }

    /// Whether a packet other than `seq` waits to be resent.
    pub(crate) fn lost_besides(&self, seq: SeqNr) -> bool {
        self.in_flight.iter().any(|p| p.need_resend && p.seq != seq)
    }

    /// The oldest packet waiting to be (re)sent.
    pub(crate) fn next_to_resend(&mut self) -> Option<&mut SentPacket> {
        self.in_flight.iter_mut().find(|p| p.need_resend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, len: usize) -> SentPacket {
        SentPacket::sent(SeqNr(seq), PacketType::Data, vec![0; len], Instant::ZERO)
    }

    #[test]
    fn writes_stop_at_capacity() {
        let mut s = SendBuffer::new(10);
        assert_eq!(s.write(&[1; 6]), 6);
        assert_eq!(s.write(&[2; 6]), 4);
        let p = s.take_unsent(5);
        s.push(SentPacket {
            payload: p,
            ..packet(1, 0)
        });
        assert_eq!(s.write(&[3; 6]), 0, "in-flight bytes count too");
        assert_eq!(s.unsent(), 5);
    }

    #[test]
    fn cumulative_acks_wrap_and_ignore_unsent_numbers() {
        let mut s = SendBuffer::new(1 << 20);
        for seq in [0xfffe, 0xffff, 0, 1] {
            s.push(packet(seq, 100));
        }
        let mut samples = 0;
        assert_eq!(s.ack_up_to(SeqNr(7), |_| samples += 1).packets, 0);
        assert_eq!(s.ack_up_to(SeqNr(0xfffd), |_| samples += 1).packets, 0);
        let a = s.ack_up_to(SeqNr(0), |_| samples += 1);
        assert_eq!((a.packets, a.bytes, samples), (3, 300, 3));
        assert_eq!(s.unacked_packets(), 1);
        assert_eq!(s.flight_bytes(), 100);
    }

    #[test]
    fn three_sacked_packets_mark_the_gap_lost_once() {
        let mut s = SendBuffer::new(1 << 20);
        for seq in 10..16 {
            s.push(packet(seq, 10));
        }
        // ack_nr 9: bits for 11.. ; report 12, 13, 14 received.
        let mut sack = SelectiveAck::new(4);
        for seq in [12u16, 13, 14] {
            sack.set(usize::from(seq - 11));
        }
        let t0 = Instant::ZERO;
        let (acked, lost) = s.selective_ack(SeqNr(9), &sack, t0, Duration::ZERO, |_| {});
        assert_eq!(acked.packets, 3);
        assert!(lost);
        assert_eq!(s.next_to_resend().unwrap().seq, SeqNr(10));
        assert_eq!(s.flight_bytes(), 10, "only 15 still counts");
        let (again, lost_again) = s.selective_ack(SeqNr(9), &sack, t0, Duration::ZERO, |_| {});
        assert_eq!((again.packets, lost_again), (0, false));
        let a = s.ack_up_to(SeqNr(14), |_| {});
        assert_eq!(a.packets, 2, "10 and 11; the sacked ones counted already");
    }

    #[test]
    fn reordering_within_the_loss_delay_is_not_loss() {
        let mut s = SendBuffer::new(1 << 20);
        let ms = Duration::from_millis;
        for seq in 10..16 {
            s.push(packet(seq, 10));
        }
        let mut sack = SelectiveAck::new(4);
        for seq in [11u16, 12, 13] {
            sack.set(usize::from(seq - 11));
        }
        let t0 = Instant::ZERO;
        let (_, lost) = s.selective_ack(SeqNr(9), &sack, t0 + ms(4), ms(5), |_| {});
        assert!(!lost, "10 was sent 4 ms ago, less than the loss delay");
        let (_, lost) = s.selective_ack(SeqNr(9), &sack, t0 + ms(5), ms(5), |_| {});
        assert!(lost, "a burst's lost packet is found after the loss delay");
        assert_eq!(s.next_to_resend().unwrap().seq, SeqNr(10));
    }

    #[test]
    fn duplicate_acks_and_timeouts_mark_for_resend() {
        let mut s = SendBuffer::new(1 << 20);
        s.push(packet(1, 10));
        s.push(packet(2, 10));
        let (t0, delay) = (Instant::ZERO, Duration::from_millis(5));
        assert!(!s.mark_oldest_lost(t0, delay), "not before the loss delay");
        assert!(s.mark_oldest_lost(t0 + delay, delay));
        assert!(!s.mark_oldest_lost(t0 + delay, delay), "once");
        s.mark_all_lost();
        assert_eq!(s.flight_bytes(), 0);
        assert_eq!(s.next_to_resend().unwrap().seq, SeqNr(1));
    }
}
