//! The daemon's options: one struct filled from the command line and from
//! a TOML config file whose keys are exactly the long flag names
//! (`download-dir = "/srv/dl"`), merged with the flags winning, then
//! resolved against the defaults into [`Effective`] — what the daemon runs
//! with and what `--print-config` prints.
//!
//! The names are those of `download` and `seed` for the same things
//! (`docs/cli.md`); the older `state`, `upload-rate` and `download-rate`
//! still work, as flags and as keys.
//!
//! Unknown keys in the file are an error naming the key and the file: a
//! misspelt `upload-rte` silently ignored would leave a limit off.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bittide_driver::units::{parse_duration, parse_rate};
use bittide_index::Location;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::args::{parse_listen, Encryption};
use crate::exit::{Exit, Failure};

/// Where the API listens unless told otherwise: loopback, so a fresh
/// daemon needs no password and is reachable only from this machine.
const DEFAULT_API: &str = "127.0.0.1:9850";
/// Where peers reach the daemon unless told otherwise: the port users
/// open in their firewall for BitTorrent.
const DEFAULT_LISTEN: &str = "0.0.0.0:6881";

/// A rate in bytes per second, written as on the command line (`500K`,
/// `2M`, `0` for none) or, in the file, as a plain integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate(pub(crate) u64);

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        parse_rate(s).map(Rate)
    }
}

/// A number of seconds, written as `3600`, `90m` or `2h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seconds(pub(crate) u64);

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Seconds, String> {
        parse_duration(s).map(|d| Seconds(d.as_secs()))
    }
}

/// An address to accept peers on, written as on the command line
/// (`6881`, `:6881`, `HOST:PORT`, `[::]:6881`) or, in the file, as a port
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listen(pub(crate) SocketAddr);

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Listen, String> {
        parse_listen(s).map(Listen)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        struct ListenVisitor;
        impl Visitor<'_> for ListenVisitor {
            type Value = Listen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port, or an address such as \"0.0.0.0:6881\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Listen, E> {
                u16::try_from(v)
                    .map(|p| Listen(SocketAddr::from(([0, 0, 0, 0], p))))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Listen, E> {
                u16::try_from(v)
                    .map(|p| Listen(SocketAddr::from(([0, 0, 0, 0], p))))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Listen, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(ListenVisitor)
    }
}

/// One value or a list of them (`listen = 6881`, `listen = [6881, "[::]:0"]`).
fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(v) => v,
    })
}

/// Accepts a non-negative integer or a string parsed by `T::from_str`.
struct NumberOrText<T>(fn(u64) -> T, &'static str);

impl<T: FromStr<Err = String>> Visitor<'_> for NumberOrText<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.0)(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(self.0)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        d.deserialize_any(NumberOrText(
            Rate,
            "a rate such as 524288, \"500K\" or \"2M\"",
        ))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        d.deserialize_any(NumberOrText(
            Seconds,
            "seconds, or a duration such as \"90m\"",
        ))
    }
}

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One readable line per record.
    #[default]
    Text,
    /// One JSON object per line (for journald, Loki, jq).
    Json,
}

