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

    /// The families planned, IPv4 first: each announce goes out over each
    /// (BEP 7). The twin counts though it is best effort: an announce over
    /// a family without a socket finds no route and fails alone.
    pub fn families(&self) -> Vec<IpFamily> {
        let v4 = !self.local.is_ipv6() || self.also.iter().any(SocketAddr::is_ipv4);
        let v6 = self.has_ipv6();
        [(v4, IpFamily::V4), (v6, IpFamily::V6)]
            .into_iter()
            .filter_map(|(on, f)| on.then_some(f))
            .collect()
    }

    /// Binds the rest and hands it to `driver`: each address of `also`
    /// must bind (the error names it); the twin is best effort. A UDP
    /// socket goes with the first address of the other family.
    pub async fn bind<R: Runtime>(
        &self,
        rt: &R,
        driver: &mut Driver<R>,
    ) -> Result<(), (SocketAddr, io::Error)> {
        let mut with_udp = [false; 2];
        with_udp[usize::from(self.local.is_ipv6())] = true;
        for &addr in &self.also {
            let l = rt.listen(addr).await.map_err(|e| (addr, e))?;
            driver.listen(l);
            let family = usize::from(addr.is_ipv6());
            if !with_udp[family] {
                with_udp[family] = true;
                if let Ok(s) = rt.bind_udp(addr).await {
                    driver.set_udp(s);
                }
            }
        }
        if let Some(twin) = self.twin {
            if let Ok(l) = rt.listen(twin).await {
                driver.listen(l);
                if let Ok(s) = rt.bind_udp(twin).await {
                    driver.set_udp(s);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(local: &str, also: &[&str]) -> Vec<IpFamily> {
        let also: Vec<SocketAddr> = also.iter().map(|a| a.parse().expect("addr")).collect();
        ListenPlan::new(local.parse().expect("addr"), &also).families()
    }

    #[test]
    fn families_are_those_of_every_planned_address() {
        use IpFamily::{V4, V6};
        assert_eq!(plan("0.0.0.0:6881", &[]), [V4, V6], "the [::] twin");
        assert_eq!(plan("127.0.0.1:6881", &[]), [V4]);
        assert_eq!(plan("[::1]:6881", &[]), [V6]);
        assert_eq!(plan("0.0.0.0:6881", &["127.0.0.1:0"]), [V4], "no twin");
        assert_eq!(plan("[::1]:6881", &["127.0.0.1:0"]), [V4, V6]);
    }
}
