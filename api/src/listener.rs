//! The API's connections, bounded so that no outsider can hold the server:
//!
//! - at most [`MAX_CONNECTIONS`] at once, and [`MAX_PER_ADDRESS`] from one
//!   IP address, so one address cannot take every slot (a connection over
//!   its address's share is closed at once);
//! - a connection idle for [`IDLE_TIMEOUT`] — nothing read, nothing
//!   written — is closed, so a client that opens connections and sends
//!   nothing (or a request header a byte at a time, slower than that)
//!   frees its slot. The event stream writes a keep-alive every 15 s and
//!   is never idle that long.
//!
//! axum serves any [`Listener`]; this one wraps the TCP listener and each
//! stream it accepts.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Connections from one IP address at once.
pub(crate) const MAX_PER_ADDRESS: usize = 32;

/// How long a connection may do nothing before it is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A TCP listener whose connections are counted and time out when idle.
pub(crate) struct GuardedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Arc<Mutex<BTreeMap<IpAddr, usize>>>,
    max_per_address: usize,
    idle: Duration,
}

impl GuardedListener {
    pub(crate) fn new(inner: TcpListener) -> GuardedListener {
        GuardedListener::with_limits(inner, MAX_CONNECTIONS, MAX_PER_ADDRESS, IDLE_TIMEOUT)
    }

    fn with_limits(
        inner: TcpListener,
        max: usize,
        max_per_address: usize,
        idle: Duration,
    ) -> GuardedListener {
        GuardedListener {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            per_address: Arc::new(Mutex::new(BTreeMap::new())),
            max_per_address,
            idle,
        }
    }

    /// Counts one more connection from `ip`, unless it has its share.
    fn take_address_slot(&self, ip: IpAddr) -> Option<AddressSlot> {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max_per_address {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            ip,
            counts: self.per_address.clone(),
        })
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            // With every slot taken, wait: new connections queue in the
            // kernel's backlog until one ends (at most IDLE_TIMEOUT away).
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; carry on unbounded rather
                // than stop serving.
                continue;
            };
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let Some(address) = self.take_address_slot(addr.ip()) else {
                drop(stream);
                continue;
            };
            let stream = GuardedStream {
                inner: stream,
                idle: self.idle,
                deadline: Box::pin(tokio::time::sleep(self.idle)),
                _slot: (permit, address),
            };
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection of an address, given back when the connection ends.
struct AddressSlot {
    ip: IpAddr,
    counts: Arc<Mutex<BTreeMap<IpAddr, usize>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// An accepted connection: its slots are held while it lives, and it
/// fails with `TimedOut` once idle too long.
pub(crate) struct GuardedStream {
    inner: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _slot: (OwnedSemaphorePermit, AddressSlot),
}

impl GuardedStream {
    /// Something moved: the idle clock starts again.
    fn active(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// The error to end the connection with, once it has been idle too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.deadline
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| io::Error::new(io::ErrorKind::TimedOut, "API connection idle too long"))
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A reader that never reads (the send buffer stays full) is
            // as idle as one that never writes.
            Poll::Pending => match self.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn listener(max: usize, per_address: usize, idle: Duration) -> GuardedListener {
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        GuardedListener::with_limits(inner, max, per_address, idle)
    }

    #[tokio::test]
    async fn one_address_gets_its_share_and_no_more() {
        let mut l = listener(8, 2, Duration::from_secs(30)).await;
        let addr = l.local_addr().expect("addr");
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let (_a, _) = l.accept().await;
        let (_b, _) = l.accept().await;
        // The third is closed at once; the listener waits for the next.
        let next = tokio::time::timeout(Duration::from_millis(300), l.accept()).await;
        assert!(
            next.is_err(),
            "a third connection from one address was served"
        );
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), clients[2].read(&mut buf))
            .await
            .expect("the refused connection is closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // When one ends, the address may connect again.
        drop(_a);
        let _d = TcpStream::connect(addr).await.expect("connect");
        let again = tokio::time::timeout(Duration::from_secs(5), l.accept()).await;
        assert!(again.is_ok(), "the freed share was not given back");
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_and_an_active_one_is_not() {
        let mut l = listener(8, 8, Duration::from_millis(300)).await;
        let addr = l.local_addr().expect("addr");
        let mut quiet_client = TcpStream::connect(addr).await.expect("connect");
        let mut busy_client = TcpStream::connect(addr).await.expect("connect");
        let (mut quiet, _) = l.accept().await;
        let (mut busy, _) = l.accept().await;
        let quiet_task = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            quiet.read(&mut buf).await
        });
        // The busy one sends a byte every 100 ms for 1 s.
        let busy_task = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 16];
            while got < 10 {
                got += busy.read(&mut buf).await?;
            }
            Ok::<usize, io::Error>(got)
        });
        for _ in 0..10 {
            busy_client.write_all(b"x").await.expect("write");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let quiet_result = quiet_task.await.expect("task");
        assert_eq!(
            quiet_result.map_err(|e| e.kind()),
            Err(io::ErrorKind::TimedOut)
        );
        assert_eq!(busy_task.await.expect("task").expect("busy read"), 10);
        let _ = quiet_client.write_all(b"late").await;
    }
}
