//! The torrent and session endpoints over loopback against a real
//! session: add (file, base64, magnet, URL), list and filters, details,
//! per-torrent changes, bulk, settings, stats, events, errors.

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_by_magnet_and_by_url() {
    let d = Daemon::start(loopback()).await;
    let hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({
                "magnet": format!("magnet:?xt=urn:btih:{hash}&dn=from-magnet"),
                "paused": true,
            })),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    assert_eq!(reply.json()["info_hash"], hash);
    let t = d
        .call("GET", &format!("/api/v1/torrents/{hash}"), None)
        .await
        .json();
    assert_eq!(t["name"], "from-magnet");
    assert!(t["files"].as_array().unwrap().is_empty());

    // A .torrent served over loopback HTTP, fetched by the session.
    let torrent = small_torrent("over-http.bin", 16 * 1024);
    let web = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_addr = web.local_addr().unwrap();
    let served = torrent.clone();
    let server = tokio::spawn(async move {
        let (mut conn, _) = web.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed early");
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            served.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&served).await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({ "url": format!("http://{web_addr}/over-http.torrent") })),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let request = tokio::time::timeout(STEP, server).await.unwrap().unwrap();
    assert!(request.starts_with("GET /over-http.torrent "), "{request}");

    // Nothing listens there: 502 with the reason.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({ "url": format!("http://{dead_addr}/x.torrent") })),
        )
        .await;
    assert_eq!(reply.status, 502, "{:?}", reply.json());
    assert!(
        reply.error().starts_with("could not fetch the torrent"),
        "{}",
        reply.error()
    );

    let reply = d
        .call(
            "POST",
            "/api/v1/torrents",
            Some(&serde_json::json!({ "url": "file:///etc/passwd" })),
        )
        .await;
    assert_eq!(reply.status, 400);

    let list = d.call("GET", "/api/v1/torrents", None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    d.stop().await;
}
