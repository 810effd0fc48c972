//! The event loop, written once for every runtime (DESIGN.md, "Drivers are
//! thin"):
//!
//! 1. drain `engine.poll_output(now)` to `Timeout(t)`: sends go to the
//!    connections' writer tasks (bounded queues; a peer that lets its
//!    queue fill is closed), datagrams to a send task, disk jobs, HTTP
//!    requests and name lookups to the blocking pool
//!    ([`Runtime::spawn_blocking`]; a task awaits each job and sends its
//!    result into the loop), events to the application's callback;
//! 2. take every waiting control input (commands, queries, the loop's own
//!    closes), then wait for the first of: a control input, a data input
//!    (bytes, bytes written, a connect or close, a datagram, a
//!    disk/HTTP/lookup result)
//!    or the timer at `min(t, now + 1 s)`;
//! 3. turn it into one engine call with `now = rt.now()`, then up to 256
//!    more that are already waiting (a control input first at every
//!    step), run the engine's timers if `t` has passed, and give the
//!    callback its once-a-second beat; go to 1.
//!
//! Two channels reach the loop. Data is bounded (256): socket readers wait
//! when the loop is behind, which pushes back on peers through TCP.
//! Control is unbounded and always drained first, so a [`Command`] or a
//! [`Query`](crate::control::Query) from a [`Handle`] is never dropped
//! nor kept behind a flood; [`Handle::send`] fails only once the loop has
//! ended.
//!
//! Time is [`Runtime::now`] only, maps are `BTreeMap`s and the two
//! channels are polled in a fixed order, so on a deterministic runtime (the
//! simulator's) the loop is deterministic too. Lifecycle is the engine's:
//! [`Command::Shutdown`] calls `Engine::shutdown(now)` and the loop drains
//! until `Event::Stopped`, syncs the disks on the blocking pool and ends
//! ([`Ended`]). Tasks never touch the engine; the loop is a plain future:
//! no runtime-specific `select!`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bittide_core::engine::{DiskResult, Engine, Event, Output, RequestId, TcpAction};
use bittide_core::metainfo::{FileLayout, Magnet};
use bittide_core::tracker::TrackerError;
use bittide_core::webseed::{WebRequest, WebSeedError};
use bittide_core::{ConnId, Instant, TorrentId};
use bytes::Bytes;

pub use crate::control::Command;
use crate::control::{AddTorrent, View};
use crate::disk::Disk;
use crate::receive::ReceiveBuffer;
use crate::runtime::{Conn, Listener, Runtime, UdpSocket};
use crate::web_seed::WebClient;

mod commands;
mod handle;
pub use handle::Handle;

/// Writes queued per connection before it is considered stuck and closed.
const SEND_QUEUE: usize = 512;
/// A busy connection's writer tells the loop what it wrote at least every
/// this many bytes (and whenever its queue empties).
const SENT_REPORT: usize = 1 << 20;
/// Inputs queued from tasks before they wait for the loop.
const INPUT_QUEUE: usize = 256;
/// Where the loop hands a UDP socket's sender task its datagrams.
/// A datagram for the sending task: where, what, and whether it is a
/// path MTU probe (sent with fragmentation forbidden).
type Datagram = (SocketAddr, Vec<u8>, bool);
type DatagramSender = async_channel::Sender<Datagram>;

/// Datagrams waiting for the UDP socket (uTP sends in bursts of a
/// congestion window: 1 MiB is ~750 datagrams).
const UDP_QUEUE: usize = 2048;
/// How long an outgoing connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the application's callback runs without an event.
const TICK: Duration = Duration::from_secs(1);
/// HTTP tracker requests time out after this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// What the application's callback decides after each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep running.
    Continue,
    /// Shut down gracefully (as [`Command::Shutdown`]).
    Shutdown,
}

