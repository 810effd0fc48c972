//! One uTP connection: the state machine of BEP 29 between two byte
//! streams and a stream of datagrams.
//!
//! ## States
//!
//! - `SynSent`: we sent `ST_SYN` and wait for the acceptor's `ST_STATE`.
//! - `SynReceived`: we accepted a SYN and answered; until the initiator's
//!   next packet arrives we send no data, because the initiator learns our
//!   first sequence number from that `ST_STATE` (BEP 29: "the
//!   connection's ack_nr is initialized to the seq_nr of the SYN packet",
//!   and the initiator sets its own `ack_nr` from our reply).
//! - `Connected`: data flows both ways.
//! - `Closed`: finished, reset or timed out; see [`CloseReason`].
//!
//! Closing is TCP's: [`close`](Connection::close) sends `ST_FIN` after the
//! data written before it (BEP 29: "the FIN packet … the last sequence
//! number of the stream"). Once our FIN is acknowledged and the peer's FIN
//! has arrived in order, the connection is `Closed(Finished)` but stays
//! for [`Config::time_wait`] to ACK a retransmitted FIN whose ACK was lost
//! (TCP's TIME-WAIT); a peer that falls silent without its FIN is given
//! [`Config::linger`].
//!
//! ## Methods, by role (quinn-proto's order)
//!
//! - constructors: [`Connection::connect`], [`Connection::accept`];
//! - getters: [`state`](Connection::state), [`stats`](Connection::stats), …;
//! - inputs: [`handle_datagram`](Connection::handle_datagram),
//!   [`handle_timeout`](Connection::handle_timeout);
//! - commands: [`write`](Connection::write), [`read`](Connection::read),
//!   [`close`](Connection::close), [`abort`](Connection::abort);
//! - outputs: [`poll_transmit`](Connection::poll_transmit) until `None`,
//!   then [`poll_event`](Connection::poll_event) until `None`, then
//!   [`poll_timeout`](Connection::poll_timeout) for when to call
//!   `handle_timeout`.
//!
//! After every input or command, drain `poll_transmit` and `poll_event`.

use std::collections::VecDeque;
use std::time::Duration;

use super::ledbat::Ledbat;
use super::mtu::PathMtu;
use super::packet::{Packet, PacketType, HEADER_LEN};
use super::recv_buffer::{Arrival, RecvBuffer};
use super::rtt::RttEstimator;
use super::send_buffer::{Acked, Fate, SendBuffer, SentPacket, LOSS_THRESHOLD};
use super::seq::SeqNr;
use super::timer::{Timer, Timers};
use super::{payload_room, CloseReason, Config, Event, Stats, Transmit};
use crate::time::Instant;

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// We sent a SYN and wait for the answer.
    SynSent,
    /// We answered a SYN and wait for the initiator's next packet.
    SynReceived,
    /// Data flows.
    Connected,
    /// Over.
    Closed(CloseReason),
}

/// A uTP connection, sans I/O.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    /// Our id: packets to us carry it.
    recv_id: u16,
    /// The peer's id: packets we send carry it.
    send_id: u16,
    /// The sequence number our next packet will use.
    seq_nr: SeqNr,
    send: SendBuffer,
    recv: RecvBuffer,
    rtt: RttEstimator,
    cc: Ledbat,
    timers: Timers,
    /// Bytes the peer last said it can take.
    peer_window: usize,
    /// Our clock minus the peer's timestamp on its last packet: the delay
    /// we report back in `timestamp_difference_microseconds`.
    reply_micro: u32,
    /// The `ack_nr` of the last ACK, to count duplicates.
    last_ack_nr: Option<SeqNr>,
    duplicate_acks: usize,
    /// Whether something arrived that the peer should hear an ACK for.
    need_ack: bool,
    /// Whether the zero-window probe may send one packet past the window.
    probe: bool,
    /// The window we last advertised, to tell the peer when it reopens.
    advertised: usize,
    close_requested: bool,
    fin_sent: bool,
    fin_acked: bool,
    reset_pending: bool,
    /// Retransmission timeouts in a row without progress.
    timeouts_in_a_row: u32,
    /// What the path carries (the `mtu` module).
    mtu: PathMtu,
    /// Whether the datagram being built is a path MTU probe.
    sending_probe: bool,
    events: VecDeque<Event>,
    stats: Stats,
}

