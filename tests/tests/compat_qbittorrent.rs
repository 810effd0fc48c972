//! bittide's daemon as a qBittorrent WebAPI v2 server (issue 16), driven
//! by the real PyPI client `qbittorrent-api` and by a replay of the exact
//! HTTP calls Sonarr's `QBittorrentProxyV2` makes, against libtorrent
//! seeders on loopback; and bad input answered the way qBittorrent
//! answers it, changing nothing. Every process and loop is bounded.

use std::time::{Duration, Instant};

use bittide_tests::compat::{
    daemon_with_credentials, make, run_python, same_files, seed, small_torrent, Served, PASS, USER,
};
use bittide_tests::qbittorrent::{answer, Qbt};
use bittide_tests::TempDir;
use serde_json::Value;

/// Content `name` (one file, or a folder of `files`) seeded by libtorrent
/// at 512 KiB/s, so that its states can be watched; `tracked` gives it an
/// opentracker of its own (a torrent added as a file learns its peer
/// from there).
fn serve(
    dir: &std::path::Path,
    name: &str,
    files: &[(&str, usize)],
    content: u64,
    tracked: bool,
) -> Served {
    seed(make(dir, name, files, content, tracked), 512 << 10)
}

/// The qbittorrent-api session: every call the issue lists, printing one
/// JSON line of what it saw for the test to check.
const CLIENT_SCRIPT: &str = include_str!("../interop/qbt_client.py");

