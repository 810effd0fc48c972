//! The multicast side of local service discovery (BEP 14): a socket per
//! family joined to its group, so the engine hears other hosts' announces.
//! Announces go out on the session's own UDP socket of that family.

use std::sync::Arc;

use bittide_core::lsd::group;
use bittide_core::IpFamily;

use crate::runtime::{Runtime, UdpSocket};

/// Joins the IPv4 group and, with `ipv6`, the IPv6 one. Best effort: a
/// host without a multicast route, or a runtime without multicast, joins
/// what it can. The families joined are the ones to announce on.
pub(crate) async fn join<R: Runtime>(
    rt: &R,
    ipv6: bool,
) -> (Vec<IpFamily>, Vec<Arc<dyn UdpSocket>>) {
    let mut families = Vec::new();
    let mut sockets = Vec::new();
    for family in IpFamily::ALL {
        if family == IpFamily::V6 && !ipv6 {
            continue;
        }
        if let Ok(s) = rt.join_multicast(group(family)).await {
            families.push(family);
            sockets.push(s);
        }
    }
    (families, sockets)
}
