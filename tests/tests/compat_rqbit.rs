//! The rqbit dialect under `/rqbit` (issue 16's "also"): the exact calls
//! Sonarr's "RQBit" download client makes (`RQbitProxy.cs`), with its
//! headers (no credentials, no CSRF header, the body of an add as raw
//! bytes), against a `bittide daemon` on loopback downloading from
//! libtorrent seeders: a .torrent file and a magnet link go to
//! completion, the paths Sonarr derives are right, the data is
//! byte-identical, and forget/delete do what they say. Then what Sonarr
//! cannot do but a web page could try: a cross-site write is refused.
//!
//! Needs python3-libtorrent and opentracker (installed by
//! `./scripts/test`). Every process is bounded and killed on the way out.

use std::time::{Duration, Instant};

use bittide_tests::compat::{make, same_files, seed};
use bittide_tests::daemon::Daemon;
use bittide_tests::TempDir;
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// `(status, JSON body)` of a request as Sonarr sends it.
fn call(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let (status, text) = match r {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("transport error: {e}"),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(d: &Daemon, path: &str) -> (u16, Value) {
    call(agent().get(&format!("{}{path}", d.api)).call())
}

fn post(d: &Daemon, path: &str, body: &[u8]) -> (u16, Value) {
    call(agent().post(&format!("{}{path}", d.api)).send_bytes(body))
}

/// Sonarr's `GetTorrents`: the list with stats, as it reads it.
struct Item {
    path: String,
    total: i64,
    remaining: i64,
    finished: bool,
    active: bool,
    state: String,
}

fn sonarr_items(d: &Daemon) -> Vec<(String, Item)> {
    let (status, list) = get(d, "/rqbit/torrents?with_stats=true");
    assert_eq!(status, 200, "{list}");
    list["torrents"]
        .as_array()
        .expect("torrents")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap_or("");
            let mut path = t["output_folder"].as_str().unwrap_or("").to_owned();
            // Sonarr's own rule, string concatenation included.
            if !path.ends_with(name) {
                path += name;
            }
            let s = &t["stats"];
            let state = s["state"].as_str().unwrap_or("").to_owned();
            let item = Item {
                path,
                total: s["total_bytes"].as_i64().unwrap_or(-1),
                remaining: s["total_bytes"].as_i64().unwrap_or(0)
                    - s["progress_bytes"].as_i64().unwrap_or(0),
                finished: s["finished"].as_bool().unwrap_or(false),
                active: state == "live" || state == "initializing",
                state,
            };
            (t["info_hash"].as_str().unwrap_or("").to_owned(), item)
        })
        .collect()
}