/// The daemon's settings as given: every field optional, so the flags and
/// the config file can be merged. The serde names are the long flags.
#[derive(clap::Args, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Options {
    /// Read settings from this TOML file (keys are the long flag names;
    /// flags win) [default: $XDG_CONFIG_HOME/bittide/daemon.toml if it
    /// exists].
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective settings (file and flags merged) as TOML and
    /// exit.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) print_config: bool,
    /// The state folder: every torrent, its resume data, the queue and
    /// the session settings [default: $XDG_DATA_HOME/bittide, else
    /// ~/.local/share/bittide].
    #[arg(long = "state-dir", alias = "state", value_name = "DIR")]
    #[serde(rename = "state-dir", alias = "state")]
    pub(crate) state: Option<PathBuf>,
    /// Address of the HTTP API, IP:PORT [default: 127.0.0.1:9850]; any
    /// other than loopback needs --api-username and --api-password.
    #[arg(long, value_name = "ADDR")]
    pub(crate) api: Option<SocketAddr>,
    /// Address to accept peers on (TCP, and UDP on the same port): PORT,
    /// :PORT, HOST:PORT or [IPv6]:PORT; repeat it for more (port 0 there:
    /// the first's port; the first of each family carries UDP). In the
    /// file, one value or a list [default: 0.0.0.0:6881 and its IPv6 twin
    /// [::]:6881].
    #[arg(long, value_name = "ADDR")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub(crate) listen: Vec<Listen>,
    /// Where torrents go unless added with another folder [default:
    /// $XDG_DOWNLOAD_DIR, else ~/Downloads].
    #[arg(long, value_name = "DIR")]
    pub(crate) download_dir: Option<PathBuf>,
    /// Run without the DHT (trackers and peer exchange only).
    #[arg(long)]
    #[serde(default)]
    pub(crate) no_dht: bool,
    /// Run without local service discovery (BEP 14: multicast announces
    /// of public torrents to the local network, and the peers heard
    /// there).
    #[arg(long, env = "BITTIDE_NO_LSD", value_parser = clap::builder::FalseyValueParser::new())]
    #[serde(default)]
    pub(crate) no_lsd: bool,
    /// Download nothing from torrents' web seeds (BEP 19: the HTTP
    /// servers in a .torrent's `url-list` or a magnet's `ws=`).
    #[arg(long)]
    #[serde(default)]
    pub(crate) no_web_seeds: bool,
    /// No TCP peer connections, in or out (uTP only).
    #[arg(long)]
    #[serde(default)]
    pub(crate) no_tcp: bool,
    /// No uTP peer connections, in or out (TCP only).
    #[arg(long)]
    #[serde(default)]
    pub(crate) no_utp: bool,
    /// A DHT node to join through, HOST:PORT (repeatable) [default: the
    /// saved nodes, else the public routers].
    #[arg(long, value_name = "ADDR")]
    #[serde(default)]
    pub(crate) dht_bootstrap: Vec<String>,
    /// API login name (with --api-password).
    #[arg(long, value_name = "USER")]
    pub(crate) api_username: Option<String>,
    /// API password (with --api-username); prefer the config file, which
    /// other users cannot read, over the command line, which they can.
    #[arg(long, value_name = "PASSWORD")]
    pub(crate) api_password: Option<String>,
    /// A host name the API answers to besides its address, e.g. a reverse
    /// proxy's (repeatable; `name` or `name:port`).
    #[arg(long, value_name = "NAME")]
    #[serde(default)]
    pub(crate) allowed_host: Vec<String>,
    /// The DHT index the API searches (`/api/v1/index/…`): a SQLite file,
    /// `sqlite:PATH` or `postgres://…`, as `dht crawl --index` fills it
    /// [default: index.db in the state folder].
    #[arg(long, value_name = "LOCATION")]
    pub(crate) index: Option<String>,
    /// Upload limit over all torrents in bytes per second: 500K, 2M; 0 or
    /// none: unlimited [default: unlimited].
    #[arg(long = "upload-limit", alias = "upload-rate", value_name = "RATE")]
    #[serde(rename = "upload-limit", alias = "upload-rate")]
    pub(crate) upload_rate: Option<Rate>,
    /// Download limit over all torrents in bytes per second: 500K, 2M; 0
    /// or none: unlimited [default: unlimited].
    #[arg(long = "download-limit", alias = "download-rate", value_name = "RATE")]
    #[serde(rename = "download-limit", alias = "download-rate")]
    pub(crate) download_rate: Option<Rate>,
    /// Peer connections over all torrents [default: 500].
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Torrents downloading at once; the others wait as `queued`
    /// [default: no limit].
    #[arg(long, value_name = "N")]
    pub(crate) active_downloads: Option<usize>,
    /// Torrents seeding at once [default: no limit].
    #[arg(long, value_name = "N")]
    pub(crate) active_seeds: Option<usize>,
    /// Pause a seeding torrent once it has uploaded this many times its
    /// size [default: never].
    #[arg(long, value_name = "X")]
    pub(crate) seed_ratio: Option<f64>,
    /// Pause a seeding torrent after seeding this long (90m, 2h, 1h30m; a
    /// bare number is seconds) [default: never].
    #[arg(long, value_name = "DURATION")]
    pub(crate) seed_time: Option<Seconds>,
    /// Most connections per torrent [default: 50].
    #[arg(long, value_name = "N")]
    pub(crate) max_peers: Option<usize>,
    /// Most connections from one IP address [default: 1].
    #[arg(long, value_name = "N")]
    pub(crate) max_peers_per_ip: Option<usize>,
    /// Log records as text or as one JSON object per line [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// Message stream encryption (MSE/PE) of peer connections [default:
    /// enabled].
    #[arg(long, value_name = "MODE")]
    pub(crate) encryption: Option<Encryption>,
}

