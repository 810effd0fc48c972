//! The virtual sockets behind [`VirtualRuntime`](super::runtime::VirtualRuntime):
//! TCP listeners and stream ends, UDP sockets, each a buffer plus the
//! waker of the task waiting on it. The [`Network`] decides when bytes
//! arrive; [`Sockets::deliver`] puts them where a task will read them.
//!
//! A write waits while more than a send buffer's worth of bytes wait in
//! the node's upload pipe, so a fast writer is held back as TCP would
//! hold it. Dropping a write half closes the direction (FIN) as an OS
//! does; a node that vanishes ([`Sockets::kill`]) resets its streams
//! instead.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Poll, Waker};

use bittide_core::Instant;
use bittide_driver::runtime::{BoxFuture, Conn, ConnRead, ConnWrite, Listener, UdpSocket};

use super::network::{Delivery, Network, Side, StreamId};
use super::runtime::{sleep_until, NodeTag, Shared};

/// First port handed to outgoing connections.
const EPHEMERAL: u16 = 40_000;

#[derive(Default)]
struct End {
    node: NodeTag,
    inbox: VecDeque<u8>,
    eof: bool,
    reset: bool,
    reader: Option<Waker>,
    /// Halves still held (read, write).
    halves: u8,
}

struct Backlog {
    node: NodeTag,
    queue: VecDeque<(StreamId, SocketAddr)>,
    waker: Option<Waker>,
}

struct Inbox {
    node: NodeTag,
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    waker: Option<Waker>,
}

struct Connecting {
    result: Option<io::Result<()>>,
    waker: Option<Waker>,
}

/// Every socket in the world.
#[derive(Default)]
pub(crate) struct Sockets {
    ends: BTreeMap<(StreamId, Side), End>,
    listeners: BTreeMap<SocketAddr, Backlog>,
    udp: BTreeMap<SocketAddr, Inbox>,
    connecting: BTreeMap<StreamId, Connecting>,
    next_port: BTreeMap<IpAddr, u16>,
    dead: BTreeSet<NodeTag>,
    /// Datagrams that found nobody bound.
    pub(crate) unbound: u64,
}

impl Sockets {
    /// Hands one delivery to its socket; wakers to call go to `wake`.
    pub(crate) fn deliver(
        &mut self,
        now: Instant,
        net: &mut Network,
        d: Delivery,
        wake: &mut Vec<Waker>,
    ) {
        match d {
            Delivery::Datagram { from, to, payload } => match self.udp.get_mut(&to) {
                Some(inbox) => {
                    inbox.queue.push_back((from, payload));
                    wake.extend(inbox.waker.take());
                }
                None => self.unbound += 1,
            },
            Delivery::Syn { stream, from, to } => match self.listeners.get_mut(&to) {
                Some(b) => {
                    net.accept(now, stream);
                    let end = End {
                        node: b.node,
                        halves: 2,
                        ..End::default()
                    };
                    self.ends.insert((stream, Side::Server), end);
                    b.queue.push_back((stream, from));
                    wake.extend(b.waker.take());
                }
                None => net.refuse(now, stream),
            },
            Delivery::Established(stream) | Delivery::Refused(stream) => {
                let ok = matches!(d, Delivery::Established(_));
                match self.connecting.get_mut(&stream) {
                    Some(c) => {
                        c.result = Some(if ok {
                            Ok(())
                        } else {
                            Err(io::ErrorKind::ConnectionRefused.into())
                        });
                        wake.extend(c.waker.take());
                    }
                    // The connect was given up: the late stream is reset.
                    None if ok => net.reset(now, stream, Side::Client),
                    None => {}
                }
            }
            Delivery::Data(stream, side, bytes) => {
                if let Some(e) = self.ends.get_mut(&(stream, side)) {
                    e.inbox.extend(bytes);
                    wake.extend(e.reader.take());
                }
            }
            Delivery::Fin(stream, side) => {
                if let Some(e) = self.ends.get_mut(&(stream, side)) {
                    e.eof = true;
                    wake.extend(e.reader.take());
                }
            }
            Delivery::Reset(stream, side) => {
                if let Some(e) = self.ends.get_mut(&(stream, side)) {
                    e.reset = true;
                    wake.extend(e.reader.take());
                }
            }
        }
    }

