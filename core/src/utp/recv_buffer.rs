//! The receiving half: packets in, an ordered byte stream out.
//!
//! Packets arrive in any order; bytes leave in sequence order, exactly once,
//! as from a TCP socket. Out-of-order packets wait in a reorder buffer
//! bounded both in bytes (the receive window we advertise, BEP 29
//! "wnd_size") and in packets ([`MAX_REORDER_DISTANCE`]), so whatever a peer
//! sends, memory stays bounded. What the reorder buffer holds is what the
//! selective ACK reports (BEP 29, "selective ack").

use std::collections::{BTreeMap, VecDeque};

use super::packet::{SelectiveAck, MAX_SACK_BYTES};
use super::seq::SeqNr;

/// Packets past the next expected one that we are willing to hold. A
/// packet further ahead is dropped (the sender retransmits it later).
pub(crate) const MAX_REORDER_DISTANCE: u16 = 1024;

/// What became of an arriving packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It was the next in sequence; the stream grew.
    InOrder,
    /// It is ahead of a gap and waits in the reorder buffer.
    Buffered,
    /// We had it already.
    Duplicate,
    /// No room (window full, too far ahead, past the peer's FIN).
    Dropped,
}

/// Ordered delivery with a bounded reorder buffer.
#[derive(Clone, Debug)]
pub(crate) struct RecvBuffer {
    /// The last sequence number received in order (what we ACK).
    ack_nr: SeqNr,
    /// In-order bytes the application has not read yet.
    ready: VecDeque<u8>,
    /// Packets ahead of a gap, by sequence number.
    out_of_order: BTreeMap<u16, Vec<u8>>,
    out_of_order_bytes: usize,
    /// The peer's FIN: the sequence number it will not go past.
    eof: Option<SeqNr>,
    /// Whether `ack_nr` reached the FIN.
    eof_reached: bool,
    capacity: usize,
}

impl RecvBuffer {
    /// A buffer whose last in-order packet is `ack_nr` and that holds at
    /// most `capacity` bytes.
    pub(crate) fn new(ack_nr: SeqNr, capacity: usize) -> RecvBuffer {
        RecvBuffer {
            ack_nr,
            ready: VecDeque::new(),
            out_of_order: BTreeMap::new(),
            out_of_order_bytes: 0,
            eof: None,
            eof_reached: false,
            capacity,
        }
    }

    /// The last sequence number received in order.
    pub(crate) fn ack_nr(&self) -> SeqNr {
        self.ack_nr
    }

    /// Bytes we can still take: our advertised window.
    pub(crate) fn window(&self) -> usize {
        self.capacity
            .saturating_sub(self.ready.len() + self.out_of_order_bytes)
    }

    /// In-order bytes waiting to be read.
    pub(crate) fn readable(&self) -> usize {
        self.ready.len()
    }

