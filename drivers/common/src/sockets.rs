//! The listening sockets every runtime opens, made once here so they are
//! the same whatever runs them:
//!
//! - one socket per address family: an IPv6 one is `IPV6_V6ONLY`, so an
//!   IPv4 socket can hold the same port beside it and addresses never
//!   arrive IPv4-mapped;
//! - UDP receive and send buffers of [`UDP_BUFFER`]: the socket carries
//!   uTP, whose peers send a congestion window (up to 1 MiB here) in a
//!   burst, and a datagram the kernel has no room for is lost — with the
//!   default buffer (208 KiB on Linux) a 256 MiB download from libtorrent
//!   lost about 3 % of its datagrams that way. The kernel may grant less
//!   (`net.core.rmem_max`); that is not an error;
//! - UDP datagrams may be fragmented, except a uTP path MTU probe, sent
//!   with fragmentation forbidden ([`send_unfragmented`]): a probe must
//!   be lost where the path is too narrow, while a lost probe's
//!   retransmission must get through, in fragments if need be (on Linux
//!   IPv4 sets "don't fragment" on every datagram by default, so that
//!   retransmission would be lost again wherever ICMP is filtered).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// The IPv6 twin of an IPv4 "every interface" address (`0.0.0.0:P` →
/// `[::]:P`): listening there too is what makes a session dual-stack by
/// default. `None` for any other address, which is used alone.
pub fn dual_stack_twin(addr: SocketAddr) -> Option<SocketAddr> {
    (addr.ip() == std::net::Ipv4Addr::UNSPECIFIED)
        .then(|| SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, addr.port())))
}

/// What the UDP socket asks for each way.
pub const UDP_BUFFER: usize = 4 << 20;

/// Pending connections the kernel queues for `accept`.
const BACKLOG: i32 = 1024;

fn socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// A bound, non-blocking UDP socket for `addr`.
pub fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    let _ = forbid_fragmentation(&s, addr.is_ipv6(), false);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Forbids (or allows again) fragmenting what `socket` sends: IPv4's
/// "don't fragment" bit without regard to the path MTU the kernel knows
/// (`IP_PMTUDISC_PROBE`; allowed: `IP_PMTUDISC_DONT`), IPv6's
/// `IPV6_DONTFRAG`. Linux only; elsewhere `Unsupported`.
#[allow(unsafe_code)] // setsockopt: neither std nor socket2 has these options.
pub fn forbid_fragmentation(socket: &impl AsRawFd, ipv6: bool, forbid: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let (level, name, value) = match ipv6 {
            true => (
                libc::IPPROTO_IPV6,
                libc::IPV6_DONTFRAG,
                libc::c_int::from(forbid),
            ),
            false => (
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                if forbid {
                    libc::IP_PMTUDISC_PROBE
                } else {
                    libc::IP_PMTUDISC_DONT
                },
            ),
        };
        // SAFETY: a valid descriptor, and a c_int option value of the
        // size given.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                std::ptr::addr_of!(value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, ipv6, forbid);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Sends `buf` to `to` through `send` with fragmentation forbidden on
/// `socket` meanwhile (see [`forbid_fragmentation`]); the caller must be
/// the socket's only sender, since the option is the socket's.
pub async fn send_unfragmented<F>(
    socket: &impl AsRawFd,
    to: SocketAddr,
    send: F,
) -> io::Result<usize>
where
    F: std::future::Future<Output = io::Result<usize>>,
{
    forbid_fragmentation(socket, to.is_ipv6(), true)?;
    let sent = send.await;
    let _ = forbid_fragmentation(socket, to.is_ipv6(), false);
    sent
}

/// A non-blocking TCP listener on `addr` (`SO_REUSEADDR`, as every
/// runtime's own `bind` sets it, so a restart finds its port free).
pub fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A non-blocking UDP socket that receives what is sent to the multicast
/// `group`, and nothing else: bound to the group address itself (Linux
/// then delivers only datagrams sent to the group, never unicast to our
/// port from anywhere), with `SO_REUSEADDR` so other clients on the host
/// hear the group too, and a member of the group on the default
/// interface.
pub fn multicast_socket(group: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = socket(group, Type::DGRAM, Protocol::UDP)?;
    s.set_reuse_address(true)?;
    s.bind(&group.into())?;
    match group.ip() {
        IpAddr::V4(g) => s.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?,
        IpAddr::V6(g) => s.join_multicast_v6(&g, 0)?,
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sockets_are_v6_only_beside_an_ipv4_one_on_the_same_port() {
        let v4 = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().port();
        let Ok(v6) = udp_socket(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))) else {
            return; // no IPv6 on this machine
        };
        assert!(Socket::from(v6).only_v6().unwrap());
        let t4 = tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = t4.local_addr().unwrap().port();
        let t6 = tcp_listener(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))).unwrap();
        assert_eq!(t6.local_addr().unwrap().port(), port);
        assert!(Socket::from(t6).only_v6().unwrap());
    }

    #[test]
    fn only_every_ipv4_interface_has_a_twin() {
        assert_eq!(
            dual_stack_twin("0.0.0.0:6881".parse().unwrap()),
            Some("[::]:6881".parse().unwrap())
        );
        assert_eq!(dual_stack_twin("127.0.0.1:6881".parse().unwrap()), None);
        assert_eq!(dual_stack_twin("[::]:6881".parse().unwrap()), None);
    }

    #[test]
    fn udp_buffers_are_asked_for() {
        let s = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let s = Socket::from(s);
        // Linux reports twice what was granted; the grant is capped by
        // net.core.rmem_max, so only "more than the default" is certain
        // where the cap allows it.
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        if cap.is_some_and(|c| c >= UDP_BUFFER) {
            assert!(s.recv_buffer_size().unwrap() >= UDP_BUFFER);
        }
    }
}