/// The low 32 bits of `now` in microseconds: BEP 29's timestamp clock.
fn micros(now: Instant) -> u32 {
    (now.as_nanos() / 1_000) as u32
}

impl Connection {
    /// Opens a connection with our id `recv_id` and sends a SYN.
    ///
    /// BEP 29: the initiator sets `conn_id_recv` to a random number and
    /// `conn_id_send` to one more; the SYN carries `conn_id_recv` and
    /// `seq_nr` 1.
    pub fn connect(now: Instant, config: Config, recv_id: u16) -> Connection {
        let mut c = Connection::new(now, config, recv_id, recv_id.wrapping_add(1), SeqNr(1));
        c.state = State::SynSent;
        c.send.push(SentPacket {
            seq: c.seq_nr,
            kind: PacketType::Syn,
            payload: Vec::new(),
            sent_at: None,
            transmissions: 0,
            need_resend: true,
            sacked: false,
            fast_resent: false,
        });
        c.seq_nr = c.seq_nr.next();
        c
    }

    /// Accepts the SYN `syn`, with `seq_nr` (random) as our first
    /// sequence number. BEP 29: the acceptor's `conn_id_send` is the SYN's
    /// `connection_id` and its `conn_id_recv` one more.
    pub fn accept(now: Instant, config: Config, syn: &Packet<'_>, seq_nr: SeqNr) -> Connection {
        let mut c = Connection::new(
            now,
            config,
            syn.conn_id.wrapping_add(1),
            syn.conn_id,
            seq_nr,
        );
        c.state = State::SynReceived;
        c.recv = RecvBuffer::new(syn.seq_nr, c.config.recv_buffer);
        c.peer_window = syn.wnd_size as usize;
        c.reply_micro = micros(now).wrapping_sub(syn.timestamp_us);
        c.need_ack = true;
        c.timers.set(Timer::Idle, now + c.config.handshake_timeout);
        c
    }

    fn new(now: Instant, config: Config, recv_id: u16, send_id: u16, seq_nr: SeqNr) -> Connection {
        let mss = config.max_payload() as u32;
        let mut timers = Timers::default();
        timers.set(Timer::Idle, now + config.handshake_timeout);
        Connection {
            cc: Ledbat::new(config.target_delay, mss),
            send: SendBuffer::new(config.send_buffer),
            recv: RecvBuffer::new(SeqNr(0), config.recv_buffer),
            config,
            state: State::SynSent,
            recv_id,
            send_id,
            seq_nr,
            rtt: RttEstimator::default(),
            timers,
            peer_window: config.max_payload(),
            reply_micro: 0,
            last_ack_nr: None,
            duplicate_acks: 0,
            need_ack: false,
            probe: false,
            advertised: config.recv_buffer,
            close_requested: false,
            fin_sent: false,
            fin_acked: false,
            reset_pending: false,
            timeouts_in_a_row: 0,
            mtu: PathMtu::new(config.min_datagram, config.max_datagram),
            sending_probe: false,
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    // --- getters ------------------------------------------------------------

    /// Where the connection stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// The id packets to us carry (the socket routes by it).
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// Counters for tests and the UI.
    pub fn stats(&self) -> Stats {
        let (probes_acked, probes_lost) = self.mtu.probes();
        Stats {
            datagram_size: self.mtu.datagram(),
            probes_acked,
            probes_lost,
            ..self.stats
        }
    }

    /// The congestion window in bytes.
    pub fn congestion_window(&self) -> usize {
        self.cc.window() as usize
    }

    /// Whether LEDBAT is still in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.cc.in_slow_start()
    }

    /// The smoothed round-trip time, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// Bytes ready for [`read`](Connection::read).
    pub fn readable(&self) -> usize {
        self.recv.readable()
    }

    /// Whether the peer closed its side and everything it sent was read.
    pub fn at_eof(&self) -> bool {
        self.recv.at_eof()
    }

    /// Whether everything written was sent and acknowledged.
    pub fn all_acked(&self) -> bool {
        self.send.unsent() == 0 && !self.send.has_unacked()
    }

    // --- commands -----------------------------------------------------------

    /// Queues bytes to send; returns how many fit in the send buffer (0
    /// once closing or closed).
    pub fn write(&mut self, data: &[u8]) -> usize {
        if self.close_requested || matches!(self.state, State::Closed(_)) {
            return 0;
        }
        self.send.write(data)
    }

    /// Reads in-order bytes; returns how many (0 when none are ready; see
    /// [`at_eof`](Connection::at_eof) for the end of the stream).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.recv.read(buf);
        // Tell a sender stalled on our full window that it reopened.
        let reopen = 2 * self.config.max_payload();
        if n > 0 && self.advertised < reopen && self.recv.window() >= reopen {
            self.need_ack = true;
        }
        n
    }