enum Input {
    Connected(ConnId, Conn),
    ConnectFailed(ConnId),
    Incoming(Conn, SocketAddr),
    /// What one read of a connection handed over, in stream order.
    Data(ConnId, Vec<bytes::Bytes>),
    /// A connection's writer wrote this many bytes.
    Sent(ConnId, usize),
    Closed(ConnId),
    Udp(SocketAddr, Vec<u8>),
    Disk(TorrentId, DiskResult),
    Http(RequestId, Result<Vec<u8>, TrackerError>),
    WebSeed(RequestId, Result<Vec<Bytes>, WebSeedError>),
    Resolved(RequestId, Vec<SocketAddr>),
    Command(Command),
    /// A [`Query`], answered by calling it with the loop's view.
    Query(Box<dyn FnOnce(&View<'_>) + Send>),
}

/// Why [`Driver::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// A shutdown finished: the engine reported [`Event::Stopped`] (every
    /// torrent stopped and told its trackers, or its grace ran out) and
    /// the disks were synced.
    Shutdown,
    /// [`Command::Abort`].
    Aborted,
}

enum WriteCmd {
    Data(Vec<u8>),
    Close,
}

/// First of two futures (both must be `Unpin`): `Ok` for the first, `Err`
/// for the second.
pub async fn first<A: Future + Unpin, B: Future + Unpin>(
    mut a: A,
    mut b: B,
) -> Result<A::Output, B::Output> {
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Poll::Ready(v) = Pin::new(&mut a).poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if let Poll::Ready(v) = Pin::new(&mut b).poll(cx) {
            return Poll::Ready(Err(v));
        }
        Poll::Pending
    })
    .await
}

/// The running loop's state.
pub struct Driver<R: Runtime> {
    rt: R,
    engine: Engine,
    /// Inputs from tasks (bounded: readers wait when the loop is behind,
    /// which pushes back on the peers through TCP).
    tx: Sender<Input>,
    rx: Receiver<Input>,
    /// Inputs from the loop itself and from the application (unbounded,
    /// never lost).
    ctrl_tx: Sender<Input>,
    ctrl_rx: Receiver<Input>,
    writers: BTreeMap<ConnId, Sender<WriteCmd>>,
    /// Closed when the loop ends: every socket task watches it and stops,
    /// so no listener, socket or connection outlives the loop.
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
    storage: BTreeMap<TorrentId, Arc<dyn Disk>>,
    /// The file layouts of torrents added through the driver, for queries
    /// (the engine does not expose them).
    layouts: BTreeMap<TorrentId, FileLayout>,
    /// Datagrams for each UDP socket's sender task: IPv4, IPv6.
    udp: [Option<DatagramSender>; 2],
    /// The engine reported [`Event::Stopped`]: sync the disks and end.
    stopped: bool,
    /// The web seeds' HTTP client (one connection pool for the loop).
    web: WebClient,
    /// Web seed fetches running on the blocking pool, and those waiting:
    /// at most [`WEB_FETCHES`] at once, so slow servers never take the
    /// threads disk jobs need.
    web_running: usize,
    web_waiting: std::collections::VecDeque<(RequestId, Vec<WebRequest>)>,
    /// How often the callback runs without an event (`None`: never).
    tick: Option<Duration>,
}

/// Web seed fetches on the blocking pool at once (it has 8 threads, which
/// disk jobs and tracker calls share).
const WEB_FETCHES: usize = 3;

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

impl<R: Runtime> Driver<R> {
    /// A loop over `engine` on `rt`, whose clock ([`Runtime::now`]) is the
    /// engine's.
    pub fn new(rt: R, engine: Engine) -> Driver<R> {
        let (tx, rx) = async_channel::bounded(INPUT_QUEUE);
        let (ctrl_tx, ctrl_rx) = async_channel::unbounded();
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        Driver {
            stop_tx,
            stop_rx,
            rt,
            engine,
            tx,
            rx,
            ctrl_tx,
            ctrl_rx,
            writers: BTreeMap::new(),
            storage: BTreeMap::new(),
            layouts: BTreeMap::new(),
            udp: [None, None],
            stopped: false,
            web: WebClient::new(),
            web_running: 0,
            web_waiting: std::collections::VecDeque::new(),
            tick: Some(TICK),
        }
    }

