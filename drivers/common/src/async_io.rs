//! The [`Runtime`] on async-io: the reactor, timers and blocking pool that
//! smol is made of. The smol driver uses it with smol's executor; the
//! async-std driver with async-std's (async-std runs on async-io too). One
//! implementation, two thin wrappers.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket as StdUdp};
use std::sync::Arc;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::{BoxFuture, Conn, ConnRead, ConnWrite, Listener, Runtime, UdpSocket};

/// How the wrapping crate spawns a task on its executor.
pub type Spawner = fn(BoxFuture<'static, ()>);

/// async-io sockets and timers, `blocking`'s thread pool, and the
/// executor behind `spawner`.
#[derive(Clone, Copy, Debug)]
pub struct AsyncIoRuntime {
    spawner: Spawner,
}

impl AsyncIoRuntime {
    /// A runtime spawning tasks with `spawner`.
    pub fn new(spawner: Spawner) -> AsyncIoRuntime {
        AsyncIoRuntime { spawner }
    }
}

struct Half(Arc<Async<TcpStream>>);

impl ConnRead for Half {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(async move { (&*self.0).read(buf).await })
    }
}

impl ConnWrite for Half {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { (&*self.0).write_all(buf).await })
    }
    fn shutdown(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { self.0.get_ref().shutdown(std::net::Shutdown::Write) })
    }
}

fn split(stream: Async<TcpStream>) -> Conn {
    let _ = stream.get_ref().set_nodelay(true);
    let shared = Arc::new(stream);
    (Box::new(Half(shared.clone())), Box::new(Half(shared)))
}

struct AsyncListener(Async<TcpListener>);

impl Listener for AsyncListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(Conn, SocketAddr)>> {
        Box::pin(async move {
            let (s, a) = self.0.accept().await?;
            Ok((split(s), a))
        })
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

struct AsyncUdp(Async<StdUdp>);

impl UdpSocket for AsyncUdp {
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
        self.0.get_ref().local_addr()
    }
}

impl Runtime for AsyncIoRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        (self.spawner)(future);
    }
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        (self.spawner)(Box::pin(blocking::unblock(work)));
    }
    fn sleep_until(&self, deadline: std::time::Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            Timer::at(deadline).await;
        })
    }
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async move { Async::<TcpStream>::connect(addr).await.map(split) })
    }
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = Async::<TcpListener>::bind(addr)?;
            Ok(Box::new(AsyncListener(l)) as Box<dyn Listener>)
        })
    }
    fn bind_udp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        Box::pin(async move {
            let s = Async::<StdUdp>::bind(addr)?;
            Ok(Arc::new(AsyncUdp(s)) as Arc<dyn UdpSocket>)
        })
    }
}
