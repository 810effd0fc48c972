//! What the API is told by the daemon: where it is bound, who may log in,
//! which host names it answers to, how large a body may be.
//!
//! The rule it enforces before anything is bound (DESIGN.md, "Correctness
//! and safety"): a loopback bind may run without a login, any other bind
//! only with a username and a password.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use bittide_index::Location;

/// The default address: loopback, so a fresh daemon is reachable only
/// from this machine.
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9850);

/// The default cap on an uploaded .torrent (the largest real .torrent
/// files, for multi-terabyte torrents with small pieces, are a few MiB).
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// The cap on a JSON request body other than an add: every other request
/// is a few hundred bytes.
pub const JSON_BODY_LIMIT: usize = 1 << 20;

/// How the API runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Login name; with `password`, every request must authenticate.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<String>,
    /// Host names (as a browser puts them in `Host`) accepted besides the
    /// bound address: a reverse proxy's name, the machine's name on the
    /// LAN. An entry without a port matches any port.
    pub allowed_hosts: Vec<String>,
    /// The largest request body accepted, in bytes: a .torrent upload (a
    /// JSON add with `torrent_base64` may be a third larger). Other JSON
    /// bodies are capped at [`JSON_BODY_LIMIT`].
    pub max_body: usize,
    /// The address the daemon binds.
    pub bind: SocketAddr,
    /// The DHT index `/api/v1/index/…` searches (`bittide dht crawl
    /// --index` fills it); `None`: those endpoints answer 404.
    pub index: Option<Location>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            username: None,
            password: None,
            allowed_hosts: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            bind: DEFAULT_BIND,
            index: None,
        }
    }
}

/// Why an [`ApiConfig`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A bind other than loopback with no credentials: anyone on the
    /// network could control the daemon.
    CredentialsRequired {
        /// The address asked for.
        bind: SocketAddr,
    },
    /// A username without a password or the other way round, or an empty
    /// one.
    IncompleteCredentials,
    /// A username with a `:`, which HTTP Basic auth cannot carry (RFC 7617
    /// section 2).
    ColonInUsername,
    /// An `allowed_hosts` entry that is empty or holds characters no host
    /// name has.
    BadAllowedHost(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CredentialsRequired { bind } => write!(
                f,
                "the API would listen on {bind}, which is not a loopback address, without a login: \
                 set --api-username and --api-password (or api-username and api-password in the \
                 config file), or bind to 127.0.0.1"
            ),
            ConfigError::IncompleteCredentials => f.write_str(
                "the API needs both a username and a password, neither empty \
                 (--api-username and --api-password)",
            ),
            ConfigError::ColonInUsername => f.write_str(
                "the API username may not contain ':' (HTTP Basic auth cannot carry it)",
            ),
            ConfigError::BadAllowedHost(host) => {
                write!(f, "allowed host {host:?} is not a host name (or name:port)")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl ApiConfig {
    /// The credentials, when both are set.
    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        match (&self.username, &self.password) {
            (Some(user), Some(pass)) => Some((user, pass)),
            _ => None,
        }
    }

    /// Refuses a configuration that would expose the daemon: call it
    /// before binding, and print the error (it says what to set).
    pub fn check(&self) -> Result<(), ConfigError> {
        match (&self.username, &self.password) {
            (None, None) => {}
            (Some(user), Some(pass)) if !user.is_empty() && !pass.is_empty() => {
                if user.contains(':') {
                    return Err(ConfigError::ColonInUsername);
                }
            }
            _ => return Err(ConfigError::IncompleteCredentials),
        }
        if self.credentials().is_none() && !self.bind.ip().is_loopback() {
            return Err(ConfigError::CredentialsRequired { bind: self.bind });
        }
        for host in &self.allowed_hosts {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
            if !valid {
                return Err(ConfigError::BadAllowedHost(host.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(addr: &str) -> ApiConfig {
        ApiConfig {
            bind: addr.parse().unwrap(),
            ..ApiConfig::default()
        }
    }

    #[test]
    fn loopback_needs_no_login() {
        assert_eq!(bound("127.0.0.1:9850").check(), Ok(()));
        assert_eq!(bound("[::1]:9850").check(), Ok(()));
    }

    #[test]
    fn other_binds_need_credentials() {
        for addr in ["0.0.0.0:9850", "[::]:9850", "192.168.1.5:9850"] {
            let err = bound(addr).check().unwrap_err();
            assert!(matches!(err, ConfigError::CredentialsRequired { .. }));
            assert!(err.to_string().contains("--api-password"), "{err}");
        }
        let mut config = bound("0.0.0.0:9850");
        config.username = Some("admin".into());
        config.password = Some("secret".into());
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn half_or_empty_credentials_are_refused() {
        let mut config = bound("127.0.0.1:9850");
        config.username = Some("admin".into());
        assert_eq!(config.check(), Err(ConfigError::IncompleteCredentials));
        config.password = Some(String::new());
        assert_eq!(config.check(), Err(ConfigError::IncompleteCredentials));
        config.password = Some("x".into());
        config.username = Some("a:b".into());
        assert_eq!(config.check(), Err(ConfigError::ColonInUsername));
    }

    #[test]
    fn allowed_hosts_are_names() {
        let mut config = bound("127.0.0.1:9850");
        config.allowed_hosts = vec!["nas.local".into(), "box:8080".into()];
        assert_eq!(config.check(), Ok(()));
        config.allowed_hosts.push("bad host/".into());
        assert!(matches!(
            config.check(),
            Err(ConfigError::BadAllowedHost(_))
        ));
    }
}