    fn port(&mut self, ip: IpAddr) -> u16 {
        let p = self.next_port.entry(ip).or_insert(EPHEMERAL);
        *p = p.wrapping_add(1).max(EPHEMERAL);
        *p
    }

    /// `node` vanishes: its streams are reset, its sockets closed; the
    /// halves its dropped tasks held reset rather than close.
    pub(crate) fn kill(&mut self, now: Instant, net: &mut Network, node: NodeTag, ip: IpAddr) {
        self.dead.insert(node);
        for (stream, side) in net.streams_of(ip) {
            net.reset(now, stream, side);
        }
        self.listeners.retain(|_, b| b.node != node);
        self.udp.retain(|_, i| i.node != node);
        self.ends.retain(|_, e| e.node != node);
    }

    fn release(&mut self, key: (StreamId, Side)) {
        if let Some(e) = self.ends.get_mut(&key) {
            e.halves = e.halves.saturating_sub(1);
            if e.halves == 0 {
                self.ends.remove(&key);
            }
        }
    }
}

struct ReadHalf {
    shared: Arc<Shared>,
    key: (StreamId, Side),
}

struct WriteHalf {
    shared: Arc<Shared>,
    key: (StreamId, Side),
    node: NodeTag,
    closed: bool,
}

fn conn(shared: &Arc<Shared>, node: NodeTag, key: (StreamId, Side)) -> Conn {
    (
        Box::new(ReadHalf {
            shared: shared.clone(),
            key,
        }),
        Box::new(WriteHalf {
            shared: shared.clone(),
            key,
            node,
            closed: false,
        }),
    )
}

impl ConnRead for ReadHalf {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(std::future::poll_fn(move |cx| {
            let mut w = self.shared.world();
            let Some(e) = w.sockets.ends.get_mut(&self.key) else {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            };
            if !e.inbox.is_empty() {
                let n = buf.len().min(e.inbox.len());
                for (dst, src) in buf.iter_mut().zip(e.inbox.drain(..n)) {
                    *dst = src;
                }
                return Poll::Ready(Ok(n));
            }
            if e.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if e.eof {
                return Poll::Ready(Ok(0));
            }
            e.reader = Some(cx.waker().clone());
            Poll::Pending
        }))
    }
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        self.shared.world().sockets.release(self.key);
    }
}

impl ConnWrite for WriteHalf {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let leaves = {
                let now = self.shared.now();
                let mut w = self.shared.world();
                let reset = w.sockets.ends.get(&self.key).is_none_or(|e| e.reset);
                if reset || self.closed {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                w.net.send(now, self.key.0, self.key.1, buf.to_vec())
            };
            match leaves {
                Some(t) if t <= self.shared.now() => Ok(()),
                Some(t) => {
                    sleep_until(&self.shared, t).await;
                    Ok(())
                }
                None => Err(io::ErrorKind::BrokenPipe.into()),
            }
        })
    }

    fn shutdown(&mut self) -> BoxFuture<'_, io::Result<()>> {
        if !self.closed {
            self.closed = true;
            let now = self.shared.now();
            self.shared.world().net.close(now, self.key.0, self.key.1);
        }
        Box::pin(async { Ok(()) })
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let now = self.shared.now();
        let mut w = self.shared.world();
        if w.sockets.dead.contains(&self.node) {
            w.net.reset(now, self.key.0, self.key.1);
        } else if !self.closed {
            w.net.close(now, self.key.0, self.key.1);
        }
        w.sockets.release(self.key);
    }
}