#[test]
fn sonarrs_rqbit_client_drives_downloads_to_completion() {
    let dir = TempDir::new("compat-rqbit");
    let show = seed(
        make(
            dir.path(),
            "Show S02",
            &[("e01.mkv", 600_000), ("e02.mkv", 400_000)],
            41,
            true,
        ),
        700_000,
    );
    let movie = seed(
        make(dir.path(), "Movie (2026).mkv", &[("", 500_000)], 59, false),
        700_000,
    );
    let download = dir.path().join("dl");
    let daemon = Daemon::start(&dir.path().join("state"), &download, &[]);

    // Test connection: the version must parse as ≥ 8.0.0.
    let (status, root) = get(&daemon, "/rqbit/");
    assert_eq!(status, 200);
    let version = root["version"].as_str().unwrap_or("");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 8, "Sonarr needs rqbit ≥ 8.0.0, got {version:?}");

    // AddTorrentFromFile: the raw .torrent as the body.
    let bytes = std::fs::read(&show.torrent).expect("torrent");
    let (status, added) = post(&daemon, "/rqbit/torrents?overwrite=true", &bytes);
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["details"]["info_hash"], show.hash.as_str());
    // AddTorrentFromUrl: a magnet link as the body.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=Movie%20(2026).mkv&x.pe=127.0.0.1:{}",
        movie.hash, movie.port
    );
    let (status, added) = post(&daemon, "/rqbit/torrents?overwrite=true", magnet.as_bytes());
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["details"]["info_hash"], movie.hash.as_str());
    // Adding it again answers like rqbit: the torrent already there.
    let (status, again) = post(&daemon, "/rqbit/torrents?overwrite=true", magnet.as_bytes());
    assert_eq!(
        (status, &again["details"]["info_hash"]),
        (200, &Value::from(movie.hash.as_str()))
    );

    // HasHashTorrent.
    for hash in [&show.hash, &movie.hash] {
        let (status, t) = get(&daemon, &format!("/rqbit/torrents/{hash}"));
        assert_eq!(
            (status, t["info_hash"].as_str()),
            (200, Some(hash.as_str()))
        );
    }

    // GetItems until both are completed, as Sonarr polls.
    let start = Instant::now();
    let mut states: Vec<String> = Vec::new();
    loop {
        let items = sonarr_items(&daemon);
        assert_eq!(items.len(), 2);
        for (_, item) in &items {
            if states.last() != Some(&item.state) {
                states.push(item.state.clone());
            }
        }
        if items.iter().all(|(_, i)| i.finished) {
            for (hash, item) in &items {
                assert_eq!(item.remaining, 0, "{hash}");
                assert!(item.active, "a seeding torrent is active for Sonarr");
                let expect = if hash == &show.hash {
                    (download.join("Show S02"), 1_000_000)
                } else {
                    (download.join("Movie (2026).mkv"), 500_000)
                };
                assert_eq!(
                    (item.path.as_str(), item.total),
                    (expect.0.to_str().unwrap_or(""), expect.1),
                    "the path Sonarr imports from"
                );
            }
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not finished after 90 s; states seen {states:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(states.iter().any(|s| s == "live"), "{states:?}");
    same_files(&show, &download, &[]);
    same_files(&movie, &download, &[]);

    // Details with files, as rqbit names them (inside output_folder).
    let (_, d) = get(&daemon, &format!("/rqbit/torrents/{}", show.hash));
    let names: Vec<&str> = d["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["e01.mkv", "e02.mkv"]);
    // Pause and start by the numeric id.
    let id = d["id"].as_i64().expect("an id");
    assert_eq!(
        post(&daemon, &format!("/rqbit/torrents/{id}/pause"), b"").0,
        200
    );
    let (_, s) = get(&daemon, &format!("/rqbit/torrents/{id}/stats/v1"));
    assert_eq!(s["state"], "paused");
    assert_eq!(
        post(&daemon, &format!("/rqbit/torrents/{id}/start"), b"").0,
        200
    );

    // A web page cannot do what Sonarr does: a cross-site write, and a
    // same-site one without the CSRF header, are refused; nothing changes.
    let evil = agent()
        .post(&format!(
            "{}/rqbit/torrents/{}/delete",
            daemon.api, show.hash
        ))
        .set("Origin", "http://evil.example")
        .call();
    assert_eq!(call(evil).0, 403);
    let page = agent()
        .post(&format!(
            "{}/rqbit/torrents/{}/delete",
            daemon.api, show.hash
        ))
        .set("Sec-Fetch-Site", "same-origin")
        .call();
    assert_eq!(call(page).0, 403);
    // Bad input: an unknown hash or id, an empty body, a malformed id.
    assert_eq!(
        get(&daemon, &format!("/rqbit/torrents/{}", "ab".repeat(20))).0,
        404
    );
    assert_eq!(post(&daemon, "/rqbit/torrents/999/forget", b"").0, 404);
    assert_eq!(post(&daemon, "/rqbit/torrents?overwrite=true", b"").0, 400);
    assert_eq!(
        post(&daemon, "/rqbit/torrents?overwrite=true", b"d4:junk").0,
        400
    );
    assert_eq!(get(&daemon, "/rqbit/torrents/not-a-torrent").0, 400);
    assert_eq!(sonarr_items(&daemon).len(), 2, "bad input changed nothing");

    // RemoveTorrent: forget keeps the data, delete removes it.
    assert_eq!(
        post(
            &daemon,
            &format!("/rqbit/torrents/{}/forget", show.hash),
            b""
        )
        .0,
        200
    );
    assert_eq!(
        post(
            &daemon,
            &format!("/rqbit/torrents/{}/delete", movie.hash),
            b""
        )
        .0,
        200
    );
    assert!(sonarr_items(&daemon).is_empty());
    same_files(&show, &download, &[]);
    assert!(
        !download.join("Movie (2026).mkv").exists(),
        "delete left the data"
    );
}
