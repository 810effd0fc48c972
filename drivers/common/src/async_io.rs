//! The [`Runtime`] on async-io: the reactor and timers that smol is made
//! of, and a small blocking pool of our own. The smol driver uses it with
//! smol's executor; the async-std driver with async-std's (async-std runs
//! on async-io too). One implementation, two thin wrappers.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket as StdUdp};
use std::sync::Arc;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::{BoxFuture, Conn, ConnRead, ConnWrite, Listener, Runtime, UdpSocket};

/// How the wrapping crate spawns a task on its executor.
pub type Spawner = fn(BoxFuture<'static, ()>);

/// async-io sockets and timers, a blocking pool of [`BLOCKING_THREADS`]
/// threads, and the executor behind `spawner`; its clock is the OS
/// monotonic clock counted from the value's creation.
#[derive(Clone, Copy, Debug)]
pub struct AsyncIoRuntime {
    spawner: Spawner,
    /// The OS instant that is the engine's `Instant::ZERO`.
    epoch: std::time::Instant,
}

impl AsyncIoRuntime {
    /// A runtime spawning tasks with `spawner`.
    pub fn new(spawner: Spawner) -> AsyncIoRuntime {
        AsyncIoRuntime {
            spawner,
            epoch: std::time::Instant::now(),
        }
    }
}

/// Threads that run disk, hashing, HTTP and DNS jobs: as many as the tokio
/// CLI allows its pool (`max_blocking_threads(8)`). The `blocking` crate's
/// pool grows to 500 threads under a burst of disk jobs, and with each
/// thread its stack and allocator arena: peak memory rose by half.
pub const BLOCKING_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The process's blocking pool, started on first use.
fn blocking_pool() -> &'static async_channel::Sender<Job> {
    static POOL: std::sync::OnceLock<async_channel::Sender<Job>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = async_channel::unbounded::<Job>();
        for i in 0..BLOCKING_THREADS {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("bittide-blocking-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv_blocking() {
                        job();
                    }
                });
        }
        tx
    })
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
    fn send_unfragmented_to<'a>(
        &'a self,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> BoxFuture<'a, io::Result<usize>> {
        let send = self.0.send_to(buf, to);
        Box::pin(crate::sockets::send_unfragmented(
            self.0.get_ref(),
            to,
            send,
        ))
    }
}

impl Runtime for AsyncIoRuntime {
    fn now(&self) -> bittide_core::Instant {
        bittide_core::Instant::from_duration(self.epoch.elapsed())
    }
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        (self.spawner)(future);
    }
    fn spawn_blocking<T: Send + 'static>(
        &self,
        work: Box<dyn FnOnce() -> T + Send + 'static>,
    ) -> BoxFuture<'static, T> {
        // Unbounded queue: the pool bounds the threads, the engine bounds
        // the jobs. A panic is caught (the thread stays in the pool) and
        // resumed in the awaiting task, as if the job had run there.
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.try_send(result);
        });
        let _ = blocking_pool().try_send(job);
        Box::pin(async move {
            match rx.recv().await {
                Ok(Ok(t)) => t,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // The pool is gone (process exit): nothing will come.
                Err(_) => std::future::pending().await,
            }
        })
    }
    fn sleep_until(&self, deadline: bittide_core::Instant) -> BoxFuture<'static, ()> {
        let at = self.epoch.checked_add(deadline.since_epoch());
        Box::pin(async move {
            match at {
                Some(at) => {
                    Timer::at(at).await;
                }
                // Beyond what the OS clock can say: never.
                None => std::future::pending().await,
            }
        })
    }
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async move { Async::<TcpStream>::connect(addr).await.map(split) })
    }
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = Async::new(crate::sockets::tcp_listener(addr)?)?;
            Ok(Box::new(AsyncListener(l)) as Box<dyn Listener>)
        })
    }
    fn bind_udp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        Box::pin(async move {
            let s = Async::new(crate::sockets::udp_socket(addr)?)?;
            Ok(Arc::new(AsyncUdp(s)) as Arc<dyn UdpSocket>)
        })
    }

    fn join_multicast(
        &self,
        group: SocketAddr,
    ) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        Box::pin(async move {
            let s = Async::new(crate::sockets::multicast_socket(group)?)?;
            Ok(Arc::new(AsyncUdp(s)) as Arc<dyn UdpSocket>)
        })
    }
}
