//! The harness the API tests share: a real session (tokio runtime, a
//! state folder in the temp dir, no peers) with the API in front of it on
//! loopback, and a raw HTTP/1.1 client, so that a test can send any
//! `Host`, `Origin` or body it likes.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bittide_api::ApiConfig;
use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
use bittide_driver::session::{Session, SessionConfig, SessionHandle};
use bittide_tokio::runtime::TokioRuntime;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any one exchange may take before the test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// A session with the API in front of it.
pub struct Daemon {
    pub api: SocketAddr,
    pub handle: SessionHandle<TokioRuntime>,
    pub dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    session: Option<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    pub async fn start(config: ApiConfig) -> Daemon {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bittide-api-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let session_config = SessionConfig::new(
            dir.join("state"),
            dir.join("downloads"),
            "127.0.0.1:0".parse().unwrap(),
        );
        let session = Session::open(TokioRuntime::current(), session_config)
            .await
            .unwrap();
        let handle = session.handle();
        let session = tokio::spawn(async move {
            session.run().await;
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bittide_api::serve(
            listener,
            handle.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Daemon {
            api,
            handle,
            dir,
            stop: Some(stop),
            server: Some(server),
            session: Some(session),
        }
    }

    pub fn host(&self) -> String {
        self.api.to_string()
    }

    /// A request with the right Host and the CSRF header.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("X-Bittide-Csrf", "1".to_string())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json".into()));
        }
        self.raw(method, path, &headers, body.as_bytes()).await
    }

    /// A request with the right Host and exactly these other headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Reply {
        let mut all = vec![("Host", self.host())];
        all.extend(headers.iter().cloned());
        send(self.api, method, path, &all, body).await
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let served = tokio::time::timeout(STEP, self.server.take().unwrap())
            .await
            .expect("the server stops when told");
        served.unwrap().unwrap();
        self.handle.shutdown();
        tokio::time::timeout(STEP, self.session.take().unwrap())
            .await
            .expect("the session stops when told")
            .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?}", self.json()))
            .to_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub async fn send(
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(to).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (413) and close before taking it all.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(STEP, exchange)
        .await
        .expect("answer in time");
    parse_reply(&raw)
}

pub fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// A single-file .torrent over `len` deterministic bytes (no tracker:
/// the session only keeps it).
pub fn small_torrent(name: &str, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + name.len()) as u8).collect();
    let mut builder = TorrentBuilder::single_file(name, len as u64);
    builder.set_piece_length(16 * 1024);
    let mut hasher = PieceHasher::new(builder.piece_length());
    hasher.update(&data);
    builder.build(&hasher.finish()).unwrap()
}

pub fn loopback() -> ApiConfig {
    ApiConfig::default()
}

pub fn with_login() -> ApiConfig {
    ApiConfig {
        username: Some("admin".into()),
        password: Some("correct horse".into()),
        ..ApiConfig::default()
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {token}")
}

/// An open `GET /api/v1/events`, read line by line.
pub struct EventStream {
    pub stream: TcpStream,
    pub buffered: Vec<u8>,
}

impl EventStream {
    pub async fn open(d: &Daemon) -> EventStream {
        let mut stream = TcpStream::connect(d.api).await.unwrap();
        let head = format!(
            "GET /api/v1/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            d.host()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut events = EventStream {
            stream,
            buffered: Vec::new(),
        };
        // The answer's head means the handler ran: it is subscribed.
        let head = events.line_until(|l| l.is_empty()).await;
        assert!(head[0].contains(" 200 "), "{head:?}");
        assert!(
            head.iter().any(|l| l
                .to_ascii_lowercase()
                .starts_with("content-type: text/event-stream")),
            "{head:?}"
        );
        events
    }

    /// Lines up to and including the first that satisfies `last`.
    pub async fn line_until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        tokio::time::timeout(STEP, async {
            loop {
                while let Some(eol) = self.buffered.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buffered.drain(..=eol).collect();
                    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                    let done = last(&line);
                    lines.push(line);
                    if done {
                        return;
                    }
                }
                let mut buf = [0u8; 4096];
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the event stream closed");
                self.buffered.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .expect("an event in time");
        lines
    }

    /// The next `data:` object whose `type` is `kind` (chunk-size lines
    /// and other events are skipped).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        for _ in 0..1000 {
            let lines = self.line_until(|l| l.starts_with("data:")).await;
            let data = lines.last().unwrap().trim_start_matches("data:").trim();
            let event: Value = serde_json::from_str(data).unwrap();
            assert!(event["type"].is_string(), "{event}");
            if event["type"] == kind {
                return event;
            }
        }
        panic!("no {kind} event among the next 1000");
    }
}
