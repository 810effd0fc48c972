//! Where a session accepts peers, beyond its first address: the other
//! `--listen` addresses, and by default the IPv6 twin of an "every
//! interface" IPv4 address (`0.0.0.0:P` → `[::]:P`), which makes a session
//! dual-stack. UDP (trackers, the DHT, uTP) runs on one socket per family:
//! the first address of each.
//!
//! One plan for the one-shot client and the daemon's session, which bind
//! their first address themselves (its errors and port choice differ).

use std::io;
use std::net::SocketAddr;

use bittide_core::IpFamily;

use crate::driver::Driver;
use crate::runtime::Runtime;
use crate::sockets::dual_stack_twin;

/// The addresses after the first, and the twin.
#[derive(Clone, Debug)]
pub struct ListenPlan {
    local: SocketAddr,
    also: Vec<SocketAddr>,
    twin: Option<SocketAddr>,
}

impl ListenPlan {
    /// Listening on `local` (already bound: its port is known) and `also`
    /// (port 0 there means `local`'s port); the twin only when nothing
    /// else was asked for.
    pub fn new(local: SocketAddr, also: &[SocketAddr]) -> ListenPlan {
        let also = also
            .iter()
            .map(|a| match a.port() {
                0 => SocketAddr::new(a.ip(), local.port()),
                _ => *a,
            })
            .collect::<Vec<_>>();
        let twin = dual_stack_twin(local).filter(|_| also.is_empty());
        ListenPlan { local, also, twin }
    }

    /// Whether an IPv6 socket is planned (then the DHT runs an IPv6 node,
    /// BEP 32). The twin is best effort: on a host without IPv6 that node
    /// stays alone.
    pub fn has_ipv6(&self) -> bool {
        self.local.is_ipv6() || self.twin.is_some() || self.also.iter().any(SocketAddr::is_ipv6)
    }

    /// Binds the rest and hands it to `driver`: each address of `also`
    /// must bind (the error names it); the twin is best effort. A UDP
    /// socket goes with the first address of the other family. Returns
    /// the families we now accept peers on with a UDP socket beside
    /// (`local_udp`: whether the first address got its UDP socket), IPv4
    /// first: each announce goes out over each (BEP 7), so none names a
    /// family we could not bind.
    pub async fn bind<R: Runtime>(
        &self,
        rt: &R,
        driver: &mut Driver<R>,
        local_udp: bool,
    ) -> Result<Vec<IpFamily>, (SocketAddr, io::Error)> {
        let family = |a: &SocketAddr| usize::from(a.is_ipv6());
        let mut listening = [false; 2];
        let mut udp_tried = [false; 2];
        let mut udp = [false; 2];
        listening[family(&self.local)] = true;
        udp_tried[family(&self.local)] = true;
        udp[family(&self.local)] = local_udp;
        for &addr in &self.also {
            let l = rt.listen(addr).await.map_err(|e| (addr, e))?;
            driver.listen(l);
            let f = family(&addr);
            listening[f] = true;
            if !udp_tried[f] {
                udp_tried[f] = true;
                if let Ok(s) = rt.bind_udp(addr).await {
                    driver.set_udp(s);
                    udp[f] = true;
                }
            }
        }
        if let Some(twin) = self.twin {
            if let Ok(l) = rt.listen(twin).await {
                driver.listen(l);
                let f = family(&twin);
                listening[f] = true;
                if let Ok(s) = rt.bind_udp(twin).await {
                    driver.set_udp(s);
                    udp[f] = true;
                }
            }
        }
        Ok(IpFamily::ALL
            .into_iter()
            .filter(|f| listening[f.index()] && udp[f.index()])
            .collect())
    }
}
