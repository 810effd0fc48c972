//! `VirtualRuntime`: the driver's [`Runtime`] on virtual time, over the
//! [`Network`] model.
//!
//! One [`Executor`] runs every node's tasks on one thread: a FIFO queue of
//! ready task ids (wakers push their id once), polled in order. When no
//! task is ready the clock jumps to the earliest of the timers and the
//! network's next delivery, fires what is due, and hands the deliveries to
//! the sockets ([`super::sockets`]), whose wakers make tasks ready again.
//! Nothing depends on thread timing or hash order, so a run is a function
//! of its seed.
//!
//! Each node gets its own [`VirtualRuntime`] handle (its IP address, its
//! task tag, its disk queue) over the shared world: tasks of a node can be
//! dropped together when it vanishes.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bittide_core::Instant;
use bittide_driver::runtime::{BoxFuture, Conn, Listener, Runtime, UdpSocket};

use super::network::Network;
use super::sockets::Sockets;

/// Which node a task belongs to.
pub type NodeTag = usize;

/// Polls at one instant before the executor calls it a livelock (tasks
/// waking each other forever without time moving) and fails loudly.
const LIVELOCK_POLLS: u64 = 20_000_000;

/// Everything the tasks share: the clock, the network and its sockets, and
/// the timers.
pub(crate) struct World {
    pub(crate) net: Network,
    pub(crate) sockets: Sockets,
    timers: BTreeMap<(Instant, u64), Waker>,
    timer_seq: u64,
    /// When each node's disk is next free (blocking jobs queue on it).
    disk_free: BTreeMap<NodeTag, Instant>,
}

#[derive(Default)]
struct Sched {
    ready: VecDeque<u64>,
    /// Whether each task id is in `ready` already.
    queued: Vec<bool>,
    spawned: Vec<(u64, NodeTag, BoxFuture<'static, ()>)>,
    next_id: u64,
}

pub(crate) struct Shared {
    now: AtomicU64,
    world: Mutex<World>,
    sched: Mutex<Sched>,
}

impl Shared {
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(self.now.load(Ordering::Relaxed))
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        // A task that panicked fails the test; the world is not used after.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sched(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, node: NodeTag, future: BoxFuture<'static, ()>) {
        let mut s = self.sched();
        let id = s.next_id;
        s.next_id += 1;
        s.queued.push(true);
        s.ready.push_back(id);
        s.spawned.push((id, node, future));
    }
}

struct TaskWaker {
    id: u64,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.shared.sched();
        let id = self.id;
        if let Some(q) = s.queued.get_mut(id as usize) {
            if !*q {
                *q = true;
                s.ready.push_back(id);
            }
        }
    }
}

/// Counters of one executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecStats {
    /// Task polls.
    pub polls: u64,
    /// Clock jumps.
    pub jumps: u64,
    /// Tasks spawned.
    pub spawned: u64,
}

/// The single-threaded, deterministic executor; see the module docs.
pub struct Executor {
    shared: Arc<Shared>,
    tasks: Vec<Option<(NodeTag, BoxFuture<'static, ()>)>>,
    /// Counters.
    pub stats: ExecStats,
    /// Polls since the clock last moved.
    polls_at_instant: u64,
}

impl Executor {
    /// A world over `net`, at `Instant::ZERO`.
    pub fn new(net: Network) -> Executor {
        let world = World {
            net,
            sockets: Sockets::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            disk_free: BTreeMap::new(),
        };
        Executor {
            shared: Arc::new(Shared {
                now: AtomicU64::new(0),
                world: Mutex::new(world),
                sched: Mutex::new(Sched::default()),
            }),
            tasks: Vec::new(),
            stats: ExecStats::default(),
            polls_at_instant: 0,
        }
    }

    /// A runtime handle for node `node` at `ip`, whose blocking jobs each
    /// take `disk_delay` on its one disk.
    pub fn runtime(&self, node: NodeTag, ip: IpAddr, disk_delay: Duration) -> VirtualRuntime {
        VirtualRuntime {
            shared: self.shared.clone(),
            node,
            ip,
            disk_delay,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Runs `f` on the network (to change a host, read counters).
    pub fn with_net<T>(&self, f: impl FnOnce(&mut Network) -> T) -> T {
        f(&mut self.shared.world().net)
    }

    fn adopt_spawned(&mut self) {
        let spawned = std::mem::take(&mut self.shared.sched().spawned);
        for (id, node, fut) in spawned {
            let i = id as usize;
            if self.tasks.len() <= i {
                self.tasks.resize_with(i + 1, || None);
            }
            self.tasks[i] = Some((node, fut));
            self.stats.spawned += 1;
        }
    }

    /// Polls ready tasks until none is; returns how many polls it made.
    pub fn run_ready(&mut self) -> u64 {
        let mut polls = 0;
        loop {
            self.adopt_spawned();
            let Some(id) = ({
                let mut s = self.shared.sched();
                let id = s.ready.pop_front();
                if let Some(id) = id {
                    s.queued[id as usize] = false;
                }
                id
            }) else {
                return polls;
            };
            let Some(slot) = self.tasks.get_mut(id as usize) else {
                continue;
            };
            let Some((node, fut)) = slot.as_mut() else {
                continue;
            };
            let _charged = super::heap::enter(*node);
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                shared: self.shared.clone(),
            }));
            let mut cx = Context::from_waker(&waker);
            polls += 1;
            self.stats.polls += 1;
            self.polls_at_instant += 1;
            assert!(
                self.polls_at_instant < LIVELOCK_POLLS,
                "livelock: {LIVELOCK_POLLS} polls at t={} without the clock moving",
                self.now()
            );
            if fut.as_mut().poll(&mut cx).is_ready() {
                // Dropped outside any lock: its sockets' drops lock the world.
                let done = self.tasks[id as usize].take();
                drop(done);
            }
        }
    }

