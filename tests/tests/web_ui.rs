//! The web UI (issue 15) in a real browser: headless Chromium driven by
//! Selenium (`tests/interop/web_ui.py`, the compat virtualenv) against a
//! `bittide daemon` with credentials, downloading from libtorrent seeders
//! on loopback. A person's session: log in (a wrong password first), add
//! a torrent by file upload with one file left out, add one by magnet,
//! watch both reach 100 % through the live list, pause and resume, skip a
//! file on the details page, change a setting, remove a torrent with its
//! data; then a phone-width window. Screenshots go to
//! `target/test-output/web_ui/`. Checked here: what the page saw, the files on
//! disk, and what the API says afterwards.
//!
//! Needs chromium, chromium-driver, python3-libtorrent and opentracker
//! (installed by `./scripts/test`).

use std::path::PathBuf;
use std::time::Duration;

use bittide_tests::compat::{
    daemon_with_credentials, make, run_python, same_files, seed, PASS, USER,
};
use bittide_tests::{require_tool, workspace_root, TempDir};
use serde_json::{json, Value};

#[test]
fn a_person_uses_the_web_ui_in_chromium() {
    require_tool("chromium", &["--version"], "chromium");
    require_tool("chromedriver", &["--version"], "chromium-driver");
    let dir = TempDir::new("web-ui");
    let show = seed(
        make(
            dir.path(),
            "Show S01",
            &[
                ("e01.mkv", 700_000),
                ("e02.mkv", 500_000),
                ("sample.mkv", 90_000),
            ],
            11,
            true,
        ),
        800_000,
    );
    let movie = seed(
        make(dir.path(), "movie.webm", &[("", 600_000)], 23, false),
        800_000,
    );
    let (daemon, download) = daemon_with_credentials(dir.path(), &[]);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=movie.webm&x.pe=127.0.0.1:{}",
        movie.hash, movie.port
    );
    let shots = workspace_root().join("target/test-output/web_ui");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let script = workspace_root().join("tests/interop/web_ui.py");
    let args = json!({
        "base": daemon.api,
        "user": USER,
        "password": PASS,
        "torrent": show.torrent,
        "file_hash": show.hash,
        "leave_out": 2,
        "skip": 1,
        "magnet": magnet,
        "magnet_hash": movie.hash,
        "shots": shots,
    });
    let script = std::fs::read_to_string(script).expect("web_ui.py");
    let out = run_python(
        &script,
        &[&args.to_string()],
        Duration::from_secs(300),
        &format!(
            "(see target/test-output/web_ui/timeout.png)\ndaemon log:\n{}",
            daemon.log()
        ),
    );
    eprintln!("browser session: {out}");

    assert_eq!(out["bad_login"], "wrong username or password");
    assert_eq!(
        out["add_files_listed"], 3,
        "the add page lists the .torrent's files"
    );
    for (hash, what) in [
        (&show.hash, "the uploaded torrent"),
        (&movie.hash, "the magnet"),
    ] {
        let seen: Vec<&str> = out["states"][hash.as_str()]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(seen.last(), Some(&"seeding"), "{what}: {seen:?}");
    }
    assert_eq!(out["resumed_to"], "seeding");
    assert!(
        out["details_facts"]
            .as_str()
            .unwrap_or("")
            .contains(&show.hash),
        "{}",
        out["details_facts"]
    );
    assert!(
        out["trackers"].as_str().unwrap_or("").contains("/announce")
            && out["trackers"].as_str().unwrap_or("").contains(" in "),
        "{}",
        out["trackers"]
    );
    assert_eq!(
        out["tab_focus"],
        json!(["bittide", "Torrents", "Add"]),
        "Tab walks the header's links"
    );
    assert!(
        out["phone_overflow"].as_i64().is_some_and(|px| px <= 0),
        "the page is wider than a phone: {}",
        out["phone_overflow"]
    );
    // The only console error allowed is the browser's note of the wrong
    // password's 401.
    let errors: Vec<&Value> = out["console"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    let m = e["message"].as_str().unwrap_or("");
                    !(m.contains("/api/v1/login") && m.contains("401"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // What the page did, seen on disk and through the API.
    same_files(&show, &download, &[2]);
    let movie_path = download.join("movie.webm");
    assert!(
        !movie_path.exists(),
        "removed with its data, but {} is still there",
        movie_path.display()
    );
    assert_eq!(out["api_list"], json!([show.hash]));
    let details = &out["api_details"];
    let priorities: Vec<&str> = details["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["priority"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(priorities, ["normal", "skip", "skip"]);
    assert_eq!(details["category"], "shows");
    assert_eq!(
        details["upload_limit"],
        64 * 1024,
        "the details page set its limit"
    );
    assert_eq!(
        out["api_settings"]["upload_rate"],
        512 * 1024,
        "the settings page saved the upload limit"
    );
    for shot in ["list.png", "details.png", "stats.png", "phone.png"] {
        let path: PathBuf = shots.join(shot);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 5_000),
            "{} missing",
            path.display()
        );
    }
}
