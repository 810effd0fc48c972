//! A DHT node on a plain UDP socket for one-shot commands (the CLI's `bittide
//! dht …`): join, run one lookup, save the state, exit. A blocking loop
//! around the core's `Dht`, like the UDP tracker loop in [`crate::tracker`].

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use bittide_core::dht::{Dht, DhtConfig, DhtEvent, SavedDht};
use bittide_core::IpFamily;

use crate::clock::{os_seed, Clock};

/// Bootstrap routers of the public DHT (resolved by the OS).
pub const PUBLIC_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// One node and its socket.
#[derive(Debug)]
pub struct DhtClient {
    dht: Dht,
    socket: UdpSocket,
    clock: Clock,
    state_file: Option<PathBuf>,
    saved_nodes: Vec<SocketAddr>,
}

impl DhtClient {
    /// Binds `bind`, loading our id and known nodes from `state_file` when
    /// it exists (the saved id replaces `config.id`).
    pub fn open(
        bind: SocketAddr,
        mut config: DhtConfig,
        state_file: Option<PathBuf>,
    ) -> io::Result<DhtClient> {
        // IPv6 only on an IPv6 address (a dual-stack socket would reach
        // IPv4 through mapped addresses, past the IPv4 node's rules).
        let socket: UdpSocket = crate::sockets::udp_socket(bind)?;
        socket.set_nonblocking(false)?;
        let clock = Clock::new();
        // One node, of the socket's family: its part of the state file.
        let family = IpFamily::of(&bind);
        config.table.family = family;
        let saved = state_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| SavedDht::decode(&b))
            .and_then(|s| s.part(family).cloned());
        if let Some(part) = &saved {
            config.id = Some(part.id);
        }
        Ok(DhtClient {
            dht: Dht::new(clock.now(), config, os_seed()),
            socket,
            clock,
            state_file,
            saved_nodes: saved.map(|p| p.addrs()).unwrap_or_default(),
        })
    }

    /// The node.
    pub fn dht(&mut self) -> &mut Dht {
        &mut self.dht
    }

    /// The clock's now.
    pub fn now(&self) -> bittide_core::Instant {
        self.clock.now()
    }

    /// The address family of the node (its socket's).
    pub fn family(&self) -> IpFamily {
        self.dht.family()
    }

    /// Our socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Runs the node for at most `limit`, handing each event to `on_event`
    /// until it returns true.
    pub fn run(
        &mut self,
        limit: Duration,
        mut on_event: impl FnMut(&mut Dht, &DhtEvent) -> bool,
    ) -> io::Result<()> {
        let end = self.clock.now() + limit;
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some((to, bytes)) = self.dht.poll_transmit() {
                let _ = self.socket.send_to(&bytes, to);
            }
            while let Some(e) = self.dht.poll_event() {
                if on_event(&mut self.dht, &e) {
                    // Send what the last event's handling queued.
                    while let Some((to, bytes)) = self.dht.poll_transmit() {
                        let _ = self.socket.send_to(&bytes, to);
                    }
                    return Ok(());
                }
            }
            let now = self.clock.now();
            if now >= end {
                return Ok(());
            }
            let wake = self.dht.poll_timeout().unwrap_or(end).min(end);
            let wait = (wake - now).max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let now = self.clock.now();
                    self.dht.handle_datagram(now, from, &buf[..n]);
                    // A busy socket must not starve the timers.
                    if self.dht.poll_timeout().is_some_and(|t| t <= now) {
                        self.dht.handle_timeout(now);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let now = self.clock.now();
                    self.dht.handle_timeout(now);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Joins through `nodes` (and the saved ones), waiting until the join
    /// and its bucket refreshes end or `limit` passes. Returns the table
    /// size.
    pub fn join(&mut self, nodes: &[SocketAddr], limit: Duration) -> io::Result<usize> {
        let mut all: Vec<SocketAddr> = nodes.to_vec();
        all.extend(self.saved_nodes.iter().copied());
        if all.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        self.dht.bootstrap(now, &all);
        let mut joined = false;
        self.run(limit, |dht, e| {
            if matches!(e, DhtEvent::LookupDone { .. }) {
                joined = true;
            }
            joined && dht.active_lookups() == 0
        })?;
        Ok(self.dht.table().len())
    }

    /// Writes the state file (if one was given), atomically.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        // The other family's part (a session's IPv6 node) is kept.
        let file = std::fs::read(path)
            .ok()
            .and_then(|b| SavedDht::decode(&b))
            .unwrap_or_default();
        let state = SavedDht::of([&self.dht]).merged_over(&file);
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, state.encode())?;
        std::fs::rename(&tmp, path)
    }
}

/// What several DHT nodes of one process share while they run (each with
/// its own id, port and thread): the nodes each one meets go to the
/// others' tables ([`Dht::add_node`]), so a group covers more of the
/// keyspace than one node without repeating each other's joins.
#[derive(Debug)]
pub struct NodeExchange {
    mailboxes: std::sync::Mutex<Vec<Vec<SocketAddr>>>,
}

/// Addresses kept waiting for one node at most (older ones are dropped).
const MAILBOX_CAP: usize = 4096;

impl NodeExchange {
    /// An exchange between `n` nodes, numbered from 0.
    pub fn new(n: usize) -> NodeExchange {
        NodeExchange {
            mailboxes: std::sync::Mutex::new(vec![Vec::new(); n]),
        }
    }

    /// Node `from` tells every other node about `nodes`.
    pub fn publish(&self, from: usize, nodes: &[SocketAddr]) {
        let Ok(mut boxes) = self.mailboxes.lock() else {
            return;
        };
        for (i, mailbox) in boxes.iter_mut().enumerate() {
            if i == from {
                continue;
            }
            mailbox.extend_from_slice(nodes);
            if mailbox.len() > MAILBOX_CAP {
                let extra = mailbox.len() - MAILBOX_CAP;
                mailbox.drain(..extra);
            }
        }
    }

    /// What the others published for node `i` since it last asked.
    pub fn take(&self, i: usize) -> Vec<SocketAddr> {
        self.mailboxes
            .lock()
            .ok()
            .and_then(|mut b| b.get_mut(i).map(std::mem::take))
            .unwrap_or_default()
    }

    /// Node `i`'s turn: publish a sample of its table, take in what the
    /// others met.
    pub fn trade(&self, i: usize, dht: &mut Dht, now: bittide_core::Instant) {
        let mine: Vec<SocketAddr> = dht.table().nodes().map(|n| n.node.addr).take(256).collect();
        self.publish(i, &mine);
        for addr in self.take(i) {
            dht.add_node(now, addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_reach_the_others_not_the_sender() {
        let x = NodeExchange::new(3);
        let a = SocketAddr::from(([10, 0, 0, 1], 1));
        x.publish(0, &[a]);
        assert!(x.take(0).is_empty());
        assert_eq!(x.take(1), vec![a]);
        assert_eq!(x.take(2), vec![a]);
        assert!(x.take(1).is_empty(), "taken once");
        let many: Vec<SocketAddr> = (0..5000u16)
            .map(|p| SocketAddr::from(([10, 0, 0, 2], p)))
            .collect();
        x.publish(1, &many);
        assert_eq!(x.take(0).len(), MAILBOX_CAP);
    }
}