impl Options {
    /// These flags over `file`: a value given on the command line wins; a
    /// list given on the command line replaces the file's.
    fn over(self, file: Options) -> Options {
        fn list<T>(flags: Vec<T>, file: Vec<T>) -> Vec<T> {
            if flags.is_empty() {
                file
            } else {
                flags
            }
        }
        Options {
            config: self.config,
            print_config: self.print_config,
            state: self.state.or(file.state),
            api: self.api.or(file.api),
            listen: list(self.listen, file.listen),
            download_dir: self.download_dir.or(file.download_dir),
            no_dht: self.no_dht || file.no_dht,
            no_lsd: self.no_lsd || file.no_lsd,
            no_web_seeds: self.no_web_seeds || file.no_web_seeds,
            no_tcp: self.no_tcp || file.no_tcp,
            no_utp: self.no_utp || file.no_utp,
            dht_bootstrap: list(self.dht_bootstrap, file.dht_bootstrap),
            api_username: self.api_username.or(file.api_username),
            api_password: self.api_password.or(file.api_password),
            allowed_host: list(self.allowed_host, file.allowed_host),
            index: self.index.or(file.index),
            upload_rate: self.upload_rate.or(file.upload_rate),
            download_rate: self.download_rate.or(file.download_rate),
            max_connections: self.max_connections.or(file.max_connections),
            active_downloads: self.active_downloads.or(file.active_downloads),
            active_seeds: self.active_seeds.or(file.active_seeds),
            seed_ratio: self.seed_ratio.or(file.seed_ratio),
            seed_time: self.seed_time.or(file.seed_time),
            max_peers: self.max_peers.or(file.max_peers),
            max_peers_per_ip: self.max_peers_per_ip.or(file.max_peers_per_ip),
            log_format: self.log_format.or(file.log_format),
            encryption: self.encryption.or(file.encryption),
        }
    }
}

/// The settings the daemon runs with: flags over the config file over
/// the defaults. Options without a default (limits, goals) stay `None`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Effective {
    /// The config file read, if any (not a setting: printed as a comment).
    #[serde(skip)]
    pub(crate) config_file: Option<PathBuf>,
    #[serde(rename = "state-dir")]
    pub(crate) state: PathBuf,
    pub(crate) api: SocketAddr,
    #[serde(serialize_with = "one_or_list")]
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) download_dir: PathBuf,
    pub(crate) no_dht: bool,
    pub(crate) no_lsd: bool,
    pub(crate) no_web_seeds: bool,
    pub(crate) no_tcp: bool,
    pub(crate) no_utp: bool,
    pub(crate) dht_bootstrap: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) api_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hidden")]
    pub(crate) api_password: Option<String>,
    pub(crate) allowed_host: Vec<String>,
    /// Where the index is (a path, or a PostgreSQL URL: printed without
    /// its password).
    #[serde(serialize_with = "location")]
    pub(crate) index: Location,
    #[serde(rename = "upload-limit")]
    pub(crate) upload_rate: u64,
    #[serde(rename = "download-limit")]
    pub(crate) download_rate: u64,
    pub(crate) max_connections: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_downloads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_seeds: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed_time: Option<u64>,
    pub(crate) max_peers: usize,
    pub(crate) max_peers_per_ip: usize,
    pub(crate) log_format: LogFormat,
    pub(crate) encryption: Encryption,
    /// Which session settings were given (by flag or file), so they win
    /// over those the state folder kept from the last run.
    #[serde(skip)]
    pub(crate) given: Given,
    /// What the daemon should warn about once its log is set up.
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

