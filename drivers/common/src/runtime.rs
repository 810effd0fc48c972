//! The small interface a runtime offers the event loop: a clock, spawning,
//! a blocking pool, a timer, TCP and UDP. The loop in [`crate::driver`] is
//! written once against it, in the way quinn's `runtime` module abstracts
//! its runtimes. Implementations: tokio (`bittide-tokio`), async-io with
//! smol's or async-std's executor (`async_io`, feature `async-io`), and the
//! simulator's `VirtualRuntime` (`tests/src/sim/`).
//!
//! The clock is the runtime's: [`Runtime::now`] is a core
//! [`Instant`](bittide_core::Instant) counted from the runtime value's
//! creation (the OS runtimes keep that epoch as an OS instant and map core
//! instants onto their timers), and nothing in the loop reads any other
//! clock. Blocking work returns its result as a future instead of sending
//! it from the blocking thread: on a one-threaded virtual runtime a
//! blocking send into the loop's full channel would wait for the loop that
//! waits for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::receive::ReceiveBuffer;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The read half of a TCP connection.
pub trait ConnRead: Send {
    /// Reads some bytes; `Ok(0)` at end of stream.
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>>;

    /// Reads what has arrived into `buf`, the connection's receive buffer
    /// (kept between reads), and hands it over: whole frames where the
    /// stream can be followed (see [`ReceiveBuffer`]), in stream order
    /// (perhaps none yet: the start of a frame is kept until its end
    /// comes); `None` at end of stream. The bytes handed over share the buffer,
    /// so the blocks in them are not copied.
    ///
    /// This one reads into one contiguous buffer, zeroed once per buffer.
    /// A runtime that can scatter a read into uninitialised memory reads
    /// into [`ReceiveBuffer::regions`] instead (tokio does): the blocks
    /// then land aligned, and the disk writes them without gathering them
    /// first (that copy was 9 % of a download's CPU).
    fn read_chunk<'a>(
        &'a mut self,
        buf: &'a mut ReceiveBuffer,
    ) -> BoxFuture<'a, io::Result<Option<Vec<bytes::Bytes>>>> {
        Box::pin(async move {
            let n = self.read(buf.contiguous()).await?;
            Ok((n > 0).then(|| buf.take_contiguous(n)))
        })
    }
}

/// The write half of a TCP connection.
pub trait ConnWrite: Send {
    /// Writes all of `buf`.
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Closes the write direction.
    fn shutdown(&mut self) -> BoxFuture<'_, io::Result<()>>;
}

/// Both halves of a TCP connection.
pub type Conn = (Box<dyn ConnRead>, Box<dyn ConnWrite>);

/// A listening TCP socket.
pub trait Listener: Send {
    /// The next incoming connection and its address.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(Conn, SocketAddr)>>;
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A UDP socket usable from several tasks at once.
pub trait UdpSocket: Send + Sync {
    /// Sends a datagram.
    fn send_to<'a>(&'a self, buf: &'a [u8], to: SocketAddr) -> BoxFuture<'a, io::Result<usize>>;
    /// Receives a datagram.
    fn recv_from<'a>(&'a self, buf: &'a mut [u8])
        -> BoxFuture<'a, io::Result<(usize, SocketAddr)>>;
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Sends a datagram with fragmentation forbidden (a uTP path MTU
    /// probe; `sockets::forbid_fragmentation`). Only the socket's one
    /// sending task may call it. By default unsupported: the probe is
    /// dropped.
    fn send_unfragmented_to<'a>(
        &'a self,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> BoxFuture<'a, io::Result<usize>> {
        let _ = (buf, to);
        Box::pin(async { Err(io::Error::from(io::ErrorKind::Unsupported)) })
    }
}

/// What the event loop needs from an async runtime.
///
/// Time is the runtime's too: [`Runtime::now`] is the engine's clock and
/// [`Runtime::sleep_until`] waits on it, so the same loop runs on the OS
/// clock (tokio, async-io) or on a virtual one (the simulator's
/// `VirtualRuntime`), where time only moves when every task waits.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The engine's clock: time since this runtime (or its clock) began.
    fn now(&self) -> bittide_core::Instant;
    /// Runs a future to completion in the background.
    fn spawn(&self, future: BoxFuture<'static, ()>);
    /// Runs `work` off the loop thread (a blocking pool); the future yields its result.
    fn spawn_blocking<T: Send + 'static>(
        &self,
        work: Box<dyn FnOnce() -> T + Send + 'static>,
    ) -> BoxFuture<'static, T>;
    /// Completes at `deadline` on this runtime's clock.
    fn sleep_until(&self, deadline: bittide_core::Instant) -> BoxFuture<'static, ()>;
    /// Opens a TCP connection.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>>;
    /// Listens for TCP connections.
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;
    /// Binds a UDP socket.
    fn bind_udp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>>;
    /// A UDP socket receiving what is sent to the multicast `group` (local
    /// service discovery); by default unsupported (the simulator's network
    /// has no multicast).
    fn join_multicast(
        &self,
        group: SocketAddr,
    ) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        let _ = group;
        Box::pin(async { Err(io::Error::from(io::ErrorKind::Unsupported)) })
    }
}