    /// Whether the peer's FIN arrived in order and every byte before it was
    /// read: the stream is over.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof_reached && self.ready.is_empty()
    }

    /// Whether the peer's FIN arrived in order.
    pub(crate) fn fin_received(&self) -> bool {
        self.eof_reached
    }

    /// How far `seq` is past the last in-order packet, if it is ahead at all
    /// and within reach.
    fn distance_ahead(&self, seq: SeqNr) -> Option<u16> {
        let d = seq.distance_from(self.ack_nr);
        (d != 0 && d <= MAX_REORDER_DISTANCE).then_some(d)
    }

    /// Whether `seq` lies at or past the peer's FIN (data there is bogus).
    fn past_eof(&self, seq: SeqNr) -> bool {
        self.eof.is_some_and(|eof| !seq.is_before(eof))
    }

    /// An `ST_DATA` packet.
    pub(crate) fn on_data(&mut self, seq: SeqNr, payload: &[u8]) -> Arrival {
        let Some(distance) = self.distance_ahead(seq) else {
            return Arrival::Duplicate;
        };
        if self.past_eof(seq) {
            return Arrival::Dropped;
        }
        if distance == 1 {
            if payload.len() > self.capacity.saturating_sub(self.ready.len()) {
                return Arrival::Dropped;
            }
            // Checked against what is read-ready only: the reorder buffer
            // may fill the window, and the packet that fills the gap must
            // still get in or the stream would stall for good.
            self.ready.extend(payload);
            self.ack_nr = seq;
            self.advance();
            return Arrival::InOrder;
        }
        if self.out_of_order.contains_key(&seq.0) {
            return Arrival::Duplicate;
        }
        if payload.len() > self.window() {
            return Arrival::Dropped;
        }
        self.out_of_order_bytes += payload.len();
        self.out_of_order.insert(seq.0, payload.to_vec());
        Arrival::Buffered
    }

    /// An `ST_FIN` packet: BEP 29, "the sequence number of the last packet
    /// in the stream"; packets before it may still be missing.
    pub(crate) fn on_fin(&mut self, seq: SeqNr) -> Arrival {
        if self.distance_ahead(seq).is_none() {
            return Arrival::Duplicate;
        }
        match self.eof {
            Some(eof) if eof == seq => return Arrival::Duplicate,
            Some(_) => return Arrival::Dropped,
            None => {}
        }
        self.eof = Some(seq);
        // Anything buffered at or past the FIN was never part of the stream.
        let past: Vec<u16> = self
            .out_of_order
            .keys()
            .copied()
            .filter(|&s| !SeqNr(s).is_before(seq))
            .collect();
        for s in past {
            if let Some(p) = self.out_of_order.remove(&s) {
                self.out_of_order_bytes -= p.len();
            }
        }
        let before = self.ack_nr;
        self.advance();
        if self.ack_nr == before {
            Arrival::Buffered
        } else {
            Arrival::InOrder
        }
    }

    /// Moves buffered packets that are now in order into the stream.
    fn advance(&mut self) {
        loop {
            let next = self.ack_nr.next();
            if self.eof == Some(next) {
                self.ack_nr = next;
                self.eof_reached = true;
                return;
            }
            let Some(payload) = self.out_of_order.remove(&next.0) else {
                return;
            };
            self.out_of_order_bytes -= payload.len();
            self.ready.extend(payload);
            self.ack_nr = next;
        }
    }

    /// Copies in-order bytes into `buf`; returns how many.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.ready.len());
        for (dst, src) in buf.iter_mut().zip(self.ready.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// The selective ACK describing the reorder buffer, if it holds
    /// anything. Bit `i` stands for `ack_nr + 2 + i`.
    pub(crate) fn selective_ack(&self) -> Option<SelectiveAck> {
        let highest = self
            .out_of_order
            .keys()
            .map(|&s| SeqNr(s).distance_from(self.ack_nr))
            .chain(
                self.eof
                    .filter(|_| !self.eof_reached)
                    .map(|e| e.distance_from(self.ack_nr)),
            )
            .max()?;
        let bits = usize::from(highest.saturating_sub(1)).min(MAX_SACK_BYTES * 8);
        let mut sack = SelectiveAck::new(bits.div_ceil(8));
        for &s in self.out_of_order.keys() {
            let d = usize::from(SeqNr(s).distance_from(self.ack_nr));
            sack.set(d - 2);
        }
        if let Some(eof) = self.eof.filter(|_| !self.eof_reached) {
            sack.set(usize::from(eof.distance_from(self.ack_nr)) - 2);
        }
        Some(sack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(r: &mut RecvBuffer) -> Vec<u8> {
        let mut buf = vec![0; 4096];
        let n = r.read(&mut buf);
        buf.truncate(n);
        buf
    }

    #[test]
    fn reorders_and_acks_selectively() {
        let mut r = RecvBuffer::new(SeqNr(0xfffe), 1000);
        assert_eq!(r.on_data(SeqNr(1), b"cc"), Arrival::Buffered);
        assert_eq!(r.on_data(SeqNr(1), b"cc"), Arrival::Duplicate);
        let sack = r.selective_ack().unwrap();
        // ack_nr 0xfffe: bit 0 is 0x0000, bit 1 is 0x0001.
        assert!(sack.is_set(1) && !sack.is_set(0));
        assert_eq!(r.on_data(SeqNr(0xffff), b"aa"), Arrival::InOrder);
        assert_eq!(r.ack_nr(), SeqNr(0xffff));
        assert_eq!(r.on_data(SeqNr(0), b"bb"), Arrival::InOrder);
        assert_eq!(r.ack_nr(), SeqNr(1), "the buffered packet follows");
        assert_eq!(read_all(&mut r), b"aabbcc");
        assert_eq!(r.selective_ack(), None);
        assert_eq!(r.on_data(SeqNr(0), b"bb"), Arrival::Duplicate, "old");
    }

    #[test]
    fn memory_is_bounded_by_the_window_and_distance() {
        let mut r = RecvBuffer::new(SeqNr(0), 10);
        assert_eq!(r.on_data(SeqNr(3), &[0; 8]), Arrival::Buffered);
        assert_eq!(r.window(), 2);
        assert_eq!(r.on_data(SeqNr(4), &[0; 8]), Arrival::Dropped);
        assert_eq!(
            r.on_data(SeqNr(MAX_REORDER_DISTANCE + 1), b""),
            Arrival::Duplicate,
            "too far ahead looks like an old packet and is only acked"
        );
        assert_eq!(r.on_data(SeqNr(1), &[0; 11]), Arrival::Dropped);
    }

    #[test]
    fn fin_ends_the_stream_after_the_gap_fills() {
        let mut r = RecvBuffer::new(SeqNr(10), 100);
        assert_eq!(r.on_data(SeqNr(13), b"late"), Arrival::Buffered);
        assert_eq!(r.on_fin(SeqNr(13)), Arrival::Buffered);
        assert_eq!(r.out_of_order_bytes, 0, "data at the FIN is dropped");
        assert_eq!(r.on_fin(SeqNr(14)), Arrival::Dropped, "a second, other FIN");
        assert_eq!(r.on_data(SeqNr(14), b"x"), Arrival::Dropped, "past FIN");
        assert!(r.selective_ack().unwrap().is_set(1));
        r.on_data(SeqNr(12), b"b");
        assert!(!r.eof_reached);
        assert_eq!(r.on_data(SeqNr(11), b"a"), Arrival::InOrder);
        assert!(r.eof_reached);
        assert_eq!(r.ack_nr(), SeqNr(13));
        assert!(!r.at_eof(), "bytes still unread");
        assert_eq!(read_all(&mut r), b"ab");
        assert!(r.at_eof());
    }
}
