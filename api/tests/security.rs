//! The guard in front of the API, over loopback against a real session:
//! Host (DNS rebinding), login, CSRF, body caps, the bind rule.

use bittide_api::ApiConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::*;

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
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
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
