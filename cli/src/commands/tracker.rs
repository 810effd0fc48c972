//! `bittide tracker`: announce to a tracker or scrape it and print what it
//! says, or run a tracker (HTTP and/or UDP, BEP 3/15/48) until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::tracker::server::ServerConfig;
use bittide_core::tracker::{AnnounceEvent, AnnounceRequest};
use bittide_driver::client::random_peer_id;
use bittide_driver::runtime::Runtime;
use bittide_driver::tracker as client;
use bittide_driver::tracker_server::{expire, serve_http, serve_udp, Shared};
use bittide_driver::units::parse_duration;
use bittide_tokio::runtime::TokioRuntime;
use clap::Subcommand;
use serde_json::json;

use crate::args::{parse_hash, parse_listen, LONGEST_WAIT};
use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  bittide tracker serve --http 8000 --udp 8000
  bittide tracker announce udp://localhost:8000 0123456789abcdef0123456789abcdef01234567
  bittide tracker scrape udp://localhost:8000 0123456789abcdef0123456789abcdef01234567";

#[derive(Subcommand, Debug)]
enum Command {
    /// Announce to a tracker and print what it says.
    #[command(after_help = "\
Examples:
  bittide tracker announce http://localhost:8000/announce 0123456789abcdef0123456789abcdef01234567
  bittide tracker announce udp://localhost:8000 $HASH --event stopped --left 0 --json")]
    Announce {
        /// Announce URL (http://, https:// or udp://).
        url: String,
        /// The torrent's info-hash (40 hex digits).
        info_hash: String,
        /// The event to send.
        #[arg(long, value_parser = ["started", "stopped", "completed", "none"], default_value = "started")]
        event: String,
        /// The port to announce.
        #[arg(long, default_value_t = 6881)]
        port: u16,
        /// Bytes left to download (0 announces a seed).
        #[arg(long, value_name = "BYTES", default_value_t = 1)]
        left: u64,
        /// Give up after this long (30s, 2m; a bare number is seconds).
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Print one JSON object (one line) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask a tracker for seeders/leechers counts.
    #[command(after_help = "\
Example:
  bittide tracker scrape http://localhost:8000/announce 0123456789abcdef0123456789abcdef01234567")]
    Scrape {
        /// Announce or scrape URL (http://, https:// or udp://).
        url: String,
        /// Info-hashes (40 hex digits).
        #[arg(required = true)]
        info_hashes: Vec<String>,
        /// Give up after this long (30s, 2m; a bare number is seconds).
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Print one JSON object (one line) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a tracker until Ctrl-C.
    #[command(after_help = "\
Examples:
  bittide tracker serve --http 8000                (http://<this host>:8000/announce)
  bittide tracker serve --http 127.0.0.1:8000 --udp 8001 --interval 5m")]
    Serve {
        /// Serve HTTP (/announce and /scrape) here: PORT, :PORT,
        /// HOST:PORT or [IPv6]:PORT; repeatable, one swarm for all (a
        /// dual-stack tracker: --http 0.0.0.0:8000 --http [::]:8000)
        /// [default: no HTTP].
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        http: Vec<SocketAddr>,
        /// Serve UDP (BEP 15) here, as --http [default: no UDP].
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        udp: Vec<SocketAddr>,
        /// The announce interval given to clients (30m, 1h; a bare number
        /// is seconds).
        #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
        interval: Duration,
        /// Only track these info-hashes (repeatable) [default: any].
        #[arg(long = "allow", value_name = "INFO_HASH")]
        allow: Vec<String>,
    },
}

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    match args.command {
        Command::Announce {
            url,
            info_hash,
            event,
            port,
            left,
            timeout,
            json: as_json,
        } => {
            let mut req = AnnounceRequest::new(parse_hash(&info_hash)?, random_peer_id(), port);
            req.left = left;
            req.numwant = Some(50);
            req.event = match event.as_str() {
                "started" => AnnounceEvent::Started,
                "stopped" => AnnounceEvent::Stopped,
                "completed" => AnnounceEvent::Completed,
                _ => AnnounceEvent::None,
            };
            let r = client::announce(&url, &req, timeout.min(LONGEST_WAIT))
                .map_err(|e| Failure::new(Exit::Tracker, format!("{url}: {e}")))?;
            let peers: Vec<String> = r.peers.iter().map(ToString::to_string).collect();
            if as_json {
                let out = json!({
                    "interval": r.interval,
                    "min_interval": r.min_interval,
                    "seeders": r.complete,
                    "leechers": r.incomplete,
                    "peers": peers,
                    "warning": r.warning,
                    "external_ip": r.external_ip.map(|ip| ip.to_string()),
                });
                return print(&format!("{out}\n"));
            }
            let mut s = format!(
                "interval {} s, seeders {}, leechers {}, {} peers\n",
                r.interval,
                r.complete.map_or("?".into(), |n| n.to_string()),
                r.incomplete.map_or("?".into(), |n| n.to_string()),
                peers.len()
            );
            if let Some(w) = &r.warning {
                s.push_str(&format!("warning: {w}\n"));
            }
            for p in peers {
                s.push_str(&format!("  {p}\n"));
            }
            print(&s)
        }
        Command::Scrape {
            url,
            info_hashes,
            timeout,
            json: as_json,
        } => {
            let hashes = info_hashes
                .iter()
                .map(|h| parse_hash(h))
                .collect::<Result<Vec<_>, _>>()?;
            let entries = client::scrape(&url, &hashes, timeout.min(LONGEST_WAIT))
                .map_err(|e| Failure::new(Exit::Tracker, format!("{url}: {e}")))?;
            if as_json {
                let files: serde_json::Map<String, serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        (
                            e.info_hash.to_string(),
                            json!({"seeders": e.complete, "completed": e.downloaded, "leechers": e.incomplete}),
                        )
                    })
                    .collect();
                return print(&format!("{}\n", json!({ "files": files })));
            }
            let mut s = String::new();
            for e in entries {
                s.push_str(&format!(
                    "{}  seeders {}  completed {}  leechers {}\n",
                    e.info_hash, e.complete, e.downloaded, e.incomplete
                ));
            }
            print(&s)
        }
        Command::Serve {
            http,
            udp,
            interval,
            allow,
        } => {
            if http.is_empty() && udp.is_empty() {
                return Err(Failure::new(
                    Exit::Usage,
                    "give --http ADDR, --udp ADDR or both",
                ));
            }
            let allow_list = if allow.is_empty() {
                None
            } else {
                Some(
                    allow
                        .iter()
                        .map(|h| parse_hash(h))
                        .collect::<Result<_, _>>()?,
                )
            };
            let config = ServerConfig {
                interval: interval.max(Duration::from_secs(1)),
                allow_list,
                ..Default::default()
            };
            serve_tracker(config, http, udp)
        }
    }
}

/// Runs the tracker on a multi-threaded tokio runtime until Ctrl-C.
fn serve_tracker(
    config: ServerConfig,
    http: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Io, format!("runtime: {e}")))?;
    runtime.block_on(async move {
        let rt = TokioRuntime::current();
        let shared = Shared::new(&rt, config);
        let mut lines = Vec::new();
        for addr in http {
            let listener = rt
                .listen(addr)
                .await
                .map_err(|e| Failure::new(Exit::Io, format!("http {addr}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
            lines.push(format!("http://{local}/announce"));
            rt.spawn(Box::pin(serve_http(rt.clone(), shared.clone(), listener)));
        }
        for addr in udp {
            let socket = rt
                .bind_udp(addr)
                .await
                .map_err(|e| Failure::new(Exit::Io, format!("udp {addr}: {e}")))?;
            let local = socket
                .local_addr()
                .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
            lines.push(format!("udp://{local}"));
            rt.spawn(Box::pin(serve_udp(shared.clone(), socket)));
        }
        rt.spawn(Box::pin(expire(rt.clone(), shared)));
        print(&format!("serving {}\n", lines.join(" and ")))?;
        let _ = tokio::signal::ctrl_c().await;
        Ok(())
    })
}