    /// How often the application's callback runs when no event comes
    /// (progress lines, flushes); every second by default. `None` (or
    /// zero): only on events, so an idle loop sleeps until the engine's
    /// next deadline (a simulation of thousands of nodes that need no
    /// beat).
    pub fn set_tick(&mut self, every: Option<Duration>) {
        self.tick = every.filter(|d| !d.is_zero());
    }

    /// The engine (to add torrents before running, or inspect them).
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The engine's clock (the runtime's).
    pub fn now(&self) -> Instant {
        self.rt.now()
    }

    /// Where a torrent's disk jobs go (for a torrent added to
    /// [`engine`](Driver::engine) directly).
    pub fn set_storage(&mut self, torrent: TorrentId, storage: Arc<dyn Disk>) {
        self.storage.insert(torrent, storage);
    }

    /// Adds a torrent before the loop runs, as [`Command::AddTorrent`]
    /// does while it runs; `None` if it is already in.
    pub fn add_torrent(&mut self, add: AddTorrent) -> Option<TorrentId> {
        let now = self.rt.now();
        let AddTorrent {
            info,
            storage,
            start,
            priorities,
            sequential,
            peers,
            paused,
        } = add;
        let layout = info.layout.clone();
        let id = if paused {
            // Nothing is checked, announced or connected until resumed.
            self.engine.add_torrent_paused(now, info, start)?
        } else {
            self.engine.add_torrent(now, info, start)?
        };
        self.storage.insert(id, storage);
        self.layouts.insert(id, layout);
        self.configure(now, id, priorities, sequential, peers);
        Some(id)
    }

    /// Adds a magnet link before the loop runs, as [`Command::AddMagnet`]
    /// does while it runs.
    pub fn add_magnet(&mut self, magnet: &Magnet, peers: Vec<SocketAddr>) -> Option<TorrentId> {
        let now = self.rt.now();
        let id = self.engine.add_magnet(now, magnet)?;
        if !peers.is_empty() {
            self.engine.add_peers(now, id, peers);
        }
        Some(id)
    }

    /// File selection, piece order and extra peers of a torrent just added
    /// or started.
    fn configure(
        &mut self,
        now: Instant,
        id: TorrentId,
        priorities: Option<Vec<bittide_core::picker::Priority>>,
        sequential: bool,
        peers: Vec<SocketAddr>,
    ) {
        if let Some(p) = priorities {
            self.engine.set_file_priorities(now, id, &p);
        }
        if sequential {
            self.engine.set_sequential(id, true);
        }
        if !peers.is_empty() {
            self.engine.add_peers(now, id, peers);
        }
    }

    /// A handle for commands.
    pub fn handle(&self) -> Handle {
        Handle {
            tx: self.ctrl_tx.clone(),
        }
    }

    /// Accepts peers on `listener`.
    pub fn listen(&self, mut listener: Box<dyn Listener>) {
        let (tx, stop) = (self.tx.clone(), self.stop_rx.clone());
        self.rt.spawn(Box::pin(async move {
            while let Ok(Ok((conn, addr))) = first(listener.accept(), Box::pin(stop.recv())).await {
                if tx.send(Input::Incoming(conn, addr)).await.is_err() {
                    return;
                }
            }
        }));
    }

    /// Uses `socket` for UDP trackers, the DHT and uTP to and from its
    /// address family (one socket per family; a second call for the other
    /// family adds it): one task reads it, one sends what the engine hands
    /// out, in order.
    pub fn set_udp(&mut self, socket: Arc<dyn UdpSocket>) {
        let family = socket.local_addr().map_or(0, |a| usize::from(a.is_ipv6()));
        self.read_udp(socket.clone(), |_| true);
        let (send_tx, send_rx) = async_channel::bounded::<Datagram>(UDP_QUEUE);
        let stop = self.stop_rx.clone();
        self.rt.spawn(Box::pin(async move {
            while let Ok(Ok((to, payload, probe))) =
                first(Box::pin(send_rx.recv()), Box::pin(stop.recv())).await
            {
                let _ = match probe {
                    true => socket.send_unfragmented_to(&payload, to).await,
                    false => socket.send_to(&payload, to).await,
                };
            }
        }));
        self.udp[family] = Some(send_tx);
    }

    /// Hands the local service discovery announces (BEP 14) that arrive on
    /// `socket`, a multicast group's, to the engine as UDP input, and
    /// nothing else: whatever else reaches the group never gets to the
    /// DHT or uTP. Nothing is sent from it.
    pub fn receive_lsd(&self, socket: Arc<dyn UdpSocket>) {
        self.read_udp(socket, bittide_core::lsd::is_lsd_datagram);
    }

    /// Reads `socket` into the loop, the datagrams `keep` accepts.
    fn read_udp(&self, socket: Arc<dyn UdpSocket>, keep: fn(&[u8]) -> bool) {
        let (tx, stop) = (self.tx.clone(), self.stop_rx.clone());
        self.rt.spawn(Box::pin(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let received = first(socket.recv_from(&mut buf), Box::pin(stop.recv())).await;
                let Ok(Ok((n, from))) = received else {
                    return;
                };
                if !keep(&buf[..n]) {
                    continue;
                }
                if tx.send(Input::Udp(from, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }));
    }

    fn spawn_connection(&mut self, conn: ConnId, (mut reader, mut writer): Conn) {
        let (wtx, wrx) = async_channel::bounded::<WriteCmd>(SEND_QUEUE);
        self.writers.insert(conn, wtx);
        let (tx, stop) = (self.tx.clone(), self.stop_rx.clone());
        self.rt.spawn(Box::pin(async move {
            // Blocks are decoded in place from what each read hands over
            // (see `ConnRead::read_chunk`); a buffer is freed with the last
            // block in it.
            let mut buf = ReceiveBuffer::new();
            loop {
                let read = reader.read_chunk(&mut buf);
                match first(read, Box::pin(stop.recv())).await {
                    Ok(Err(_) | Ok(None)) | Err(_) => break,
                    Ok(Ok(Some(chunks))) if chunks.is_empty() => {}
                    Ok(Ok(Some(chunks))) => {
                        if tx.send(Input::Data(conn, chunks)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Input::Closed(conn)).await;
        }));
        let (tx, stop) = (self.tx.clone(), self.stop_rx.clone());
        self.rt.spawn(Box::pin(async move {
            // What was written is told to the engine (its uploads read
            // ahead only so far), once per burst rather than per message.
            let mut written = 0;
            while let Ok(Ok(cmd)) = first(Box::pin(wrx.recv()), Box::pin(stop.recv())).await {
                match cmd {
                    WriteCmd::Data(d) => {
                        if writer.write_all(&d).await.is_err() {
                            break;
                        }
                        written += d.len();
                        if wrx.is_empty() || written >= SENT_REPORT {
                            if tx.send(Input::Sent(conn, written)).await.is_err() {
                                break;
                            }
                            written = 0;
                        }
                    }
                    WriteCmd::Close => break,
                }
            }
            let _ = writer.shutdown().await;
        }));
    }

    fn carry_out(
        &mut self,
        output: Output,
        on_event: &mut dyn FnMut(Option<&Event>, &Engine) -> Control,
    ) {
        match output {
            Output::Tcp { conn, action } => match action {
                TcpAction::Connect(addr) => {
                    let (rt, tx) = (self.rt.clone(), self.tx.clone());
                    let timer = rt.sleep_until(rt.now() + CONNECT_TIMEOUT);
                    let connecting = rt.connect(addr);
                    self.rt.spawn(Box::pin(async move {
                        let input = match first(connecting, timer).await {
                            Ok(Ok(c)) => Input::Connected(conn, c),
                            _ => Input::ConnectFailed(conn),
                        };
                        let _ = tx.send(input).await;
                    }));
                }
                TcpAction::Send(data) => {
                    let full = self
                        .writers
                        .get(&conn)
                        .is_some_and(|w| w.try_send(WriteCmd::Data(data)).is_err());
                    if full {
                        // A peer that does not read what we send: drop it.
                        if let Some(w) = self.writers.remove(&conn) {
                            let _ = w.try_send(WriteCmd::Close);
                        }
                        let _ = self.ctrl_tx.try_send(Input::Closed(conn));
                    }
                }
                TcpAction::Close => {
                    if let Some(w) = self.writers.remove(&conn) {
                        let _ = w.try_send(WriteCmd::Close);
                        w.close();
                    }
                }
            },
            Output::Udp { to, payload } => self.send_udp((to, payload, false)),
            Output::UdpProbe { to, payload } => self.send_udp((to, payload, true)),
            Output::Disk { torrent, op } => {
                if let Some(s) = self.storage.get(&torrent).cloned() {
                    self.blocking(move || Input::Disk(torrent, s.run(op)));
                }
            }
            Output::Http {
                request,
                url,
                family,
            } => {
                self.blocking(move || {
                    let got = crate::tracker::http_get_over(&url, HTTP_TIMEOUT, family);
                    Input::Http(request, got)
                });
            }
            Output::WebSeed { request, requests } => {
                self.web_waiting.push_back((request, requests));
                self.start_web_fetches();
            }
            Output::Resolve { request, host } => {
                self.blocking(move || {
                    let addrs = host
                        .to_socket_addrs()
                        .map(Iterator::collect)
                        .unwrap_or_default();
                    Input::Resolved(request, addrs)
                });
            }
            Output::Event(e) => {
                if matches!(e, Event::Stopped) {
                    self.stopped = true;
                }
                if on_event(Some(&e), &self.engine) == Control::Shutdown {
                    let _ = self.ctrl_tx.try_send(Input::Command(Command::Shutdown));
                }
            }
            // Timeouts are read by the loop; outputs of later versions are
            // ignored until the loop learns them.
            _ => {}
        }
    }

    /// Starts waiting web seed fetches while fewer than [`WEB_FETCHES`]
    /// run.
    fn start_web_fetches(&mut self) {
        while self.web_running < WEB_FETCHES {
            let Some((request, requests)) = self.web_waiting.pop_front() else {
                break;
            };
            self.web_running += 1;
            let web = self.web.clone();
            self.blocking(move || Input::WebSeed(request, web.fetch(&requests)));
        }
    }

    /// Queues a datagram on its family's socket. A full queue drops it,
    /// as a full socket buffer would: every protocol on UDP resends.
    fn send_udp(&self, datagram: Datagram) {
        if let Some(udp) = &self.udp[usize::from(datagram.0.is_ipv6())] {
            let _ = udp.try_send(datagram);
        }
    }

    /// Runs `work` on the blocking pool; a task hands its input to the
    /// loop. The blocking thread never sends itself: on a single-threaded
    /// (virtual) runtime a blocking send into a full channel would wait for
    /// the loop that waits for it.
    fn blocking(&self, work: impl FnOnce() -> Input + Send + 'static) {
        let job = self.rt.spawn_blocking(Box::new(work));
        let tx = self.tx.clone();
        self.rt.spawn(Box::pin(async move {
            let _ = tx.send(job.await).await;
        }));
    }

    fn handle_input(&mut self, input: Input) -> bool {
        let now = self.rt.now();
        match input {
            Input::Connected(conn, c) => {
                self.spawn_connection(conn, c);
                self.engine.handle_tcp_connected(now, conn);
            }
            Input::ConnectFailed(conn) => self.engine.handle_tcp_failed(now, conn),
            Input::Incoming(c, addr) => match self.engine.handle_tcp_incoming(now, addr) {
                Some(conn) => self.spawn_connection(conn, c),
                None => drop(c),
            },
            Input::Data(conn, chunks) => self.engine.handle_tcp_chunks(now, conn, chunks),
            Input::Sent(conn, bytes) => self.engine.handle_tcp_sent(now, conn, bytes),
            Input::Closed(conn) => {
                self.writers.remove(&conn);
                self.engine.handle_tcp_closed(now, conn);
            }
            Input::Udp(from, data) => self.engine.handle_udp(now, from, &data),
            Input::Disk(t, r) => self.engine.handle_disk(now, t, r),
            Input::Http(id, r) => self.engine.handle_http(now, id, r),
            Input::WebSeed(id, r) => {
                self.web_running = self.web_running.saturating_sub(1);
                self.start_web_fetches();
                self.engine.handle_web_seed(now, id, r);
            }
            Input::Resolved(id, addrs) => self.engine.handle_resolved(now, id, addrs),
            Input::Command(command) => return self.handle_command(now, command),
            Input::Query(ask) => ask(&View {
                engine: &self.engine,
                layouts: &self.layouts,
            }),
        }
        true
    }

    /// Runs until a shutdown completes or an abort. `on_event` sees every
    /// event, and `None` at least once a second (a beat for progress
    /// lines), with the engine to read progress from; it may ask for a
    /// shutdown.
    pub async fn run(mut self, on_event: impl FnMut(Option<&Event>, &Engine) -> Control) -> Ended {
        let stop = self.stop_tx.clone();
        let ended = self.run_loop(on_event).await;
        // Every socket task sees this and ends, dropping its socket.
        stop.close();
        // Commands and queries still queued are dropped with their replies,
        // so whoever awaits an answer hears that none will come (a closed
        // channel keeps its queue while any `Handle` lives).
        self.ctrl_rx.close();
        while self.ctrl_rx.try_recv().is_ok() {}
        ended
    }

    /// Flushes every torrent's written data to its device (before the
    /// application writes resume data), on the blocking pool.
    async fn sync_disks(&self) {
        for s in self.storage.values() {
            let s = s.clone();
            let _ = self.rt.spawn_blocking(Box::new(move || s.sync())).await;
        }
    }

    /// The next input: control first, then at most one from the data
    /// channel; `None` when neither has one waiting.
    fn next_ready(&self) -> Option<Input> {
        self.ctrl_rx.try_recv().or_else(|_| self.rx.try_recv()).ok()
    }

    async fn run_loop(
        &mut self,
        mut on_event: impl FnMut(Option<&Event>, &Engine) -> Control,
    ) -> Ended {
        let mut last_tick = self.rt.now();
        loop {
            let now = self.rt.now();
            let timeout = loop {
                match self.engine.poll_output(now) {
                    Output::Timeout(t) => break t,
                    o => self.carry_out(o, &mut on_event),
                }
            };
            if self.stopped {
                self.sync_disks().await;
                return Ended::Shutdown;
            }
            // Cap the sleep: the application's callback also runs on a
            // regular beat (progress lines).
            let wake = match self.tick {
                Some(tick) => timeout.min(now + tick),
                None => timeout,
            };
            // Control inputs first: a command must not wait behind data.
            // One was taken (a shutdown the callback asked for, say): its
            // outputs go out before any wait, not at the next input or
            // tick.
            let mut commanded = false;
            while let Ok(input) = self.ctrl_rx.try_recv() {
                commanded = true;
                if !self.handle_input(input) {
                    return Ended::Aborted;
                }
            }
            // After a command, no wait: straight to the timers and back
            // to draining.
            let wake = if commanded { now } else { wake };
            let timer = self.rt.sleep_until(wake);
            // Polled in this order: a waiting command wins over data.
            let inputs = first(Box::pin(self.ctrl_rx.recv()), Box::pin(self.rx.recv()));
            if let Ok(Ok(Ok(input)) | Err(Ok(input))) = first(Box::pin(inputs), timer).await {
                if !self.handle_input(input) {
                    return Ended::Aborted;
                }
                // Take whatever else is already queued before draining
                // (bounded, so timers still get their turn), commands
                // before data at every step.
                for _ in 0..INPUT_QUEUE {
                    let Some(input) = self.next_ready() else {
                        break;
                    };
                    if !self.handle_input(input) {
                        return Ended::Aborted;
                    }
                }
            }
            // (Both channels closing cannot happen: the driver holds a
            // sender of each.)
            // The deadline may have passed while inputs kept us busy: a
            // steady stream of bytes must not starve the engine's timers.
            let now = self.rt.now();
            if now >= timeout {
                self.engine.handle_timeout(now);
            }
            if self.tick.is_some_and(|tick| now >= last_tick + tick) {
                last_tick = now;
                if on_event(None, &self.engine) == Control::Shutdown {
                    let _ = self.ctrl_tx.try_send(Input::Command(Command::Shutdown));
                }
            }
        }
    }
}