#[test]
fn qbittorrent_api_client_drives_downloads_to_completion() {
    let dir = TempDir::new("qbt-client");
    let file = serve(dir.path(), "show.bin", &[("show.bin", 3 << 20)], 1, true);
    let magnet = serve(
        dir.path(),
        "movie",
        &[("a.mkv", 1 << 20), ("b.nfo", 3000)],
        10,
        false,
    );
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let tv_dir = dir.path().join("tv");
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=movie&x.pe=127.0.0.1:{}",
        magnet.hash, magnet.port
    );
    let args = serde_json::json!({
        "base": d.api,
        "file": file.torrent,
        "file_hash": file.hash,
        "magnet": link,
        "magnet_hash": magnet.hash,
        "tv_dir": tv_dir,
        "user": USER,
        "password": PASS,
    });
    let r = run_python(
        CLIENT_SCRIPT,
        &[&args.to_string()],
        Duration::from_secs(240),
        &format!("daemon log:\n{}", d.log()),
    );
    eprintln!("{r:#}");

    assert_eq!(r["probe"], 403);
    assert_eq!(r["bad_login"], "refused");
    assert_eq!(r["version"], "v5.0.2");
    assert_eq!(r["webapi"], "2.11.2");
    assert_eq!(r["save_path"], download.display().to_string());
    assert_eq!(
        r["prefs_after"],
        serde_json::json!([true, 2.5, true, 90, true, 600])
    );
    assert_eq!(r["add_file"], "Ok.");
    assert_eq!(r["add_magnet"], "Ok.");
    assert_eq!(r["visible_at_once"], serde_json::json!([file.hash]));
    assert_eq!(r["magnet_added_state"], "stoppedDL");

    // The states moved through qBittorrent's strings to completion.
    let states = |h: &str| -> Vec<String> {
        r["states"][h]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let file_states = states(&file.hash);
    let at = |list: &[String], s: &[&str]| list.iter().position(|x| s.contains(&x.as_str()));
    let dl = at(&file_states, &["downloading", "stalledDL"]).expect("seen downloading");
    let up = at(&file_states, &["uploading", "stalledUP"]).unwrap_or_else(|| {
        panic!(
            "never complete: {:?}\ndaemon log:\n{}",
            file_states.last(),
            d.log()
        )
    });
    assert!(dl < up, "{file_states:?}");
    let magnet_states = states(&magnet.hash);
    assert!(
        matches!(
            magnet_states.last().map(String::as_str),
            Some("uploading" | "stalledUP")
        ),
        "{magnet_states:?}"
    );
    assert!(
        magnet_states.iter().all(|s| [
            "stoppedDL",
            "metaDL",
            "downloading",
            "stalledDL",
            "checkingDL",
            "queuedDL",
            "uploading",
            "stalledUP"
        ]
        .contains(&s.as_str())),
        "{magnet_states:?}"
    );
    assert_eq!(r["full_updates"], 1, "only the first maindata is full");
    assert!(r["deltas"].as_u64().unwrap() >= 1);
    assert_eq!(r["sync_matches"], true);

    let info = &r["file_info"];
    assert_eq!(info["name"], "show.bin");
    assert_eq!(info["size"], 3 << 20);
    assert_eq!(info["total_size"], 3 << 20);
    assert_eq!(info["progress"], 1.0);
    assert_eq!(info["amount_left"], 0);
    assert_eq!(info["eta"], 8_640_000);
    assert_eq!(info["category"], "tv");
    assert_eq!(info["tags"], "one, two");
    assert_eq!(info["save_path"], tv_dir.display().to_string());
    // Added with contentLayout=Subfolder: a single file in a folder
    // named after it.
    assert_eq!(
        info["content_path"],
        tv_dir.join("show/show.bin").display().to_string()
    );
    assert!(info["completion_on"].as_i64().unwrap() >= info["added_on"].as_i64().unwrap());
    assert!(info["downloaded"].as_u64().unwrap() >= 3 << 20);

    let mut both = vec![file.hash.clone(), magnet.hash.clone()];
    both.sort();
    let filters = &r["filters"];
    assert_eq!(filters["all"], serde_json::json!(both));
    assert_eq!(filters["completed"], serde_json::json!(both));
    assert_eq!(filters["seeding"], serde_json::json!(both));
    assert_eq!(filters["downloading"], serde_json::json!([]));
    assert_eq!(filters["stopped"], serde_json::json!([]));
    assert_eq!(r["tag_one"], serde_json::json!([file.hash]));
    assert_eq!(r["cat_movies"], serde_json::json!([magnet.hash]));
    assert_eq!(
        r["sorted_by_size"],
        serde_json::json!([file.hash, magnet.hash])
    );
    assert_eq!(r["limit_1"], 1);

    assert_eq!(
        r["files"],
        serde_json::json!([
            [0, "movie/a.mkv", 1 << 20, 1.0, 1],
            [1, "movie/b.nfo", 3000, 1.0, 1]
        ])
    );
    let props = &r["properties"];
    assert_eq!(props["save_path"], tv_dir.display().to_string());
    assert_eq!(props["total_size"], 3 << 20);
    assert_eq!(props["pieces_num"], 48);
    assert_eq!(props["pieces_have"], 48);
    assert_eq!(props["piece_size"], 65536);
    assert_eq!(r["trackers"][0][1], 2, "the tracker answered");
    assert_eq!(r["pieces"], serde_json::json!([2]));
    assert!(
        r["pieces_during"]
            .as_array()
            .is_some_and(|codes| codes.contains(&Value::from(1))),
        "no piece was ever shown downloading: {}",
        r["pieces_during"]
    );

    assert_eq!(r["stopped_state"], "stoppedUP");
    assert!(
        matches!(
            r["started_state"].as_str(),
            Some("stalledUP" | "uploading" | "checkingUP" | "queuedUP")
        ),
        "{}",
        r["started_state"]
    );
    assert_eq!(r["forced"], serde_json::json!(["forcedUP", true]));
    assert!(r["forced_filter"]
        .as_array()
        .is_some_and(|l| l.contains(&Value::from(file.hash.as_str()))));
    assert_eq!(r["unforced"][1], false);
    assert_ne!(r["unforced"][0], "forcedUP");
    assert_eq!(r["tags_after"], "two, three");
    assert_eq!(r["all_tags"], serde_json::json!(["one", "three", "two"]));
    assert_eq!(r["categories"]["tv"], tv_dir.display().to_string());
    assert_eq!(r["categories"]["movies"], "");
    assert_eq!(r["categories_after"], serde_json::json!(["done", "tv"]));
    assert_eq!(r["magnet_category"], "done");
    assert_eq!(r["bad_category"], 409);
    assert_eq!(r["share_limits"], serde_json::json!([1.5, 120, 45]));
    assert_eq!(
        r["goal_state"], "stoppedUP",
        "the share limit did not stop it"
    );
    for key in [
        "dl_info_speed",
        "dl_info_data",
        "up_info_speed",
        "up_info_data",
    ] {
        assert!(
            r["transfer"]
                .as_array()
                .unwrap()
                .contains(&Value::from(key)),
            "{key}"
        );
    }
    assert_eq!(r["unknown_hash"], 404);
    assert_eq!(r["removed_delta"], serde_json::json!([magnet.hash]));
    assert_eq!(r["after_delete"], serde_json::json!([file.hash]));
    // After a logout the client's next call meets 403 and logs in again.
    assert_eq!(r["after_logout"], "relogged");

    // The data is byte-identical; the deleted torrent's files are gone.
    same_files(&file, &tv_dir.join("show"), &[]);
    assert!(
        !download.join("movie").exists(),
        "deleteFiles left the data"
    );
    drop(d);
}

