//! A `bittide daemon` process for tests, driven over its HTTP JSON API
//! (`docs/api.md`) on loopback: started with a bounded wait for the API,
//! stopped with SIGTERM (graceful) or SIGKILL, always killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{bittide, free_port, ChildGuard};

/// A running daemon and its API's base URL.
#[derive(Debug)]
pub struct Daemon {
    child: ChildGuard,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    /// The API's port.
    pub port: u16,
    log_path: PathBuf,
}

/// The CSRF header state-changing requests carry.
const CSRF: (&str, &str) = ("X-Bittide-Csrf", "1");

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// The JSON body of a response, `Null` if empty; panics with the API's
/// message on an error status.
fn json(r: Result<ureq::Response, ureq::Error>, what: &str) -> Value {
    match r {
        Ok(r) => {
            let text = r.into_string().unwrap_or_default();
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
        }
        Err(ureq::Error::Status(code, r)) => {
            panic!(
                "{what}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            )
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Daemon {
    /// Starts `bittide daemon` with its state in `state`, downloads in
    /// `download`, no DHT, peers on 127.0.0.1, and `extra` flags; returns
    /// once its API answers (failing after 30 s). Its log goes to
    /// `state/../daemon-N.log`.
    pub fn start(state: &Path, download: &Path, extra: &[&str]) -> Daemon {
        let port = free_port();
        let log_path = state.with_extension(format!("log.{port}"));
        let log = std::fs::File::create(&log_path).expect("daemon log");
        let child = Command::new(bittide())
            .args(["daemon", "--state"])
            .arg(state)
            .arg("--download-dir")
            .arg(download)
            .args(["--api", &format!("127.0.0.1:{port}")])
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--no-dht")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bittide daemon");
        let mut d = Daemon {
            child: ChildGuard(child),
            api: format!("http://127.0.0.1:{port}"),
            port,
            log_path: log_path.clone(),
        };
        let start = Instant::now();
        loop {
            // 401: up, with credentials (`--api-username`).
            match agent().get(&format!("{}/api/v1/stats", d.api)).call() {
                Ok(_) | Err(ureq::Error::Status(401, _)) => return d,
                Err(_) => {}
            }
            let exited = d.child.0.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "the daemon did not start ({exited:?}): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it has logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> Value {
        json(agent().get(&format!("{}{path}", self.api)).call(), path)
    }

    /// `GET path`: the status and the JSON, whatever the status (for
    /// requests that must fail).
    pub fn get_status(&self, path: &str) -> (u16, Value) {
        let r = agent().get(&format!("{}{path}", self.api)).call();
        let (code, r) = match r {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => panic!("{path}: {e}"),
        };
        let text = r.into_string().unwrap_or_default();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST path` with a JSON body (or none).
    pub fn post(&self, path: &str, body: Option<Value>) -> Value {
        let req = agent()
            .post(&format!("{}{path}", self.api))
            .set(CSRF.0, CSRF.1);
        let r = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        json(r, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Value {
        let r = agent()
            .delete(&format!("{}{path}", self.api))
            .set(CSRF.0, CSRF.1)
            .call();
        json(r, path)
    }

    /// Uploads a .torrent with options in the query (`paused=true&…`);
    /// its info-hash.
    pub fn add_file(&self, torrent: &Path, query: &str) -> String {
        let bytes = std::fs::read(torrent).expect("read the .torrent");
        let r = agent()
            .post(&format!("{}/api/v1/torrents?{query}", self.api))
            .set(CSRF.0, CSRF.1)
            .set("Content-Type", "application/x-bittorrent")
            .send_bytes(&bytes);
        json(r, "add")["info_hash"]
            .as_str()
            .expect("an info_hash")
            .to_owned()
    }

    /// The torrent list.
    pub fn list(&self) -> Vec<Value> {
        self.get("/api/v1/torrents")
            .as_array()
            .cloned()
            .expect("a list")
    }

    /// Polls the list until `done` holds (checking `always` on every
    /// list seen), failing after `limit` with the last list.
    pub fn wait(
        &self,
        what: &str,
        limit: Duration,
        always: impl Fn(&[Value]),
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let list = self.list();
            always(&list);
            if done(&list) {
                return list;
            }
            if start.elapsed() >= limit {
                let log = self.log();
                let from = (log.len().saturating_sub(4000)..log.len())
                    .find(|&i| log.is_char_boundary(i))
                    .unwrap_or(0);
                let tail = &log[from..];
                panic!("timed out waiting for {what}: {list:#?}\nthe daemon's log ends:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits for the exit (failing after `limit`); the exit
    /// code.
    pub fn terminate(mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < limit,
                "the daemon did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: nothing is saved on the way out.
    pub fn kill(mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }
}

/// The entry for `hash` in a list.
pub fn entry<'a>(list: &'a [Value], hash: &str) -> &'a Value {
    list.iter()
        .find(|t| t["info_hash"] == hash)
        .unwrap_or_else(|| panic!("{hash} is not listed: {list:#?}"))
}
