//! bittide's [`Runtime`] on tokio: the only tokio-specific code the event
//! loop needs. Its clock is tokio's (so a paused tokio clock pauses the
//! engine's too), counted from the runtime value's creation.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bittide_core::Instant;
use bittide_driver::receive::ReceiveBuffer;
use bittide_driver::runtime::{BoxFuture, Conn, ConnRead, ConnWrite, Listener, Runtime, UdpSocket};
use bittide_driver::sockets;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The tokio runtime (the current one, from inside `Runtime::block_on`).
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
    /// The tokio instant that is the engine's `Instant::ZERO`.
    epoch: tokio::time::Instant,
}

impl TokioRuntime {
    /// Uses the runtime we are running in.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> TokioRuntime {
        TokioRuntime {
            handle: tokio::runtime::Handle::current(),
            epoch: tokio::time::Instant::now(),
        }
    }
}

struct Reader(OwnedReadHalf);
struct Writer(OwnedWriteHalf);

impl ConnRead for Reader {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(self.0.read(buf))
    }

    /// Scatters each read over the receive buffer's regions (`readv`,
    /// into uninitialised memory), so blocks land aligned and whole frames
    /// are handed over.
    #[cfg(unix)]
    fn read_chunk<'a>(
        &'a mut self,
        buf: &'a mut ReceiveBuffer,
    ) -> BoxFuture<'a, io::Result<Option<Vec<bytes::Bytes>>>> {
        Box::pin(async move {
            let stream: &tokio::net::TcpStream = self.0.as_ref();
            loop {
                stream.readable().await?;
                match stream.try_io(Interest::READABLE, || read_regions(stream, buf)) {
                    Ok(0) => return Ok(None),
                    // SAFETY: `read_regions` read `n` bytes into the
                    // regions, in order.
                    #[allow(unsafe_code)]
                    Ok(n) => return Ok(Some(unsafe { buf.commit(n) })),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// One `readv` of `stream` into `buf`'s regions; the bytes read.
#[cfg(unix)]
#[allow(unsafe_code)]
fn read_regions(stream: &tokio::net::TcpStream, buf: &mut ReceiveBuffer) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov: Vec<libc::iovec> = buf
        .regions()
        .into_iter()
        .map(|r| libc::iovec {
            iov_base: r.as_mut_ptr().cast(),
            iov_len: r.len(),
        })
        .collect();
    // SAFETY: each iovec is a live, writable region of `buf`'s spare
    // capacity, untouched until `commit`; the count is at most four.
    let n = unsafe { libc::readv(stream.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n => Ok(n as usize),
    }
}

impl ConnWrite for Writer {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.0.write_all(buf))
    }
    fn shutdown(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.0.shutdown())
    }
}

fn split(stream: tokio::net::TcpStream) -> Conn {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    (Box::new(Reader(r)), Box::new(Writer(w)))
}

struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(Conn, SocketAddr)>> {
        Box::pin(async move {
            let (s, a) = self.0.accept().await?;
            Ok((split(s), a))
        })
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

struct TokioUdp(tokio::net::UdpSocket);

impl UdpSocket for TokioUdp {
    fn send_to<'a>(&'a self, buf: &'a [u8], to: SocketAddr) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(self.0.send_to(buf, to))
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, SocketAddr)>> {
        Box::pin(self.0.recv_from(buf))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
    fn send_unfragmented_to<'a>(
        &'a self,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(sockets::send_unfragmented(
            &self.0,
            to,
            self.0.send_to(buf, to),
        ))
    }
}

impl Runtime for TokioRuntime {
    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.handle.spawn(future);
    }
    fn spawn_blocking<T: Send + 'static>(
        &self,
        work: Box<dyn FnOnce() -> T + Send + 'static>,
    ) -> BoxFuture<'static, T> {
        let job = self.handle.spawn_blocking(work);
        Box::pin(async move {
            match job.await {
                Ok(t) => t,
                // The job's panic is the caller's, as if it had run inline.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down, and this task
                // with it.
                Err(_) => std::future::pending().await,
            }
        })
    }
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        match self.epoch.checked_add(deadline.since_epoch()) {
            Some(at) => Box::pin(tokio::time::sleep_until(at)),
            // Beyond what the clock can say: never.
            None => Box::pin(std::future::pending()),
        }
    }
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async move { tokio::net::TcpStream::connect(addr).await.map(split) })
    }
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = tokio::net::TcpListener::from_std(sockets::tcp_listener(addr)?)?;
            Ok(Box::new(TokioListener(l)) as Box<dyn Listener>)
        })
    }
    fn bind_udp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        Box::pin(async move {
            let s = tokio::net::UdpSocket::from_std(sockets::udp_socket(addr)?)?;
            Ok(Arc::new(TokioUdp(s)) as Arc<dyn UdpSocket>)
        })
    }

    fn join_multicast(
        &self,
        group: SocketAddr,
    ) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        Box::pin(async move {
            let s = tokio::net::UdpSocket::from_std(sockets::multicast_socket(group)?)?;
            Ok(Arc::new(TokioUdp(s)) as Arc<dyn UdpSocket>)
        })
    }
}
