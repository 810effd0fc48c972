//! What the remote commands (`add`, `list`, `show`, `pause`, `resume`,
//! `remove`, `prio`, `limits`, `stats`) share: the `--api` options and a
//! blocking HTTP client of the daemon's API (`docs/api.md`), the JSON it
//! answers, and info-hashes abbreviated to a unique prefix.
//!
//! The client follows the API's rules: the `X-Bittide-Csrf` header on
//! every state-changing request, HTTP Basic auth when credentials are
//! given, and the API's `{"error": …}` message as the failure, with an
//! exit code by kind.

mod table;

use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub(crate) use self::table::{eta, percent, rate, truncate, Table};
use crate::exit::{Exit, Failure};

/// The API a fresh `bittide daemon` serves.
const DEFAULT_API: &str = "http://127.0.0.1:9850";
/// Fewest hex digits of an abbreviated info-hash: 24 bits keep prefixes
/// unique in any session a person manages, and short enough to type.
const MIN_PREFIX: usize = 6;
/// How long connecting may take (the daemon is usually on this machine).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take: an add by URL waits for the daemon
/// to fetch the .torrent (it gives up after 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the daemon is and how to log in to it.
#[derive(clap::Args, Debug)]
pub(crate) struct RemoteArgs {
    /// The daemon's API.
    #[arg(long, value_name = "URL", env = "BITTIDE_API", default_value = DEFAULT_API)]
    api: String,
    /// API login name (when the daemon has one).
    #[arg(long, value_name = "USER", env = "BITTIDE_API_USERNAME")]
    api_username: Option<String>,
    /// API password.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "BITTIDE_API_PASSWORD",
        hide_env_values = true
    )]
    api_password: Option<String>,
}

impl RemoteArgs {
    /// A client of the API these options name.
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let base = self.api.trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        let auth = match (&self.api_username, &self.api_password) {
            (Some(user), Some(pass)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            )),
            (None, None) => None,
            _ => {
                return Err(Failure::new(
                    Exit::Usage,
                    "give both --api-username and --api-password, or neither",
                ))
            }
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build();
        Ok(Client { agent, base, auth })
    }
}

/// A request body.
pub(crate) enum Body<'a> {
    /// None.
    Empty,
    /// JSON.
    Json(serde_json::Value),
    /// A .torrent file's bytes.
    Torrent(&'a [u8]),
}

/// A blocking client of one daemon's API.
pub(crate) struct Client {
    agent: ureq::Agent,
    /// `http://host:port`, no trailing slash.
    base: String,
    /// The `Authorization` header, with credentials.
    auth: Option<String>,
}

/// The API's error body.
#[derive(Deserialize)]
struct ErrorJson {
    error: String,
}

impl Client {
    /// `GET /api/v1/<path>`: the answer's body.
    pub(crate) fn get(&self, path: &str) -> Result<String, Failure> {
        self.call("GET", path, &[], Body::Empty)
    }