struct SimListener {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Listener for SimListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(Conn, SocketAddr)>> {
        Box::pin(std::future::poll_fn(move |cx| {
            let mut w = self.shared.world();
            let Some(b) = w.sockets.listeners.get_mut(&self.addr) else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            match b.queue.pop_front() {
                Some((stream, from)) => {
                    let node = b.node;
                    Poll::Ready(Ok((conn(&self.shared, node, (stream, Side::Server)), from)))
                }
                None => {
                    b.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        self.shared.world().sockets.listeners.remove(&self.addr);
    }
}

fn check_ip(ip: IpAddr, addr: SocketAddr) -> io::Result<SocketAddr> {
    if addr.ip().is_unspecified() || addr.ip() == ip {
        Ok(SocketAddr::new(ip, addr.port()))
    } else {
        Err(io::ErrorKind::AddrNotAvailable.into())
    }
}

pub(crate) fn listen(
    shared: &Arc<Shared>,
    node: NodeTag,
    ip: IpAddr,
    addr: SocketAddr,
) -> io::Result<Box<dyn Listener>> {
    let addr = check_ip(ip, addr)?;
    let mut w = shared.world();
    if w.sockets.listeners.contains_key(&addr) {
        return Err(io::ErrorKind::AddrInUse.into());
    }
    let backlog = Backlog {
        node,
        queue: VecDeque::new(),
        waker: None,
    };
    w.sockets.listeners.insert(addr, backlog);
    Ok(Box::new(SimListener {
        shared: shared.clone(),
        addr,
    }))
}

pub(crate) async fn connect(
    shared: Arc<Shared>,
    node: NodeTag,
    ip: IpAddr,
    to: SocketAddr,
) -> io::Result<Conn> {
    let stream = {
        let now = shared.now();
        let mut w = shared.world();
        let port = w.sockets.port(ip);
        let stream = w.net.connect(now, SocketAddr::new(ip, port), to);
        let end = End {
            node,
            halves: 2,
            ..End::default()
        };
        w.sockets.ends.insert((stream, Side::Client), end);
        let pending = Connecting {
            result: None,
            waker: None,
        };
        w.sockets.connecting.insert(stream, pending);
        stream
    };
    // Given up (dropped) before an answer: forget it, reset it.
    struct Guard(Arc<Shared>, StreamId, bool);
    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.2 {
                let now = self.0.now();
                let mut w = self.0.world();
                w.sockets.connecting.remove(&self.1);
                w.sockets.ends.remove(&(self.1, Side::Client));
                w.net.reset(now, self.1, Side::Client);
            }
        }
    }
    let mut guard = Guard(shared.clone(), stream, false);
    let result = std::future::poll_fn(|cx| {
        let mut w = shared.world();
        let Some(c) = w.sockets.connecting.get_mut(&stream) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        match c.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                c.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
    guard.2 = true;
    let mut w = shared.world();
    w.sockets.connecting.remove(&stream);
    match result {
        Ok(()) => {
            drop(w);
            Ok(conn(&shared, node, (stream, Side::Client)))
        }
        Err(e) => {
            w.sockets.ends.remove(&(stream, Side::Client));
            Err(e)
        }
    }
}

struct SimUdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl UdpSocket for SimUdp {
    fn send_to<'a>(&'a self, buf: &'a [u8], to: SocketAddr) -> BoxFuture<'a, io::Result<usize>> {
        let now = self.shared.now();
        self.shared
            .world()
            .net
            .send_datagram(now, self.addr, to, buf.to_vec());
        let n = buf.len();
        Box::pin(async move { Ok(n) })
    }

    fn send_unfragmented_to<'a>(
        &'a self,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> BoxFuture<'a, io::Result<usize>> {
        let now = self.shared.now();
        self.shared
            .world()
            .net
            .send_unfragmented(now, self.addr, to, buf.to_vec());
        let n = buf.len();
        Box::pin(async move { Ok(n) })
    }

    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, SocketAddr)>> {
        Box::pin(std::future::poll_fn(move |cx| {
            let mut w = self.shared.world();
            let Some(inbox) = w.sockets.udp.get_mut(&self.addr) else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            match inbox.queue.pop_front() {
                Some((from, payload)) => {
                    let n = payload.len().min(buf.len());
                    buf[..n].copy_from_slice(&payload[..n]);
                    Poll::Ready(Ok((n, from)))
                }
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Drop for SimUdp {
    fn drop(&mut self) {
        self.shared.world().sockets.udp.remove(&self.addr);
    }
}

pub(crate) fn bind_udp(
    shared: &Arc<Shared>,
    node: NodeTag,
    ip: IpAddr,
    addr: SocketAddr,
) -> io::Result<Arc<dyn UdpSocket>> {
    let addr = check_ip(ip, addr)?;
    let mut w = shared.world();
    if w.sockets.udp.contains_key(&addr) {
        return Err(io::ErrorKind::AddrInUse.into());
    }
    let inbox = Inbox {
        node,
        queue: VecDeque::new(),
        waker: None,
    };
    w.sockets.udp.insert(addr, inbox);
    Ok(Arc::new(SimUdp {
        shared: shared.clone(),
        addr,
    }))
}