/// Which session settings the user gave explicitly.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Given {
    pub(crate) upload_rate: bool,
    pub(crate) download_rate: bool,
    pub(crate) max_connections: bool,
    pub(crate) active_downloads: bool,
    pub(crate) active_seeds: bool,
    pub(crate) seed_ratio: bool,
    pub(crate) seed_time: bool,
    pub(crate) download_dir: bool,
}

/// One address as a plain value (what most files hold), more as a list.
fn one_or_list<S: serde::Serializer>(value: &[SocketAddr], s: S) -> Result<S::Ok, S::Error> {
    match value {
        [one] => one.serialize(s),
        many => many.serialize(s),
    }
}

/// The password is never printed, only whether it is set.
fn hidden<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<set>"),
        None => s.serialize_none(),
    }
}

/// An index location as `--index` takes it, a database password hidden.
fn location<S: serde::Serializer>(value: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl Effective {
    /// The settings as TOML, a valid config file apart from the password.
    pub(crate) fn to_toml(&self) -> Result<String, Failure> {
        let body = toml::to_string(self)
            .map_err(|e| Failure::new(Exit::Io, format!("cannot print the settings: {e}")))?;
        let source = match &self.config_file {
            Some(p) => format!("# config file: {}\n", p.display()),
            None => "# config file: none\n".to_owned(),
        };
        Ok(source + &body)
    }
}

/// Reads the config file (the one named, or the default one if it
/// exists), merges the flags over it, and fills in the defaults.
pub(crate) fn resolve(flags: Options) -> Result<Effective, Failure> {
    let config_file = match &flags.config {
        Some(path) => Some(path.clone()),
        None => default_config_file().filter(|p| p.is_file()),
    };
    let mut warnings = Vec::new();
    let file = match &config_file {
        Some(path) => {
            let file = read(path)?;
            if file.api_password.is_some() {
                warnings.extend(readable_by_others(path));
            }
            file
        }
        None => Options::default(),
    };
    let o = flags.over(file);
    crate::args::transports(!o.no_tcp, !o.no_utp)?;
    let given = Given {
        upload_rate: o.upload_rate.is_some(),
        download_rate: o.download_rate.is_some(),
        max_connections: o.max_connections.is_some(),
        active_downloads: o.active_downloads.is_some(),
        active_seeds: o.active_seeds.is_some(),
        seed_ratio: o.seed_ratio.is_some(),
        seed_time: o.seed_time.is_some(),
        download_dir: o.download_dir.is_some(),
    };
    let no_home = |what: &str| {
        Failure::new(
            Exit::Usage,
            format!("no {what} folder: HOME is not set; pass --{what}-dir"),
        )
    };
    let state = match o.state {
        Some(s) => s,
        None => xdg("XDG_DATA_HOME", ".local/share")
            .map(|d| d.join("bittide"))
            .ok_or_else(|| no_home("state"))?,
    };
    let download_dir = match o.download_dir {
        Some(d) => d,
        None => xdg("XDG_DOWNLOAD_DIR", "Downloads").ok_or_else(|| no_home("download"))?,
    };
    if let Some(r) = o.seed_ratio.filter(|r| !r.is_finite() || *r < 0.0) {
        return Err(Failure::new(
            Exit::Usage,
            format!("seed-ratio {r} is not a non-negative number"),
        ));
    }
    let index = match o.index.as_deref().filter(|i| !i.is_empty()) {
        Some(i) => Location::parse(i),
        None => Location::default_in(&state),
    };
    Ok(Effective {
        config_file,
        state,
        // The constants parse: they are literal socket addresses.
        api: o
            .api
            .unwrap_or_else(|| DEFAULT_API.parse().expect("DEFAULT_API")),
        listen: match o.listen.is_empty() {
            true => vec![DEFAULT_LISTEN.parse().expect("DEFAULT_LISTEN")],
            false => o.listen.iter().map(|l| l.0).collect(),
        },
        download_dir,
        no_dht: o.no_dht,
        no_lsd: o.no_lsd,
        no_web_seeds: o.no_web_seeds,
        no_tcp: o.no_tcp,
        no_utp: o.no_utp,
        dht_bootstrap: o.dht_bootstrap,
        api_username: o.api_username,
        api_password: o.api_password,
        allowed_host: o.allowed_host,
        index,
        upload_rate: o.upload_rate.map_or(0, |r| r.0),
        download_rate: o.download_rate.map_or(0, |r| r.0),
        max_connections: o.max_connections.unwrap_or(500),
        active_downloads: o.active_downloads,
        active_seeds: o.active_seeds,
        seed_ratio: o.seed_ratio,
        seed_time: o.seed_time.map(|s| s.0),
        max_peers: o.max_peers.unwrap_or(50),
        max_peers_per_ip: o.max_peers_per_ip.unwrap_or(1),
        log_format: o.log_format.unwrap_or_default(),
        encryption: o.encryption.unwrap_or_default(),
        given,
        warnings,
    })
}

/// `$XDG_CONFIG_HOME/bittide/daemon.toml`, else
/// `~/.config/bittide/daemon.toml`.
fn default_config_file() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config").map(|d| d.join("bittide").join("daemon.toml"))
}