    /// `GET /api/v1/<path>`, parsed.
    pub(crate) fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        let body = self.get(path)?;
        self.parse(&body)
    }

    /// A state-changing request (`POST`, `PATCH`, `DELETE`) with the CSRF
    /// header; the answer's body (empty for `204`).
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<String, Failure> {
        self.call(method, path, query, body)
    }

    /// Parses an answer of the API.
    pub(crate) fn parse<T: DeserializeOwned>(&self, body: &str) -> Result<T, Failure> {
        serde_json::from_str(body).map_err(|e| {
            Failure::new(
                Exit::Io,
                format!("{} answered what bittide cannot read: {e}", self.base),
            )
        })
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<String, Failure> {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut request = self.agent.request(method, &url);
        for (k, v) in query {
            request = request.query(k, v);
        }
        if method != "GET" {
            request = request.set(bittide_api::CSRF_HEADER, "1");
        }
        if let Some(auth) = &self.auth {
            request = request.set("Authorization", auth);
        }
        let answer = match body {
            Body::Empty => request.call(),
            Body::Json(v) => request
                .set("Content-Type", "application/json")
                .send_string(&v.to_string()),
            Body::Torrent(bytes) => request
                .set("Content-Type", "application/x-bittorrent")
                .send_bytes(bytes),
        };
        match answer {
            Ok(response) => response
                .into_string()
                .map_err(|e| Failure::new(Exit::Io, format!("reading the answer of {url}: {e}"))),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// What went wrong, said as the API said it, with an exit code by
    /// kind.
    fn failure(&self, e: ureq::Error) -> Failure {
        match e {
            ureq::Error::Status(status, response) => {
                let text = response.into_string().unwrap_or_default();
                let message = serde_json::from_str::<ErrorJson>(&text)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| format!("{} answered HTTP {status}", self.base));
                let (exit, message) = match status {
                    400 if message.starts_with("invalid torrent") => (Exit::BadTorrent, message),
                    413 => (Exit::BadTorrent, message),
                    401 => (
                        Exit::Usage,
                        format!(
                            "{message} (pass --api-username and --api-password, or set \
                             BITTIDE_API_USERNAME and BITTIDE_API_PASSWORD)"
                        ),
                    ),
                    400..=408 | 415 => (Exit::Usage, message),
                    409 => (Exit::BadInput, message),
                    _ => (Exit::Io, message),
                };
                Failure::new(exit, message)
            }
            ureq::Error::Transport(t) => match t.kind() {
                ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                    Failure::new(Exit::Usage, format!("--api {}: {t}", self.base))
                }
                ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => Failure::new(
                    Exit::NoAnswer,
                    format!(
                        "cannot connect to the daemon at {}: is the daemon running? \
                         (bittide daemon)",
                        self.base
                    ),
                ),
                _ => Failure::new(Exit::NoAnswer, format!("{}: {t}", self.base)),
            },
        }
    }

    /// Full info-hashes for what the user typed: 40 hex digits, or a
    /// prefix of at least [`MIN_PREFIX`] that matches exactly one torrent
    /// in the daemon's list (fetched only when needed).
    pub(crate) fn resolve(&self, typed: &[String]) -> Result<Vec<String>, Failure> {
        let mut list: Option<Vec<TorrentJson>> = None;
        let mut out = Vec::with_capacity(typed.len());
        for t in typed {
            let t = t.to_ascii_lowercase();
            if t.len() < MIN_PREFIX || t.len() > 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failure::new(
                    Exit::Usage,
                    format!(
                        "`{t}` is not an info-hash or the start of one \
                         ({MIN_PREFIX} to 40 hex digits)"
                    ),
                ));
            }
            if t.len() == 40 {
                out.push(t);
                continue;
            }
            let list = match &mut list {
                Some(l) => l,
                None => list.insert(self.get_json("torrents")?),
            };
            let matches: Vec<&str> = list
                .iter()
                .map(|x| x.info_hash.as_str())
                .filter(|h| h.starts_with(&t))
                .collect();
            match matches[..] {
                [one] => out.push(one.to_owned()),
                [] => return Err(Failure::new(Exit::Usage, format!("no torrent {t}…"))),
                _ => {
                    return Err(Failure::new(
                        Exit::Usage,
                        format!("{t}… matches several torrents: {}", matches.join(", ")),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// One torrent as `GET /api/v1/torrents` lists it (the fields the CLI
/// shows; the API has more, and `--json` passes them all through).
#[derive(Debug, Deserialize)]
pub(crate) struct TorrentJson {
    pub(crate) info_hash: String,
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) progress: f64,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) wanted: u64,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) download_rate: u64,
    pub(crate) upload_rate: u64,
    pub(crate) peers: usize,
    pub(crate) eta: Option<u64>,
    pub(crate) save_path: String,
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) ratio: f64,
    #[serde(default)]
    pub(crate) upload_limit: u64,
    #[serde(default)]
    pub(crate) download_limit: u64,
}

/// Writes the API's JSON as it came, ending in a newline.
pub(crate) fn print_raw(body: &str) -> Result<(), Failure> {
    let mut text = body.trim_end().to_owned();
    text.push('\n');
    crate::output::print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        RemoteArgs {
            // Nothing listens on port 1 of loopback.
            api: "127.0.0.1:1/".into(),
            api_username: None,
            api_password: None,
        }
        .client()
        .unwrap()
    }

    #[test]
    fn an_address_without_scheme_is_http() {
        assert_eq!(client().base, "http://127.0.0.1:1");
    }

    #[test]
    fn half_credentials_are_refused() {
        let args = RemoteArgs {
            api: DEFAULT_API.into(),
            api_username: Some("admin".into()),
            api_password: None,
        };
        assert_eq!(args.client().err().map(|f| f.exit), Some(Exit::Usage));
    }

    #[test]
    fn no_daemon_says_to_start_one() {
        let f = client().get("stats").unwrap_err();
        assert_eq!(f.exit, Exit::NoAnswer);
        assert!(f.message.contains("bittide daemon"), "{}", f.message);
    }

    #[test]
    fn api_errors_keep_their_message_and_get_an_exit_code_by_kind() {
        let answer = |status: u16, error: &str| {
            let body = serde_json::json!({ "error": error }).to_string();
            let response = ureq::Response::new(status, "", &body).unwrap();
            client().failure(ureq::Error::Status(status, response))
        };
        let f = answer(400, "invalid torrent: bad bencode");
        assert_eq!(
            (f.exit, f.message.as_str()),
            (Exit::BadTorrent, "invalid torrent: bad bencode")
        );
        assert_eq!(answer(413, "too large").exit, Exit::BadTorrent);
        assert_eq!(answer(404, "no torrent x").exit, Exit::Usage);
        assert_eq!(answer(409, "already in").exit, Exit::BadInput);
        assert_eq!(answer(503, "shutting down").exit, Exit::Io);
        let login = answer(401, "wrong username or password");
        assert_eq!(login.exit, Exit::Usage);
        assert!(
            login.message.contains("--api-password"),
            "{}",
            login.message
        );
        // An answer that is not the API's JSON still says who answered.
        let response = ureq::Response::new(502, "Bad Gateway", "<html>").unwrap();
        let f = client().failure(ureq::Error::Status(502, response));
        assert!(f.message.contains("HTTP 502"), "{}", f.message);
    }

    #[test]
    fn bad_hashes_are_refused_before_asking() {
        // Neither is looked up: the client has no daemon to ask.
        for typed in ["abc", "xyz123", &"a".repeat(41)] {
            let f = client().resolve(&[typed.to_owned()]).unwrap_err();
            assert_eq!(f.exit, Exit::Usage, "{typed}");
        }
        let full = "A".repeat(40);
        assert_eq!(client().resolve(&[full]).unwrap(), ["a".repeat(40)]);
    }
}
