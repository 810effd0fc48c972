//! The API over loopback against a real session (tokio runtime, a state
//! folder in the temp dir, no peers), through a raw HTTP/1.1 client so
//! that a test can send any `Host`, `Origin` or body it likes.

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
const STEP: Duration = Duration::from_secs(20);

/// A session with the API in front of it.
struct Daemon {
    api: SocketAddr,
    handle: SessionHandle<TokioRuntime>,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    session: Option<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    async fn start(config: ApiConfig) -> Daemon {
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

    fn host(&self) -> String {
        self.api.to_string()
    }

    /// A request with the right Host and the CSRF header.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("X-Bittide-Csrf", "1".to_string())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json".into()));
        }
        self.raw(method, path, &headers, body.as_bytes()).await
    }

    /// A request with the right Host and exactly these other headers.
    async fn raw(
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

    async fn stop(mut self) {
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
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?}", self.json()))
            .to_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
async fn send(
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

fn parse_reply(raw: &[u8]) -> Reply {
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

fn dechunk(mut data: &[u8]) -> Vec<u8> {
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
fn small_torrent(name: &str, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + name.len()) as u8).collect();
    let mut builder = TorrentBuilder::single_file(name, len as u64);
    builder.set_piece_length(16 * 1024);
    let mut hasher = PieceHasher::new(builder.piece_length());
    hasher.update(&data);
    builder.build(&hasher.finish()).unwrap()
}

fn loopback() -> ApiConfig {
    ApiConfig::default()
}

fn with_login() -> ApiConfig {
    ApiConfig {
        username: Some("admin".into()),
        password: Some("correct horse".into()),
        ..ApiConfig::default()
    }
}

fn basic(user: &str, pass: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_or_missing_host_is_refused() {
    let d = Daemon::start(loopback()).await;
    let port = d.api.port();
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
    ] {
        let reply = send(
            d.api,
            "GET",
            "/api/v1/torrents",
            &[("Host", host.clone())],
            b"",
        )
        .await;
        assert_eq!(reply.status, 403, "Host {host}");
        assert!(reply.error().contains("DNS rebinding"), "{}", reply.error());
    }
    // HTTP/1.0 without Host.
    let raw = tokio::time::timeout(STEP, async {
        let mut s = TcpStream::connect(d.api).await.unwrap();
        s.write_all(b"GET /api/v1/torrents HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw
    })
    .await
    .unwrap();
    assert_eq!(parse_reply(&raw).status, 403);

    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        d.host(),
    ] {
        let reply = send(
            d.api,
            "GET",
            "/api/v1/torrents",
            &[("Host", host.clone())],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "Host {host}");
        assert_eq!(reply.json(), serde_json::json!([]));
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_host_names_are_accepted() {
    let d = Daemon::start(ApiConfig {
        allowed_hosts: vec!["nas.local".into()],
        ..loopback()
    })
    .await;
    let reply = send(
        d.api,
        "GET",
        "/api/v1/stats",
        &[("Host", "nas.local".into())],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["torrents"], 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_need_the_csrf_header() {
    let d = Daemon::start(loopback()).await;
    let body = br#"{"all": true}"#;
    let json = ("Content-Type", "application/json".to_string());

    let refused = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            std::slice::from_ref(&json),
            body,
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.error().contains("X-Bittide-Csrf"),
        "{}",
        refused.error()
    );

    let csrf = ("X-Bittide-Csrf", "1".to_string());
    let accepted = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            &[json.clone(), csrf.clone()],
            body,
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    assert_eq!(accepted.json(), serde_json::json!({"info_hashes": []}));

    // A browser on another origin: refused even with the header.
    for (name, value) in [
        ("Origin", "http://evil.example".to_string()),
        ("Origin", "null".to_string()),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ] {
        let reply = d
            .raw(
                "POST",
                "/api/v1/torrents/pause",
                &[json.clone(), csrf.clone(), (name, value.clone())],
                body,
            )
            .await;
        assert_eq!(reply.status, 403, "{name}: {value}");
        assert!(reply.error().contains("cross-origin"), "{}", reply.error());
    }
    // The same origin (the web UI) is fine.
    let origin = ("Origin", format!("http://{}", d.host()));
    let reply = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            &[json, csrf, origin],
            body,
        )
        .await;
    assert_eq!(reply.status, 200);

    // Reading needs no header.
    assert_eq!(d.raw("GET", "/api/v1/settings", &[], b"").await.status, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_basic_auth_or_cookie() {
    let d = Daemon::start(with_login()).await;
    let csrf = ("X-Bittide-Csrf", "1".to_string());
    let json = ("Content-Type", "application/json".to_string());

    let anonymous = d.raw("GET", "/api/v1/torrents", &[], b"").await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic")));
    let wrong = ("Authorization", basic("admin", "wrong"));
    assert_eq!(
        d.raw("GET", "/api/v1/torrents", &[wrong], b"").await.status,
        401
    );
    let right = ("Authorization", basic("admin", "correct horse"));
    assert_eq!(
        d.raw("GET", "/api/v1/torrents", std::slice::from_ref(&right), b"")
            .await
            .status,
        200
    );
    // Basic auth is enough for a change (a cross-site form cannot set it).
    let paused = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            &[right, json.clone()],
            br#"{"all": true}"#,
        )
        .await;
    assert_eq!(paused.status, 200);

    let bad_login = d
        .raw(
            "POST",
            "/api/v1/login",
            &[csrf.clone(), json.clone()],
            br#"{"username": "admin", "password": "nope"}"#,
        )
        .await;
    assert_eq!(bad_login.status, 401);
    assert_eq!(bad_login.error(), "wrong username or password");
    let login = d
        .raw(
            "POST",
            "/api/v1/login",
            &[csrf.clone(), json.clone()],
            br#"{"username": "admin", "password": "correct horse"}"#,
        )
        .await;
    assert_eq!(login.status, 200);
    let set_cookie = login.header("set-cookie").expect("a cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = ("Cookie", set_cookie.split(';').next().unwrap().to_owned());

    assert_eq!(
        d.raw("GET", "/api/v1/stats", std::slice::from_ref(&cookie), b"")
            .await
            .status,
        200
    );
    // The cookie alone does not change state: a browser sends it for
    // any page that can make it send a request.
    let body = br#"{"all": true}"#;
    let no_header = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            &[cookie.clone(), json.clone()],
            body,
        )
        .await;
    assert_eq!(no_header.status, 403);
    let with_header = d
        .raw(
            "POST",
            "/api/v1/torrents/pause",
            &[cookie.clone(), json.clone(), csrf.clone()],
            body,
        )
        .await;
    assert_eq!(with_header.status, 200);

    let out = d
        .raw("POST", "/api/v1/logout", &[cookie.clone(), csrf], b"")
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        d.raw("GET", "/api/v1/stats", &[cookie], b"").await.status,
        401
    );
    let forged = ("Cookie", "bittide_session=00112233".to_string());
    assert_eq!(
        d.raw("GET", "/api/v1/stats", &[forged], b"").await.status,
        401
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_without_credentials_is_refused() {
    let config = ApiConfig {
        bind: "0.0.0.0:9850".parse().unwrap(),
        ..ApiConfig::default()
    };
    let err = config.check().unwrap_err();
    assert!(err.to_string().contains("--api-password"), "{err}");
    assert!(with_login().check().is_ok());
    let lan = ApiConfig {
        bind: "0.0.0.0:9850".parse().unwrap(),
        ..with_login()
    };
    assert!(lan.check().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let d = Daemon::start(ApiConfig {
        max_body: 4096,
        ..loopback()
    })
    .await;
    let csrf = ("X-Bittide-Csrf", "1".to_string());
    let torrent = ("Content-Type", "application/x-bittorrent".to_string());
    let big = vec![b'x'; 64 * 1024];
    let reply = d
        .raw(
            "POST",
            "/api/v1/torrents",
            &[csrf.clone(), torrent.clone()],
            &big,
        )
        .await;
    assert_eq!(reply.status, 413);
    assert!(reply.error().contains("4096"), "{}", reply.error());

    // Without a Content-Length, caught while reading.
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let reply = d
        .raw(
            "POST",
            "/api/v1/torrents",
            &[
                csrf.clone(),
                torrent,
                ("Transfer-Encoding", "chunked".into()),
            ],
            &chunked,
        )
        .await;
    assert_eq!(reply.status, 413);

    // A JSON body over its 1 MiB cap.
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let huge = vec![b' '; (1 << 20) + 1];
    let reply = d
        .raw(
            "POST",
            &format!("/api/v1/torrents/{hash}/limits"),
            &[csrf, ("Content-Type", "application/json".into())],
            &huge,
        )
        .await;
    assert_eq!(reply.status, 413);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hashes_routes_and_bodies() {
    let d = Daemon::start(loopback()).await;
    for path in [
        "/api/v1/torrents/xyz",
        "/api/v1/torrents/0123456789abcdef0123456789abcdef0123456",
        "/api/v1/torrents/g123456789abcdef0123456789abcdef01234567",
    ] {
        let reply = d.call("GET", path, None).await;
        assert_eq!(reply.status, 400, "{path}");
        assert!(
            reply.error().contains("malformed info-hash"),
            "{}",
            reply.error()
        );
    }
    let reply = d.call("POST", "/api/v1/torrents/nothex/pause", None).await;
    assert_eq!(reply.status, 400);

    let unknown = "0123456789abcdef0123456789abcdef01234567";
    for (method, path) in [
        ("GET", format!("/api/v1/torrents/{unknown}")),
        ("POST", format!("/api/v1/torrents/{unknown}/pause")),
        ("DELETE", format!("/api/v1/torrents/{unknown}")),
    ] {
        let reply = d.call(method, &path, None).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.error(), format!("no torrent {unknown}"));
    }

    let reply = d.call("GET", "/api/v1/nothing", None).await;
    assert_eq!(reply.status, 404);
    assert!(reply.error().contains("no such endpoint"));
    let reply = d.call("PUT", "/api/v1/stats", None).await;
    assert_eq!(reply.status, 405);
    assert!(reply.json()["error"].is_string());

    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({"magnet": 3})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("bad JSON body"), "{}", reply.error());
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({"paused": true})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.error().contains("exactly one of"),
        "{}",
        reply.error()
    );
    let reply = d.call("GET", "/api/v1/torrents?state=sleeping", None).await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("state"), "{}", reply.error());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_torrent_gets_the_session_message() {
    let d = Daemon::start(loopback()).await;
    let csrf = ("X-Bittide-Csrf", "1".to_string());
    let torrent = ("Content-Type", "application/x-bittorrent".to_string());
    for hostile in [&b"not bencode"[..], b"d4:infod6:lengthi-5eee", b""] {
        let reply = d
            .raw(
                "POST",
                "/api/v1/torrents",
                &[csrf.clone(), torrent.clone()],
                hostile,
            )
            .await;
        assert_eq!(reply.status, 400);
        assert!(
            reply.error().starts_with("invalid torrent: "),
            "{}",
            reply.error()
        );
    }
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({"magnet": "magnet:?dn=no-hash"})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.error().starts_with("invalid torrent: "),
        "{}",
        reply.error()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_control_and_remove() {
    let d = Daemon::start(loopback()).await;
    let csrf = ("X-Bittide-Csrf", "1".to_string());

    // Events first, so the add is seen.
    let mut events = EventStream::open(&d).await;

    let first = small_torrent("first.bin", 40 * 1024);
    let reply = d
        .raw(
            "POST",
            "/api/v1/torrents?paused=true&category=linux&tags=a,b",
            &[
                csrf.clone(),
                ("Content-Type", "application/x-bittorrent".into()),
            ],
            &first,
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let hash = reply.json()["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 40);

    let added = events.next_of_type("added").await;
    assert_eq!(added["info_hash"], hash.as_str());
    assert_eq!(added["name"], "first.bin");

    // The same again: 409.
    let again = d
        .raw(
            "POST",
            "/api/v1/torrents",
            &[
                csrf.clone(),
                ("Content-Type", "application/x-bittorrent".into()),
            ],
            &first,
        )
        .await;
    assert_eq!(again.status, 409);

    // A second one as base64 JSON.
    let second = small_torrent("second.bin", 20 * 1024);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&second);
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({"torrent_base64": encoded, "sequential": true})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let second_hash = reply.json()["info_hash"].as_str().unwrap().to_owned();

    let list = d.call("GET", "/api/v1/torrents", None).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let t = list
        .iter()
        .find(|t| t["info_hash"] == hash.as_str())
        .unwrap();
    assert_eq!(t["name"], "first.bin");
    assert_eq!(t["state"], "paused");
    assert_eq!(t["size"], 40 * 1024);
    assert_eq!(t["category"], "linux");
    assert_eq!(t["tags"], serde_json::json!(["a", "b"]));
    for field in [
        "progress",
        "downloaded",
        "uploaded",
        "download_rate",
        "upload_rate",
        "peers",
        "eta",
        "save_path",
        "error",
    ] {
        assert!(t.get(field).is_some(), "{field} missing in {t}");
    }
    assert!(t["error"].is_null());

    // Filters.
    let linux = d
        .call("GET", "/api/v1/torrents?category=linux", None)
        .await
        .json();
    assert_eq!(linux.as_array().unwrap().len(), 1);
    let by_name = d
        .call("GET", "/api/v1/torrents?q=SECOND", None)
        .await
        .json();
    assert_eq!(by_name[0]["info_hash"], second_hash.as_str());
    let tagged = d
        .call("GET", "/api/v1/torrents?tag=b&state=paused", None)
        .await
        .json();
    assert_eq!(tagged.as_array().unwrap().len(), 1);

    // Details.
    let details = d
        .call("GET", &format!("/api/v1/torrents/{hash}"), None)
        .await;
    assert_eq!(details.status, 200);
    let details = details.json();
    assert_eq!(details["piece_count"], 3);
    assert_eq!(details["piece_length"], 16 * 1024);
    assert_eq!(details["files"][0]["path"], "first.bin");
    assert_eq!(details["files"][0]["priority"], "normal");
    assert!(details["magnet"]
        .as_str()
        .unwrap()
        .starts_with("magnet:?xt=urn:btih:"));
    let pieces = base64::engine::general_purpose::STANDARD
        .decode(details["pieces"].as_str().unwrap())
        .unwrap();
    assert_eq!(pieces.len(), 1);

    // Per-torrent changes.
    let path = |what: &str| format!("/api/v1/torrents/{hash}/{what}");
    let reply = d
        .call(
            "POST",
            &path("files"),
            Some(&serde_json::json!({"priorities": [{"index": 0, "priority": "skip"}]})),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let reply = d
        .call(
            "POST",
            &path("files"),
            Some(&serde_json::json!({"priorities": [{"index": 5, "priority": "high"}]})),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = d
        .call(
            "POST",
            &path("limits"),
            Some(&serde_json::json!({"upload": 1000})),
        )
        .await;
    assert_eq!(reply.status, 204);
    let reply = d
        .call(
            "POST",
            &path("options"),
            Some(&serde_json::json!({"sequential": true, "category": null, "tags": ["x"]})),
        )
        .await;
    assert_eq!(reply.status, 204);
    let t = d
        .call("GET", &format!("/api/v1/torrents/{hash}"), None)
        .await
        .json();
    assert_eq!(t["files"][0]["priority"], "skip");
    assert_eq!(t["upload_limit"], 1000);
    assert_eq!(t["download_limit"], 0);
    assert_eq!(t["sequential"], true);
    assert!(t["category"].is_null());
    assert_eq!(t["tags"], serde_json::json!(["x"]));

    // Resume, then pause everything.
    assert_eq!(d.call("POST", &path("resume"), None).await.status, 204);
    let t = d
        .call("GET", &format!("/api/v1/torrents/{hash}"), None)
        .await
        .json();
    assert_ne!(t["state"], "paused");
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents/pause",
            Some(&serde_json::json!({"hashes": [hash, second_hash]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let list = d
        .call("GET", "/api/v1/torrents?state=paused", None)
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(d.call("POST", &path("reannounce"), None).await.status, 204);

    // Settings and stats.
    let settings = d
        .call(
            "PATCH",
            "/api/v1/settings",
            Some(&serde_json::json!({"active_downloads": 3, "upload_rate": 5000})),
        )
        .await;
    assert_eq!(settings.status, 200);
    assert_eq!(settings.json()["active_downloads"], 3);
    let settings = d
        .call(
            "PATCH",
            "/api/v1/settings",
            Some(&serde_json::json!({"active_downloads": null})),
        )
        .await
        .json();
    assert!(settings["active_downloads"].is_null());
    assert_eq!(settings["upload_rate"], 5000);
    let stats = d.call("GET", "/api/v1/stats", None).await.json();
    assert_eq!(stats["torrents"], 2);
    assert_eq!(stats["paused"], 2);

    // Remove one.
    let reply = d
        .call(
            "DELETE",
            &format!("/api/v1/torrents/{hash}?delete_data=true"),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    let removed = events.next_of_type("removed").await;
    assert_eq!(removed["info_hash"], hash.as_str());
    assert_eq!(
        d.call("GET", &format!("/api/v1/torrents/{hash}"), None)
            .await
            .status,
        404
    );
    let list = d.call("GET", "/api/v1/torrents", None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);

    drop(events);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_ends_on_shutdown() {
    let d = Daemon::start(loopback()).await;
    let mut events = EventStream::open(&d).await;
    d.stop().await;
    // The server closed the stream instead of waiting on it forever.
    let rest = tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 1024];
        loop {
            match events.stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "the stream stays open after shutdown");
}

/// An open `GET /api/v1/events`, read line by line.
struct EventStream {
    stream: TcpStream,
    buffered: Vec<u8>,
}

impl EventStream {
    async fn open(d: &Daemon) -> EventStream {
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
    async fn line_until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
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
    async fn next_of_type(&mut self, kind: &str) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_rename_and_options() {
    let d = Daemon::start(loopback()).await;
    let csrf = ("X-Bittide-Csrf", "1".to_string());
    let reply = d
        .raw(
            "POST",
            "/api/v1/torrents?paused=true",
            &[csrf, ("Content-Type", "application/x-bittorrent".into())],
            &small_torrent("movable.bin", 20 * 1024),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let hash = reply.json()["info_hash"].as_str().unwrap().to_owned();
    let path = |what: &str| format!("/api/v1/torrents/{hash}/{what}");

    let elsewhere = d.dir.join("elsewhere");
    let reply = d
        .call(
            "POST",
            &path("move"),
            Some(&serde_json::json!({ "save_path": elsewhere })),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let reply = d
        .call(
            "POST",
            &path("move"),
            Some(&serde_json::json!({ "save_path": "relative/dir" })),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("absolute"), "{}", reply.error());

    let reply = d
        .call(
            "POST",
            &path("rename"),
            Some(&serde_json::json!({ "name": "../up" })),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = d
        .call(
            "POST",
            &path("rename"),
            Some(&serde_json::json!({ "name": "renamed.bin" })),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);

    let reply = d
        .call(
            "POST",
            &path("options"),
            Some(&serde_json::json!({ "first_last_piece": true, "queue_position": 0 })),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let reply = d
        .call(
            "POST",
            &path("options"),
            Some(&serde_json::json!({ "colour": "red" })),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("colour"), "{}", reply.error());

    let t = d
        .call("GET", &format!("/api/v1/torrents/{hash}"), None)
        .await
        .json();
    assert_eq!(t["save_path"], elsewhere.to_string_lossy().as_ref());
    assert_eq!(t["first_last_piece"], true);
    assert_eq!(t["queue_position"], 0);
    assert_eq!(t["files"][0]["path"], "renamed.bin", "{t}");
    d.stop().await;
}