/// An XDG base directory: the variable when set (and not empty), else
/// `$HOME/<fallback>`.
fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(fallback))
}

/// A warning when a file holding the API password can be read by other
/// users of the machine.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds api-password and other users can read it (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> Option<String> {
    None
}

/// Parses a config file; errors name the file and the line.
fn read(path: &Path) -> Result<Options, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))?;
    parse(&text).map_err(|why| Failure::new(Exit::Usage, format!("{}: {why}", path.display())))
}

/// Parses a config file's text.
fn parse(text: &str) -> Result<Options, String> {
    toml::from_str::<Options>(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => format!("line {line}: {}", e.message().trim()),
            None => e.message().trim().to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_the_long_flags() {
        let o = parse(
            r#"
            download-dir = "/srv/dl"
            api = "127.0.0.1:9999"
            api-username = "admin"
            api-password = "secret"
            upload-limit = "2M"
            download-rate = 1024
            state = "/srv/state"
            seed-time = "2h"
            seed-ratio = 1.5
            no-dht = true
            dht-bootstrap = ["router.example:6881"]
            allowed-host = ["nas.local"]
            index = "postgres://crawler:pw@db.lan/index"
            log-format = "json"
            "#,
        )
        .unwrap();
        assert_eq!(o.download_dir, Some(PathBuf::from("/srv/dl")));
        assert_eq!(o.api, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(o.upload_rate, Some(Rate(2 << 20)));
        assert_eq!(o.download_rate, Some(Rate(1024)), "the older key");
        assert_eq!(o.state, Some(PathBuf::from("/srv/state")), "the older key");
        assert_eq!(o.seed_time, Some(Seconds(7200)));
        assert_eq!(o.seed_ratio, Some(1.5));
        assert!(o.no_dht);
        assert_eq!(o.dht_bootstrap, ["router.example:6881"]);
        assert_eq!(o.allowed_host, ["nas.local"]);
        assert_eq!(
            o.index.as_deref(),
            Some("postgres://crawler:pw@db.lan/index")
        );
        assert_eq!(o.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn listen_takes_a_port_alone() {
        let port = |text: &str| {
            parse(text).map(|o| o.listen.iter().map(|l| l.0.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(port("listen = 51060"), Ok(vec!["0.0.0.0:51060".into()]));
        assert_eq!(
            port("listen = \":51060\""),
            Ok(vec!["0.0.0.0:51060".into()])
        );
        assert_eq!(port("listen = \"[::]:1\""), Ok(vec!["[::]:1".into()]));
        assert_eq!(
            port("listen = [51060, \"[::1]:0\"]"),
            Ok(vec!["0.0.0.0:51060".into(), "[::1]:0".into()])
        );
        assert!(port("listen = 70000").is_err());
        assert!(port("listen = -1").is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("listen = \"0.0.0.0:1\"\nupload-rte = 5\n").unwrap_err();
        assert!(err.contains("upload-rte"), "{err}");
        assert!(err.starts_with("line 2"), "{err}");
        // Flags that are not settings are not keys either.
        assert!(parse("print-config = true").is_err());
        assert!(parse("config = \"x\"").is_err());
    }

    #[test]
    fn bad_values_say_what_they_expected() {
        let err = parse("upload-rate = \"fast\"").unwrap_err();
        assert!(err.contains("500K"), "{err}");
        assert!(parse("upload-rate = -1").is_err());
        assert!(parse("max-peers = \"many\"").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file =
            parse("listen = \"0.0.0.0:1\"\nmax-peers = 7\ndht-bootstrap = [\"a:1\"]").unwrap();
        let flags = Options {
            listen: vec!["127.0.0.1:2".parse().unwrap()],
            ..Options::default()
        };
        let o = flags.over(file);
        assert_eq!(o.listen, [Listen("127.0.0.1:2".parse().unwrap())]);
        assert_eq!(o.max_peers, Some(7));
        assert_eq!(o.dht_bootstrap, ["a:1"]);
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let flags = Options {
            state: Some("/tmp/s".into()),
            download_dir: Some("/tmp/d".into()),
            config: Some("/nonexistent/bittide.toml".into()),
            ..Options::default()
        };
        let f = resolve(flags).unwrap_err();
        assert!(f.message.contains("/nonexistent/bittide.toml"), "{f}");
    }

    #[test]
    fn printed_settings_hide_the_password_and_parse_back() {
        let flags = Options {
            state: Some("/tmp/s".into()),
            download_dir: Some("/tmp/d".into()),
            api_username: Some("admin".into()),
            api_password: Some("secret".into()),
            upload_rate: Some(Rate(1000)),
            seed_ratio: Some(2.0),
            ..Options::default()
        };
        let e = resolve_without_file(flags);
        let text = e.to_toml().unwrap();
        assert!(text.contains("api-password = \"<set>\""), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("upload-limit = 1000"), "{text}");
        let back = parse(&text).unwrap();
        assert_eq!(back.upload_rate, Some(Rate(1000)));
        assert_eq!(back.seed_ratio, Some(2.0));
        assert_eq!(back.api, Some(DEFAULT_API.parse().unwrap()));
        assert_eq!(back.state, Some(PathBuf::from("/tmp/s")));
        // The index defaults to the state folder's; a database password
        // is not printed.
        assert_eq!(back.index.as_deref(), Some("/tmp/s/index.db"));
        let e = resolve_without_file(Options {
            state: Some("/tmp/s".into()),
            download_dir: Some("/tmp/d".into()),
            index: Some("postgres://crawler:pw@db.lan/index".into()),
            ..Options::default()
        });
        let text = e.to_toml().unwrap();
        assert!(!text.contains("pw"), "{text}");
        assert!(text.contains("db.lan/index"), "{text}");
    }

    /// `resolve` without looking for the default config file of whoever
    /// runs the tests.
    fn resolve_without_file(o: Options) -> Effective {
        let empty = std::env::temp_dir().join(format!("bittide-cfg-{}.toml", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let e = resolve(Options {
            config: Some(empty.clone()),
            ..o
        })
        .unwrap();
        let _ = std::fs::remove_file(empty);
        e
    }
}