    /// Closes gracefully: what was written is still delivered, then a FIN.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent => self.finish(CloseReason::Aborted, None),
            State::SynReceived | State::Connected => self.close_requested = true,
            State::Closed(_) => {}
        }
    }

    /// Closes at once with `ST_RESET`.
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Closed(_)) {
            self.reset_pending = self.state != State::SynSent;
            self.finish(CloseReason::Aborted, None);
        }
    }

    /// Drops a handshake without a word to the peer (a SYN from a forged
    /// address must not earn its victim a packet), ending it for `reason`.
    pub(super) fn forget(&mut self, reason: CloseReason) {
        self.need_ack = false;
        self.reset_pending = false;
        self.finish(reason, None);
    }

    /// Ends the connection; `time_wait` keeps it answering retransmitted
    /// FINs until then.
    fn finish(&mut self, reason: CloseReason, time_wait: Option<Instant>) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        self.state = State::Closed(reason);
        self.timers.clear();
        if let Some(until) = time_wait {
            self.timers.set(Timer::Close, until);
        }
        self.events.push_back(Event::Closed(reason));
    }

    /// After our FIN was acknowledged: finished once the peer's FIN is in
    /// too; until then the peer may go on sending (a half-closed stream),
    /// but not fall silent for longer than [`Config::linger`].
    fn check_closing(&mut self, now: Instant, data_arrived: bool) {
        if !self.fin_acked {
            return;
        }
        if self.recv.fin_received() {
            self.finish(CloseReason::Finished, Some(now + self.config.time_wait));
        } else if data_arrived || self.timers.get(Timer::Close).is_none() {
            self.timers.set(Timer::Close, now + self.config.linger);
        }
    }

    // --- inputs -------------------------------------------------------------

    /// A datagram for this connection. Undecodable ones are dropped (and
    /// counted): UDP carries anyone's bytes.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        match Packet::decode(datagram) {
            Ok(packet) => self.handle_packet(now, &packet),
            Err(_) => self.stats.malformed += 1,
        }
    }

    /// A decoded packet for this connection.
    pub fn handle_packet(&mut self, now: Instant, packet: &Packet<'_>) {
        if let State::Closed(reason) = self.state {
            // Time-wait: the peer did not hear our last ACK and resends.
            let ours = packet.conn_id == self.recv_id;
            let resent = matches!(packet.kind, PacketType::Fin | PacketType::Data);
            if reason == CloseReason::Finished && ours && resent {
                self.need_ack = true;
            }
            return;
        }
        if packet.kind == PacketType::Syn {
            // The initiator did not hear our STATE and resent its SYN.
            if self.state == State::SynReceived && packet.conn_id.wrapping_add(1) == self.recv_id {
                self.need_ack = true;
            }
            return;
        }
        if packet.kind == PacketType::Reset {
            // Resets carry whichever of our ids the sender knows.
            if packet.conn_id != self.recv_id && packet.conn_id != self.send_id {
                return;
            }
            let reason = if self.state == State::SynSent {
                CloseReason::Refused
            } else {
                CloseReason::Reset
            };
            self.finish(reason, None);
            return;
        }
        if packet.conn_id != self.recv_id {
            return;
        }
        self.stats.received += 1;
        match self.state {
            State::SynSent => {
                if packet.kind != PacketType::State {
                    return;
                }
                // BEP 29: the acceptor's STATE carries its first seq_nr,
                // which its first DATA packet will use again.
                self.recv = RecvBuffer::new(packet.seq_nr.prev(), self.config.recv_buffer);
                self.become_connected();
                // Confirm at once, so the acceptor may start sending.
                self.need_ack = true;
            }
            State::SynReceived => self.become_connected(),
            _ => {}
        }
        self.timers.set(Timer::Idle, now + self.config.idle_timeout);
        self.reply_micro = micros(now).wrapping_sub(packet.timestamp_us);
        self.peer_window = packet.wnd_size as usize;
        if self.peer_window > 0 {
            self.timers.stop(Timer::ZeroWindow);
        }
        if packet.timestamp_diff_us != 0 {
            self.cc.on_delay_sample(now, packet.timestamp_diff_us);
        }
        self.handle_ack(now, packet);
        let arrival = match packet.kind {
            PacketType::Data => Some(self.recv.on_data(packet.seq_nr, packet.payload)),
            PacketType::Fin => Some(self.recv.on_fin(packet.seq_nr)),
            _ => None,
        };
        if let Some(arrival) = arrival {
            self.need_ack = true;
            match arrival {
                Arrival::Duplicate => self.stats.duplicates += 1,
                Arrival::Dropped => self.stats.dropped += 1,
                Arrival::InOrder | Arrival::Buffered => {}
            }
        }
        self.check_closing(now, arrival.is_some());
    }

    fn become_connected(&mut self) {
        self.state = State::Connected;
        self.events.push_back(Event::Connected);
    }

    /// The cumulative and selective ACK in `packet`.
    fn handle_ack(&mut self, now: Instant, packet: &Packet<'_>) {
        let flight_before = self.send.flight_bytes();
        // RACK (RFC 8985): an overtaken packet is lost a round trip plus a
        // reorder window (a quarter of the round trip) after it was sent.
        let loss_delay = self.rtt.smoothed().map_or(Duration::ZERO, |r| r + r / 4);
        let rtt = &mut self.rtt;
        let mut sample = |sent: Instant| rtt.on_sample(now - sent);
        let mut acked = self.send.ack_up_to(packet.ack_nr, &mut sample);
        let mut lost = false;
        if let Some(sack) = &packet.selective_ack {
            let (more, sack_lost) =
                self.send
                    .selective_ack(packet.ack_nr, sack, now, loss_delay, &mut sample);
            acked = Acked {
                packets: acked.packets + more.packets,
                bytes: acked.bytes + more.bytes,
                fin: acked.fin || more.fin,
                syn: acked.syn,
            };
            lost = sack_lost;
        }
        if acked.packets > 0 {
            self.duplicate_acks = 0;
            self.timeouts_in_a_row = 0;
            self.rtt.on_progress();
            self.cc.on_ack(acked.bytes, flight_before as u32);
            self.timers.stop(Timer::Retransmit);
        } else if packet.kind == PacketType::State
            && self.last_ack_nr == Some(packet.ack_nr)
            && self.send.has_unacked()
        {
            // BEP 29: duplicate ACKs of the same ack_nr mean the packet
            // after it was lost.
            self.duplicate_acks += 1;
            if self.duplicate_acks == LOSS_THRESHOLD {
                lost |= self.send.mark_oldest_lost(now, loss_delay);
            }
        }
        self.last_ack_nr = Some(packet.ack_nr);
        let mut only_the_probe = false;
        if let Some(seq) = self.mtu.probe_seq() {
            match self.send.fate(seq) {
                Fate::Acked => self.mtu.handle_probe_acked(now),
                Fate::Lost => {
                    self.mtu.handle_probe_lost(now);
                    only_the_probe = !self.send.lost_besides(seq);
                }
                Fate::InFlight => {}
            }
        }
        if lost {
            self.stats.fast_retransmits += 1;
            // A lost probe says the path is narrow, not congested; any
            // other loss with it still counts.
            if !only_the_probe {
                let rtt = self.rtt.smoothed().unwrap_or_else(|| self.rtt.timeout());
                self.cc.on_loss(now, rtt);
            }
        }
        if self.send.has_unacked() {
            if self.timers.get(Timer::Retransmit).is_none() {
                self.timers.set(Timer::Retransmit, now + self.rtt.timeout());
            }
        } else {
            self.timers.stop(Timer::Retransmit);
        }
        // Only a cumulative ACK past our FIN means every byte arrived; a
        // selective ACK of the FIN alone does not.
        self.fin_acked = self.fin_sent && !self.send.has_unacked();
    }

    /// Fires whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::ALL {
            if !self.timers.take_expired(timer, now) {
                continue;
            }
            match timer {
                Timer::Idle => self.finish(CloseReason::TimedOut, None),
                Timer::Close => self.finish(CloseReason::Finished, None),
                Timer::Retransmit => self.on_retransmit_timeout(now),
                Timer::ZeroWindow => self.probe = true,
                Timer::KeepAlive => self.need_ack = true,
            }
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant) {
        if !self.send.has_unacked() {
            return;
        }
        self.timeouts_in_a_row += 1;
        let limit = if self.state == State::SynSent {
            self.config.syn_retries
        } else {
            self.config.data_retries
        };
        if self.timeouts_in_a_row > limit {
            self.finish(CloseReason::TimedOut, None);
            return;
        }
        self.stats.timeouts += 1;
        self.rtt.on_timeout();
        self.cc.on_timeout(now);
        self.send.mark_all_lost();
        self.mtu.handle_probe_lost(now);
        if self.timeouts_in_a_row >= 2 && self.state == State::Connected {
            self.mtu.handle_black_hole();
        }
        self.duplicate_acks = 0;
        self.timers.set(Timer::Retransmit, now + self.rtt.timeout());
    }

    // --- outputs ------------------------------------------------------------

    /// The next datagram to send, if any. Call until `None` after every
    /// input and command.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let payload = self.next_datagram(now)?;
        let probe = std::mem::take(&mut self.sending_probe);
        Some(Transmit { payload, probe })
    }

    fn next_datagram(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.reset_pending {
            self.reset_pending = false;
            return Some(self.encode(now, PacketType::Reset, self.seq_nr, &[]));
        }
        if matches!(self.state, State::Closed(_)) {
            let ack = self.need_ack;
            self.need_ack = false;
            return ack.then(|| self.encode(now, PacketType::State, self.seq_nr, &[]));
        }
        let datagram = self
            .transmit_resend(now)
            .or_else(|| self.transmit_new_data(now))
            .or_else(|| self.transmit_fin(now))
            .or_else(|| {
                self.need_ack
                    .then(|| self.encode(now, PacketType::State, self.seq_nr, &[]))
            })?;
        self.need_ack = false;
        self.advertised = self.recv.window();
        self.stats.sent += 1;
        if self.state == State::Connected {
            self.timers
                .set(Timer::KeepAlive, now + self.config.keepalive_interval);
        }
        Some(datagram)
    }

    /// Bytes the windows still allow in flight (the congestion window and
    /// the peer's receive window).
    fn send_allowance(&self) -> usize {
        let window = self.congestion_window().min(self.peer_window);
        window.saturating_sub(self.send.flight_bytes())
    }

    fn transmit_resend(&mut self, now: Instant) -> Option<Vec<u8>> {
        let allowance = self.send_allowance();
        let nothing_in_flight = self.send.flight_bytes() == 0;
        let p = self.send.next_to_resend()?;
        if p.payload.len() > allowance && !nothing_in_flight {
            return None;
        }
        p.need_resend = false;
        p.transmissions += 1;
        p.sent_at = Some(now);
        let (kind, seq, payload) = (p.kind, p.seq, p.payload.clone());
        if p.transmissions > 1 {
            self.stats.retransmits += 1;
        }
        let datagram = self.encode(now, kind, seq, &payload);
        self.arm_retransmit(now);
        Some(datagram)
    }

    fn transmit_new_data(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.state != State::Connected || self.send.unsent() == 0 {
            return None;
        }
        let mss = payload_room(self.mtu.datagram());
        let nothing_in_flight = self.send.flight_bytes() == 0;
        let mut size = mss.min(self.send.unsent()).min(self.send_allowance());
        // A path MTU probe, when data and windows fill a larger packet.
        let mut probe = None;
        if size == mss {
            if let Some(datagram) = self.mtu.probe_due(now) {
                // Exactly `datagram` bytes with the selective ACK it
                // will carry.
                let sack = self
                    .recv
                    .selective_ack()
                    .map_or(0, |s| 2 + s.as_bytes().len());
                let room = datagram.saturating_sub(HEADER_LEN + sack).max(1);
                if room <= self.send.unsent() && room <= self.send_allowance() {
                    size = room;
                    probe = Some(datagram);
                }
            }
        }
        if size == 0 {
            if !nothing_in_flight {
                return None;
            }
            if self.peer_window == 0 && !self.probe {
                // BEP 29 leaves zero windows to the implementation: probe
                // with one byte after a timeout, as TCP does.
                if self.timers.get(Timer::ZeroWindow).is_none() {
                    self.timers.set(Timer::ZeroWindow, now + self.rtt.timeout());
                }
                return None;
            }
            self.probe = false;
            size = mss.min(self.send.unsent()).min(self.peer_window.max(1));
        }
        if self.send.unacked_packets() >= self.config.max_packets_in_flight {
            return None;
        }
        let payload = self.send.take_unsent(size);
        let seq = self.seq_nr;
        self.seq_nr = seq.next();
        if let Some(datagram) = probe {
            self.mtu.probe_sent(seq, datagram);
            self.sending_probe = true;
        }
        let datagram = self.encode(now, PacketType::Data, seq, &payload);
        self.send
            .push(SentPacket::sent(seq, PacketType::Data, payload, now));
        self.arm_retransmit(now);
        Some(datagram)
    }

    fn transmit_fin(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.close_requested
            || self.fin_sent
            || self.state != State::Connected
            || self.send.unsent() > 0
        {
            return None;
        }
        self.fin_sent = true;
        let seq = self.seq_nr;
        self.seq_nr = seq.next();
        self.send
            .push(SentPacket::sent(seq, PacketType::Fin, Vec::new(), now));
        self.arm_retransmit(now);
        Some(self.encode(now, PacketType::Fin, seq, &[]))
    }

    fn arm_retransmit(&mut self, now: Instant) {
        if self.timers.get(Timer::Retransmit).is_none() {
            self.timers.set(Timer::Retransmit, now + self.rtt.timeout());
        }
    }

    /// A packet of `kind` with the current ACK state.
    fn encode(&self, now: Instant, kind: PacketType, seq_nr: SeqNr, payload: &[u8]) -> Vec<u8> {
        let syn = kind == PacketType::Syn;
        Packet {
            kind,
            // BEP 29: the SYN carries the id we receive on; every other
            // packet the id the peer receives on.
            conn_id: if syn { self.recv_id } else { self.send_id },
            timestamp_us: micros(now),
            timestamp_diff_us: self.reply_micro,
            wnd_size: u32::try_from(self.recv.window()).unwrap_or(u32::MAX),
            seq_nr,
            ack_nr: if syn { SeqNr(0) } else { self.recv.ack_nr() },
            selective_ack: if syn { None } else { self.recv.selective_ack() },
            payload,
        }
        .to_vec()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Connection::handle_timeout) must next be
    /// called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }
}
