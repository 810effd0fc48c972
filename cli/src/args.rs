//! Parsing the arguments clap hands over as text.

use std::net::{SocketAddr, ToSocketAddrs};

use bittide_core::InfoHash;
use bittide_driver::units;

use crate::exit::{Exit, Failure};

/// An info-hash or node id: 40 hex digits.
pub(crate) fn parse_hash(text: &str) -> Result<InfoHash, Failure> {
    units::parse_hash(text).map_err(|e| Failure::new(Exit::Usage, e))
}

/// Every IPv4 address of each `host:port`.
pub(crate) fn resolve_all(names: &[String]) -> Result<Vec<SocketAddr>, Failure> {
    let mut out = Vec::new();
    for n in names {
        let addrs = n
            .to_socket_addrs()
            .map_err(|e| Failure::new(Exit::Io, format!("{n}: {e}")))?;
        out.extend(addrs.filter(SocketAddr::is_ipv4));
    }
    Ok(out)
}

/// The first IPv4 address of `host:port`.
pub(crate) fn resolve_one(addr: &str) -> Result<SocketAddr, Failure> {
    resolve_all(&[addr.to_owned()])?
        .first()
        .copied()
        .ok_or_else(|| Failure::new(Exit::Usage, format!("{addr}: no IPv4 address")))
}