/// The calls Sonarr's `QBittorrentProxyV2` makes, in its order: probe
/// (403 sends it to log in), login, version checks, preferences,
/// categories, add with its category, properties polled until the torrent
/// is there, the category's list polled until complete (where it imports
/// from `content_path`, which must not be the save path), delete.
#[test]
fn sonarr_call_sequence_replays() {
    let dir = TempDir::new("qbt-sonarr");
    let show = serve(
        dir.path(),
        "Show.S01E01.mkv",
        &[("Show.S01E01.mkv", 2 << 20)],
        40,
        true,
    );
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);

    let (code, body) = q.get("app/webapiVersion");
    assert_eq!((code, body.as_str()), (403, "Forbidden"));
    q.login(USER, PASS);
    assert_eq!(q.get("app/webapiVersion"), (200, "2.11.2".into()));
    assert_eq!(q.get("app/version"), (200, "v5.0.2".into()));
    let prefs = q.json("app/preferences");
    assert_eq!(prefs["save_path"], download.display().to_string());
    for key in [
        "max_ratio_enabled",
        "max_ratio",
        "max_seeding_time_enabled",
        "max_seeding_time",
        "max_ratio_act",
        "queueing_enabled",
        "dht",
    ] {
        assert!(prefs.get(key).is_some(), "preferences lack {key}");
    }
    let categories = q.json("torrents/categories");
    assert!(categories.get("tv-sonarr").is_none());
    assert_eq!(
        q.post(
            "torrents/createCategory",
            &[("category", "tv-sonarr"), ("savePath", "")]
        ),
        (200, String::new())
    );

    let bytes = std::fs::read(&show.torrent).unwrap();
    let (code, body) = q.multipart(
        "torrents/add",
        &[("category", "tv-sonarr"), ("stopped", "false")],
        &[("Show.S01E01.mkv.torrent", &bytes)],
    );
    assert_eq!((code, body.as_str()), (200, "Ok."));
    let start = Instant::now();
    let props = loop {
        let (code, body) = q.get(&format!("torrents/properties?hash={}", show.hash));
        if code == 200 {
            break serde_json::from_str::<Value>(&body).unwrap();
        }
        assert_eq!(code, 404, "{body}");
        assert!(start.elapsed() < Duration::from_secs(10), "never appeared");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(props["save_path"], download.display().to_string());

    let start = Instant::now();
    let done = loop {
        let list = q.json("torrents/info?category=tv-sonarr");
        let t = list.as_array().unwrap().first().cloned().expect("listed");
        if matches!(t["state"].as_str(), Some("uploading" | "stalledUP")) {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not complete: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(done["hash"], show.hash.as_str());
    assert_eq!(done["progress"], 1.0);
    assert_ne!(done["content_path"], done["save_path"]);
    assert_eq!(
        done["content_path"],
        download.join("Show.S01E01.mkv").display().to_string()
    );
    same_files(&show, &download, &[]);
    let props = q.json(&format!("torrents/properties?hash={}", show.hash));
    assert!(props["seeding_time"].as_i64().is_some());

    assert_eq!(
        q.post(
            "torrents/delete",
            &[("hashes", show.hash.as_str()), ("deleteFiles", "true")]
        ),
        (200, String::new())
    );
    assert_eq!(q.json("torrents/info"), serde_json::json!([]));
    assert!(!download.join("Show.S01E01.mkv").exists());
}

/// The status a POST declaring a `len`-byte body gets when only its
/// headers are sent.
fn huge_body_status(q: &Qbt, path: &str, len: u64) -> u16 {
    use std::io::{Read, Write};
    let addr = q.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /api/v2/{path} HTTP/1.1\r\nHost: {addr}\r\nCookie: SID={}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\n",
        q.sid.as_deref().unwrap_or("")
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A form's fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// Bad input gets qBittorrent's own answers, and changes nothing.
#[test]
fn bad_input_gets_qbittorrents_answers_and_changes_nothing() {
    let dir = TempDir::new("qbt-bad");
    let (d, _download) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);
    // Nothing before a login, whatever it asks.
    for path in ["torrents/info", "app/preferences", "sync/maindata"] {
        assert_eq!(q.get(path), (403, "Forbidden".into()), "{path}");
    }
    assert_eq!(
        q.post(
            "torrents/delete",
            &[("hashes", "all"), ("deleteFiles", "true")]
        ),
        (403, "Forbidden".into())
    );
    assert_eq!(
        answer(
            q.request("POST", "auth/login")
                .send_form(&[("username", USER), ("password", "nope")])
        ),
        (200, "Fails.".into())
    );
    q.login(USER, PASS);

    // One torrent (no peers) and a category, to see that nothing changes.
    let (_, bytes) = small_torrent(dir.path(), "c.bin", 100_000, 7);
    let (code, _) = q.multipart(
        "torrents/add",
        &[("category", "keep"), ("tags", "t1"), ("paused", "true")],
        &[("c.torrent", &bytes)],
    );
    assert_eq!(code, 200);
    let hash = q.json("torrents/info")[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let snapshot = |q: &Qbt| {
        let mut info = q.json("torrents/info");
        for t in info.as_array_mut().unwrap() {
            let t = t.as_object_mut().unwrap();
            for volatile in ["last_activity", "time_active", "seeding_time"] {
                t.remove(volatile);
            }
        }
        (
            info,
            q.json("torrents/categories"),
            q.json("torrents/tags"),
            q.json("app/preferences"),
        )
    };
    let before = snapshot(&q);

    let unknown = "0123456789abcdef0123456789abcdef01234567";
    for path in ["properties", "files", "trackers", "pieceStates"] {
        for h in [unknown, "nothex", ""] {
            assert_eq!(
                q.get(&format!("torrents/{path}?hash={h}")).0,
                404,
                "{path} {h}"
            );
        }
    }
    assert_eq!(q.get("torrents/properties").0, 400, "no hash at all");
    // (endpoint, form, the status qBittorrent answers)
    let checks: Vec<(&str, Form<'_>, u16)> = vec![
        // Unknown hashes in a list are skipped, as qBittorrent does.
        (
            "torrents/delete",
            vec![("hashes", unknown), ("deleteFiles", "true")],
            200,
        ),
        ("torrents/stop", vec![("hashes", unknown)], 200),
        ("torrents/delete", vec![("deleteFiles", "true")], 400),
        (
            "torrents/filePrio",
            vec![("hash", unknown), ("id", "0"), ("priority", "1")],
            404,
        ),
        (
            "torrents/filePrio",
            vec![("hash", &hash), ("id", "5"), ("priority", "1")],
            409,
        ),
        (
            "torrents/filePrio",
            vec![("hash", &hash), ("id", "x"), ("priority", "1")],
            400,
        ),
        (
            "torrents/filePrio",
            vec![("hash", &hash), ("id", "0"), ("priority", "3")],
            400,
        ),
        (
            "torrents/setCategory",
            vec![("hashes", &hash), ("category", "nope")],
            409,
        ),
        ("torrents/createCategory", vec![("category", "")], 400),
        ("torrents/createCategory", vec![("category", "keep")], 409),
        ("torrents/createCategory", vec![("category", "/bad")], 409),
        (
            "torrents/editCategory",
            vec![("category", "nope"), ("savePath", "/x")],
            409,
        ),
        (
            "torrents/setLocation",
            vec![("hashes", &hash), ("location", "")],
            400,
        ),
        (
            "torrents/setShareLimits",
            vec![("hashes", &hash), ("ratioLimit", "2")],
            400,
        ),
        (
            "torrents/setShareLimits",
            vec![
                ("hashes", &hash),
                ("ratioLimit", "x"),
                ("seedingTimeLimit", "1"),
            ],
            400,
        ),
        (
            "torrents/setDownloadLimit",
            vec![("hashes", &hash), ("limit", "fast")],
            400,
        ),
        ("app/setPreferences", vec![("json", "{not json")], 400),
        ("app/setPreferences", vec![("json", "[1]")], 400),
        (
            "app/setPreferences",
            vec![("json", r#"{"max_ratio": "high"}"#)],
            400,
        ),
        (
            "app/setPreferences",
            vec![("json", r#"{"max_ratio_act": 7}"#)],
            400,
        ),
        ("sync/maindata", vec![("rid", "x")], 400),
        ("torrents/add", vec![("urls", "not a link")], 400),
        ("torrents/add", vec![], 400),
        ("torrents/nosuchthing", vec![], 404),
        ("nosuch/area", vec![], 404),
    ];
    for (path, form, want) in &checks {
        let (code, body) = q.post(path, form);
        assert_eq!(code, *want, "{path} {form:?}: {body}");
    }
    // Actions are POST only.
    assert_eq!(q.get(&format!("torrents/delete?hashes={hash}")).0, 405);
    // An invalid .torrent is 415, as qBittorrent's BadData.
    let (code, body) = q.multipart("torrents/add", &[], &[("junk.torrent", b"not bencode")]);
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("junk.torrent"), "{body}");
    // Malformed multipart and unknown media types.
    let (code, _) = answer(
        q.request("POST", "torrents/add")
            .set("Content-Type", "multipart/form-data; boundary=zzz")
            .send_bytes(b"--zzz\r\nno header end"),
    );
    assert_eq!(code, 400);
    let (code, _) = answer(
        q.request("POST", "torrents/add")
            .set("Content-Type", "multipart/form-data")
            .send_bytes(b"--zzz--"),
    );
    assert_eq!(code, 400);
    let (code, _) = answer(
        q.request("POST", "torrents/delete")
            .set("Content-Type", "application/json")
            .send_string("{\"hashes\": \"all\"}"),
    );
    assert_eq!(code, 415);
    // Huge bodies are refused from their Content-Length, before a byte of
    // them is read.
    assert_eq!(huge_body_status(&q, "torrents/delete", (1 << 20) + 1), 413);
    assert_eq!(huge_body_status(&q, "torrents/add", 1 << 40), 413);
    // Adding the same torrent again adds nothing.
    let (code, body) = q.multipart("torrents/add", &[], &[("c.torrent", &bytes)]);
    assert_eq!((code, body.as_str()), (200, "Fails."));

    assert_eq!(snapshot(&q), before, "bad input changed something");
    drop(d);
}