    /// When the clock would jump next: the first timer or delivery.
    pub fn next_deadline(&self) -> Option<Instant> {
        let w = self.shared.world();
        let timer = w.timers.keys().next().map(|(t, _)| *t);
        match (timer, w.net.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves the clock to `t` (never backwards), fires due timers and hands
    /// due deliveries to the sockets.
    pub fn advance_to(&mut self, t: Instant) {
        let now = self.now().max(t);
        if now > self.now() {
            self.polls_at_instant = 0;
        }
        self.shared.now.store(now.as_nanos(), Ordering::Relaxed);
        self.stats.jumps += 1;
        let mut wakers = Vec::new();
        {
            let mut w = self.shared.world();
            while let Some((&key, _)) = w.timers.iter().next() {
                if key.0 > now {
                    break;
                }
                if let Some(waker) = w.timers.remove(&key) {
                    wakers.push(waker);
                }
            }
            let World { net, sockets, .. } = &mut *w;
            while let Some((_, d)) = net.pop_due(now) {
                sockets.deliver(now, net, d, &mut wakers);
            }
        }
        for waker in wakers {
            waker.wake();
        }
    }

    /// Runs tasks and moves the clock until `done()` holds (checked after
    /// every batch of ready tasks), `deadline` passes, or nothing is left
    /// to happen. Returns whether `done()` held.
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        loop {
            self.run_ready();
            if done() {
                return true;
            }
            match self.next_deadline() {
                Some(t) if t <= deadline => self.advance_to(t),
                _ => {
                    self.advance_to(deadline.max(self.now()));
                    self.run_ready();
                    return done();
                }
            }
        }
    }

    /// Drops every task of `node` (a node that vanishes: its sockets reset
    /// their streams as they drop).
    pub fn kill(&mut self, node: NodeTag, ip: IpAddr) {
        let now = self.now();
        {
            let mut w = self.shared.world();
            let World { net, sockets, .. } = &mut *w;
            sockets.kill(now, net, node, ip);
        }
        for slot in &mut self.tasks {
            if slot.as_ref().is_some_and(|(n, _)| *n == node) {
                let task = slot.take();
                drop(task);
            }
        }
        let spawned = std::mem::take(&mut self.shared.sched().spawned);
        let (dead, alive): (Vec<_>, Vec<_>) = spawned.into_iter().partition(|(_, n, _)| *n == node);
        self.shared.sched().spawned = alive;
        drop(dead);
    }

    /// Live tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.iter().flatten().count()
    }
}

/// One node's handle on the virtual world; implements the driver's
/// [`Runtime`].
#[derive(Clone)]
pub struct VirtualRuntime {
    shared: Arc<Shared>,
    node: NodeTag,
    ip: IpAddr,
    disk_delay: Duration,
}

impl std::fmt::Debug for VirtualRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VirtualRuntime({} at {})", self.node, self.ip)
    }
}

/// A timer; unregisters itself when dropped (the loop makes one per turn
/// and drops most of them).
struct Sleep {
    shared: Arc<Shared>,
    deadline: Instant,
    key: Option<(Instant, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.now() >= self.deadline {
            return Poll::Ready(());
        }
        let shared = self.shared.clone();
        let mut w = shared.world();
        if let Some(key) = self.key.take() {
            w.timers.remove(&key);
        }
        w.timer_seq += 1;
        let key = (self.deadline, w.timer_seq);
        w.timers.insert(key, cx.waker().clone());
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.world().timers.remove(&key);
        }
    }
}

pub(crate) fn sleep_until(
    shared: &Arc<Shared>,
    deadline: Instant,
) -> impl Future<Output = ()> + Send + 'static {
    Sleep {
        shared: shared.clone(),
        deadline,
        key: None,
    }
}

impl VirtualRuntime {
    /// The node's IP address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Listens at once (a scenario sets nodes up outside any task).
    pub fn listen_now(&self, addr: SocketAddr) -> io::Result<Box<dyn Listener>> {
        super::sockets::listen(&self.shared, self.node, self.ip, addr)
    }

    /// Binds a UDP socket at once.
    pub fn bind_udp_now(&self, addr: SocketAddr) -> io::Result<Arc<dyn UdpSocket>> {
        super::sockets::bind_udp(&self.shared, self.node, self.ip, addr)
    }
}

impl Runtime for VirtualRuntime {
    fn now(&self) -> Instant {
        self.shared.now()
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.shared.spawn(self.node, future);
    }

    fn spawn_blocking<T: Send + 'static>(
        &self,
        work: Box<dyn FnOnce() -> T + Send + 'static>,
    ) -> BoxFuture<'static, T> {
        let (shared, node, delay) = (self.shared.clone(), self.node, self.disk_delay);
        Box::pin(async move {
            if !delay.is_zero() {
                // One disk per node: jobs queue behind each other.
                let done = {
                    let now = shared.now();
                    let mut w = shared.world();
                    let free = w.disk_free.entry(node).or_insert(now);
                    let done = (*free).max(now) + delay;
                    *free = done;
                    done
                };
                sleep_until(&shared, done).await;
            }
            work()
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(sleep_until(&self.shared, deadline))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(super::sockets::connect(
            self.shared.clone(),
            self.node,
            self.ip,
            addr,
        ))
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let r = self.listen_now(addr);
        Box::pin(async move { r })
    }

    fn bind_udp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Arc<dyn UdpSocket>>> {
        let r = self.bind_udp_now(addr);
        Box::pin(async move { r })
    }
}
