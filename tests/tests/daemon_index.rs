//! The daemon searches the DHT index that `bittide dht crawl --index`
//! fills (issue 19): `/api/v1/index/search|torrents/{hash}|stats` answer
//! what `bittide index … --json` prints, and hostile input gets a clear
//! error, never SQL.

use bittide_core::metainfo::InfoHash;
use bittide_index::{Found, Index, Listing, SqliteIndex};
use bittide_tests::daemon::Daemon;
use bittide_tests::TempDir;

/// An info dictionary of two files named "Amber Harbor 4K".
const INFO: &[u8] = b"d5:filesld6:lengthi3e4:pathl5:a.txteed6:lengthi4e4:pathl3:sub5:b.txteee4:name15:Amber Harbor 4K12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";

#[test]
fn the_daemon_searches_the_index_in_its_state_folder() {
    let dir = TempDir::new("daemon-index");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let hash = InfoHash::of_info(INFO);
    {
        // Filled as a crawl fills it: a fetched listing, written by the
        // store the crawler uses.
        let mut ix = SqliteIndex::open(&state.join("index.db")).expect("a new index");
        let listing = Listing::from_metadata(hash, INFO).expect("a valid info dictionary");
        let found = Found {
            listing,
            at: 1_800_000_000,
            node: None,
        };
        assert_eq!(ix.insert("test", &[found]).expect("insert"), 1);
    }
    let d = Daemon::start(&state, &download, &[]);

    let hits = d.get("/api/v1/index/search?q=harbor%20amber");
    let hits = hits.as_array().expect("an array");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["info_hash"], hash.to_string());
    assert_eq!(hits[0]["name"], "Amber Harbor 4K");
    assert_eq!(hits[0]["files"], 2);
    assert_eq!(hits[0]["size"], 7);
    assert!(hits[0]["magnet"]
        .as_str()
        .is_some_and(|m| m.contains(&hash.to_string())));
    assert_eq!(d.get("/api/v1/index/search?q=cedar"), serde_json::json!([]));

    let shown = d.get(&format!("/api/v1/index/torrents/{hash}"));
    let paths: Vec<&str> = shown["file_list"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["a.txt", "sub/b.txt"]);
    assert_eq!(d.get("/api/v1/index/stats")["torrents"], 1);

    // Hostile or wrong input: a clear error, and the index unharmed.
    let (code, body) = d.get_status("/api/v1/index/search?q=%27%3B--");
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    let (code, body) = d.get_status(
        "/api/v1/index/search?q=amber%27%20OR%201%3D1%3B%20DROP%20TABLE%20torrents%3B--",
    );
    assert_eq!((code, body), (200, serde_json::json!([])));
    let (code, _) = d.get_status("/api/v1/index/search?q=amber&limit=1000000000");
    assert_eq!(code, 200);
    let (code, _) = d.get_status("/api/v1/index/search?q=amber&limit=-1");
    assert_eq!(code, 400);
    let (code, _) = d.get_status("/api/v1/index/torrents/not-a-hash");
    assert_eq!(code, 400);
    let (code, _) = d.get_status(&format!("/api/v1/index/torrents/{}", "0".repeat(40)));
    assert_eq!(code, 404);
    assert_eq!(d.get("/api/v1/index/stats")["torrents"], 1);
    d.terminate(std::time::Duration::from_secs(30));

    // A daemon whose index does not exist says so, and makes none.
    let missing = dir.path().join("none").join("index.db");
    let d = Daemon::start(
        &state,
        &download,
        &["--index", missing.to_str().expect("a UTF-8 path")],
    );
    let (code, body) = d.get_status("/api/v1/index/search?q=amber");
    assert_eq!(code, 404, "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("dht crawl --index")));
    assert!(!missing.exists());
    d.terminate(std::time::Duration::from_secs(30));
}
