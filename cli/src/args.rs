//! Parsing the arguments clap hands over as text: info-hashes and the
//! two kinds of address (`docs/cli.md`, "Addresses").
//!
//! An address to *listen* on may be a bare port (`6881`, `:6881`: every
//! IPv4 interface), `HOST:PORT` or `[IPv6]:PORT`; an address to *reach*
//! (`--peer`, `--dht-bootstrap`) is `HOST:PORT` or `[IPv6]:PORT`. Host
//! names are resolved to one address, IPv4 when the name has one: our
//! listeners bind `0.0.0.0` unless told otherwise, and `localhost` often
//! resolves to `::1` first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bittide_core::engine::{EncryptionMode, Transports};
use bittide_core::{InfoHash, IpFamily};
use bittide_driver::units;
use clap::builder::FalseyValueParser;
use serde::{Deserialize, Serialize};

use crate::exit::{Exit, Failure};

/// The longest wait a `--timeout` asks for that is honoured as given: a
/// deadline past the clock's range would overflow, and a year is as good
/// as forever for a command.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// `--encryption`: message stream encryption (MSE/PE) of peer
/// connections, as `download`, `seed` and `daemon` take it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Encryption {
    /// Plaintext only; encrypted peers are refused.
    Disabled,
    /// Accept both; connect with the encrypted handshake first, in
    /// plaintext to a peer that refused it; RC4 on the stream only when the
    /// peer insists.
    #[default]
    Enabled,
    /// Encrypted (RC4) only, both ways; plaintext peers are refused.
    Required,
}

impl From<Encryption> for EncryptionMode {
    fn from(e: Encryption) -> EncryptionMode {
        match e {
            Encryption::Disabled => EncryptionMode::Disabled,
            Encryption::Enabled => EncryptionMode::Enabled,
            Encryption::Required => EncryptionMode::Required,
        }
    }
}

/// `--tcp/--no-tcp`, `--utp/--no-utp`: which transports carry peer
/// connections (both by default; the last of a pair given wins).
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub(crate) struct TransportArgs {
    /// Peer connections over TCP [default: on].
    #[arg(long, overrides_with = "no_tcp")]
    tcp: bool,
    /// No TCP peer connections, in or out.
    #[arg(long, overrides_with = "tcp")]
    no_tcp: bool,
    /// Peer connections over uTP (BEP 29, on the UDP port) [default: on].
    #[arg(long, overrides_with = "no_utp")]
    utp: bool,
    /// No uTP peer connections, in or out.
    #[arg(long, overrides_with = "utp")]
    no_utp: bool,
}

/// Local service discovery, for `download` and `seed`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct LsdArgs {
    /// No local service discovery (BEP 14: announcing public torrents to
    /// the local network's multicast groups, 239.192.152.143:6771 and
    /// [ff15::efc0:988f]:6771, and taking the peers heard there) [default:
    /// on].
    #[arg(long, env = "BITTIDE_NO_LSD", value_parser = FalseyValueParser::new())]
    no_lsd: bool,
}

impl LsdArgs {
    /// Whether local service discovery runs.
    pub(crate) fn enabled(self) -> bool {
        !self.no_lsd
    }
}

impl TransportArgs {
    /// The transports asked for; turning both off is a usage error.
    pub(crate) fn transports(self) -> Result<Transports, Failure> {
        transports(!self.no_tcp, !self.no_utp)
    }
}

/// `tcp` and `utp` as [`Transports`], at least one of them on.
pub(crate) fn transports(tcp: bool, utp: bool) -> Result<Transports, Failure> {
    if !tcp && !utp {
        return Err(Failure::new(
            Exit::Usage,
            "--no-tcp and --no-utp together leave no way to reach a peer",
        ));
    }
    Ok(Transports { tcp, utp })
}

/// An info-hash or node id: 40 hex digits.
pub(crate) fn parse_hash(text: &str) -> Result<InfoHash, Failure> {
    units::parse_hash(text).map_err(|e| Failure::new(Exit::Usage, e))
}

/// An address to listen on: `PORT` or `:PORT` (every IPv4 interface),
/// `HOST:PORT`, `[IPv6]:PORT` (`[::]:PORT` takes IPv6 and, on Linux,
/// IPv4 too).
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        return port_only
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p))
            .map_err(|_| format!("`{t}`: a port is 0 to 65535"));
    }
    parse_host_port(t).map_err(|why| {
        format!("`{t}` is not an address to listen on ({why}): give PORT, :PORT, HOST:PORT or [IPv6]:PORT")
    })
}

/// An address to reach: `HOST:PORT` (the host's IPv4 address when it
/// has one, else its IPv6 one), `1.2.3.4:PORT` or `[IPv6]:PORT`.
pub(crate) fn parse_peer(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    parse_host_port(t).map_err(|why| {
        format!("`{t}` is not an address ({why}): give HOST:PORT, 1.2.3.4:PORT or [IPv6]:PORT")
    })
}

/// `HOST:PORT` or a literal socket address, a host name resolved to one
/// address (IPv4 preferred).
fn parse_host_port(t: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err("no port".to_owned());
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err("an IPv6 address goes in brackets".to_owned());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port (0 to 65535)"))?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("`{host}` has no address"))
}

/// Every address of `family` of each `host:port` (a DHT node reaches
/// its own family only, BEP 32).
pub(crate) fn resolve_all(names: &[String], family: IpFamily) -> Result<Vec<SocketAddr>, Failure> {
    let mut out = Vec::new();
    for n in names {
        let addrs = n
            .to_socket_addrs()
            .map_err(|e| Failure::new(Exit::Io, format!("{n}: {e}")))?;
        out.extend(addrs.filter(|a| family.holds(a)));
    }
    Ok(out)
}

/// The first address of `family` of `host:port`.
pub(crate) fn resolve_one(addr: &str, family: IpFamily) -> Result<SocketAddr, Failure> {
    resolve_all(&[addr.to_owned()], family)?
        .first()
        .copied()
        .ok_or_else(|| Failure::new(Exit::Usage, format!("{addr}: no {family} address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listen_takes_a_port_alone_or_an_address() {
        assert_eq!(parse_listen("51060"), Ok(addr("0.0.0.0:51060")));
        assert_eq!(parse_listen(":51060"), Ok(addr("0.0.0.0:51060")));
        assert_eq!(parse_listen("0"), Ok(addr("0.0.0.0:0")));
        assert_eq!(parse_listen("[::]:6881"), Ok(addr("[::]:6881")));
        assert_eq!(parse_listen("127.0.0.1:6881"), Ok(addr("127.0.0.1:6881")));
        assert_eq!(parse_listen("localhost:6881"), Ok(addr("127.0.0.1:6881")));
        assert!(parse_listen("70000").unwrap_err().contains("65535"));
        assert!(parse_listen("").is_err());
        assert!(parse_listen(":").is_err());
        assert!(parse_listen("::1:80").unwrap_err().contains("brackets"));
    }

    #[test]
    fn peers_are_resolved_and_keep_ipv6() {
        assert_eq!(parse_peer("localhost:51001"), Ok(addr("127.0.0.1:51001")));
        assert_eq!(parse_peer("[::1]:51001"), Ok(addr("[::1]:51001")));
        assert_eq!(parse_peer("10.0.0.1:1"), Ok(addr("10.0.0.1:1")));
        let no_port = parse_peer("localhost").unwrap_err();
        assert!(no_port.contains("no port"), "{no_port}");
        assert!(parse_peer("localhost:http").is_err());
        assert!(parse_peer(":80").unwrap_err().contains("no host"));
    }
}
