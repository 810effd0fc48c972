//! Web seed requests (BEP 19) for the driver loop: the byte ranges of an
//! [`Output::WebSeed`](bittide_core::engine::Output::WebSeed) fetched
//! over HTTP(S) with `Range` headers, through one ureq agent per loop
//! (the same client the trackers use), so connections to a seed are kept
//! alive and reused from run to run. Blocking: the loop calls it on its
//! blocking pool.

use std::io::Read;
use std::time::Duration;

use bittide_core::webseed::{WebRequest, WebSeedError};
use bytes::Bytes;

/// A server that accepts nothing for this long is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A server that sends nothing for this long has stalled: the run is
/// given back and other sources take it.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest one range request may take, whatever trickles in: the
/// run goes back to other sources.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per host (runs in flight to one seed, and a few
/// seeds on one host).
const IDLE_PER_HOST: usize = 8;

/// The HTTP client of a loop's web seeds.
#[derive(Clone, Debug)]
pub struct WebClient {
    agent: ureq::Agent,
}

impl Default for WebClient {
    fn default() -> WebClient {
        WebClient::new()
    }
}

impl WebClient {
    /// A client with its own connection pool.
    pub fn new() -> WebClient {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(READ_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .max_idle_connections_per_host(IDLE_PER_HOST)
            .user_agent(concat!("bittide/", env!("CARGO_PKG_VERSION")))
            .build();
        WebClient { agent }
    }

    /// Fetches `requests` in order: every body, or the first failure.
    pub fn fetch(&self, requests: &[WebRequest]) -> Result<Vec<Bytes>, WebSeedError> {
        requests.iter().map(|r| self.get_range(r)).collect()
    }

    /// One range: a 206 answer, or a 200 for a range from the file's first
    /// byte (a server that ignores `Range` sends the file from its
    /// start: the run's bytes are its first bytes).
    fn get_range(&self, r: &WebRequest) -> Result<Bytes, WebSeedError> {
        let length = r.range.end.saturating_sub(r.range.start);
        let header = format!("bytes={}-{}", r.range.start, r.range.end.saturating_sub(1));
        let response = match self.agent.get(&r.url).set("Range", &header).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, _)) => return Err(WebSeedError::Status(status)),
            Err(ureq::Error::Transport(t)) => {
                return Err(WebSeedError::Unreachable(crate::tracker::describe(&t)))
            }
        };
        match response.status() {
            206 => {}
            200 if r.range.start == 0 => {}
            200 => return Err(WebSeedError::IgnoresRange),
            status => return Err(WebSeedError::Status(status)),
        }
        let mut body = Vec::with_capacity(usize::try_from(length).unwrap_or(0).min(64 << 20));
        response
            .into_reader()
            .take(length)
            .read_to_end(&mut body)
            .map_err(|e| WebSeedError::Unreachable(e.to_string()))?;
        if (body.len() as u64) < length {
            return Err(WebSeedError::ShortBody {
                expected: length,
                got: body.len() as u64,
            });
        }
        Ok(Bytes::from(body))
    }
}
