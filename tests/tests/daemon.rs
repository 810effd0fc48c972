//! `bittide daemon` against libtorrent seeders on loopback, driven over
//! its HTTP JSON API: four torrents at once (single-file, multi-file, a
//! magnet, one added paused) under an active-downloads limit of 2; pause
//! (no byte arrives while paused), resume, a skipped file, removal with
//! data, a restart that reads nothing it already verified, and a
//! `kill -9` mid-download after which everything completes with little
//! fetched again. Every process is bounded and killed on the way out.

use std::path::Path;
use std::time::Duration;

use bittide_tests::compat::{make, same_files, seed, Served};
use bittide_tests::daemon::{entry, Daemon};
use bittide_tests::TempDir;
use serde_json::{json, Value};

/// Content seeded by its own libtorrent at `rate` bytes/s (no tracker).
fn serve(dir: &Path, name: &str, files: &[(&str, usize)], content: u64, rate: u64) -> Served {
    seed(make(dir, name, files, content, false), rate)
}

fn peer(s: &Served) -> String {
    format!("peers=127.0.0.1:{}", s.port)
}

fn state_of<'a>(list: &'a [Value], hash: &str) -> &'a str {
    entry(list, hash)["state"].as_str().unwrap_or("")
}

fn progress(list: &[Value], hash: &str) -> f64 {
    entry(list, hash)["progress"].as_f64().unwrap_or(0.0)
}

/// At most two torrents download (or check) at once.
fn at_most_two_active(list: &[Value]) {
    let active = list
        .iter()
        .filter(|t| matches!(t["state"].as_str(), Some("downloading" | "checking")))
        .count();
    assert!(active <= 2, "more than 2 active downloads: {list:#?}");
}

#[test]
fn four_torrents_queue_pause_skip_remove_and_restart_without_reading() {
    let dir = TempDir::new("daemon-four");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let rate = 768 << 10;
    // The two that run first go slower: the magnet must still be waiting
    // for a slot when its metadata arrives (seconds, on a loaded machine).
    let slow = 384 << 10;
    let single = serve(
        dir.path(),
        "single.bin",
        &[("single.bin", 3 << 20)],
        1,
        slow,
    );
    let multi = serve(
        dir.path(),
        "multi",
        &[("a.bin", 1 << 20), ("b.bin", 1 << 20), ("c.bin", 1 << 20)],
        10,
        slow,
    );
    let magnet = serve(
        dir.path(),
        "magnet.bin",
        &[("magnet.bin", 2 << 20)],
        20,
        rate,
    );
    let paused = serve(
        dir.path(),
        "paused.bin",
        &[("paused.bin", 2 << 20)],
        30,
        rate,
    );

    let d = Daemon::start(&state, &download, &["--active-downloads", "2"]);
    let h_single = d.add_file(&single.torrent, &peer(&single));
    // Added paused so its file selection is in place before any byte.
    let h_multi = d.add_file(&multi.torrent, &format!("paused=true&{}", peer(&multi)));
    d.post(
        &format!("/api/v1/torrents/{h_multi}/files"),
        Some(json!({"priorities": [{"index": 1, "priority": "skip"}]})),
    );
    d.post(&format!("/api/v1/torrents/{h_multi}/resume"), None);
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=magnet.bin&x.pe=127.0.0.1:{}",
        magnet.hash, magnet.port
    );
    let added = d.post("/api/v1/torrents", Some(json!({ "magnet": link })));
    let h_magnet = added["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(h_magnet, magnet.hash);
    let h_paused = d.add_file(&paused.torrent, &format!("paused=true&{}", peer(&paused)));

    // Two download, the magnet (once its metadata is in) waits its turn,
    // the paused one stays paused.
    let list = d.wait(
        "two downloads and the magnet queued",
        Duration::from_secs(60),
        at_most_two_active,
        |l| state_of(l, &h_magnet) == "queued",
    );
    assert_eq!(state_of(&list, &h_paused), "paused");
    assert_eq!(entry(&list, &h_magnet)["name"], "magnet.bin");

    // Paused mid-download: nothing more arrives for it.
    d.wait(
        "single to be part-way",
        Duration::from_secs(60),
        at_most_two_active,
        |l| progress(l, &h_single) > 0.05,
    );
    d.post(&format!("/api/v1/torrents/{h_single}/pause"), None);
    let list = d.wait(
        "single paused",
        Duration::from_secs(10),
        |_| {},
        |l| state_of(l, &h_single) == "paused",
    );
    let before = entry(&list, &h_single)["downloaded"].as_u64().unwrap();
    assert!(
        progress(&list, &h_single) < 1.0,
        "finished before the pause"
    );
    std::thread::sleep(Duration::from_secs(3));
    let list = d.list();
    assert_eq!(
        entry(&list, &h_single)["downloaded"].as_u64().unwrap(),
        before
    );
    assert_eq!(state_of(&list, &h_single), "paused");
    d.post(&format!("/api/v1/torrents/{h_single}/resume"), None);
    d.post(&format!("/api/v1/torrents/{h_paused}/resume"), None);

    let all = [&h_single, &h_multi, &h_magnet, &h_paused];
    let list = d.wait(
        "every torrent to complete",
        Duration::from_secs(120),
        at_most_two_active,
        |l| {
            all.iter()
                .all(|h| progress(l, h) == 1.0 && state_of(l, h) == "seeding")
        },
    );
    assert_eq!(list.len(), 4);
    same_files(&single, &download, &[]);
    same_files(&multi, &download, &[1]);
    same_files(&magnet, &download, &[]);
    same_files(&paused, &download, &[]);

    // Removed with its data: the file is gone, the others stay.
    d.delete(&format!("/api/v1/torrents/{h_single}?delete_data=true"));
    assert!(!download.join("single.bin").exists(), "data deleted");
    assert_eq!(d.list().len(), 3);

    // A graceful restart: everything back as it was, nothing read again.
    assert_eq!(d.terminate(Duration::from_secs(30)), Some(0));
    let d = Daemon::start(&state, &download, &["--active-downloads", "2"]);
    let list = d.wait(
        "the torrents back",
        Duration::from_secs(20),
        |_| {},
        |l| {
            l.len() == 3
                && [&h_multi, &h_magnet, &h_paused]
                    .iter()
                    .all(|h| state_of(l, h) == "seeding")
        },
    );
    assert!(list.iter().all(|t| t["progress"] == 1.0), "{list:#?}");
    std::thread::sleep(Duration::from_secs(1));
    let stats = d.get("/api/v1/stats");
    assert_eq!(
        stats["disk_read"], 0,
        "resume data vouched for every piece: {stats}"
    );
    assert_eq!(d.terminate(Duration::from_secs(30)), Some(0));
}

#[test]
fn kill_9_during_four_downloads_then_all_complete_with_little_fetched_again() {
    let dir = TempDir::new("daemon-kill9");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let rate = 1 << 20;
    let served: Vec<Served> = (0..4)
        .map(|i| {
            let name = format!("t{i}.bin");
            serve(dir.path(), &name, &[(&name, 6 << 20)], 100 + i as u64, rate)
        })
        .collect();
    let d = Daemon::start(&state, &download, &[]);
    let hashes: Vec<String> = served
        .iter()
        .map(|s| d.add_file(&s.torrent, &peer(s)))
        .collect();
    let total: u64 = 4 * (6 << 20);
    let verified = |l: &[Value]| -> u64 {
        l.iter()
            .map(|t| (t["progress"].as_f64().unwrap() * t["size"].as_f64().unwrap()) as u64)
            .sum()
    };
    let list = d.wait(
        "a third downloaded",
        Duration::from_secs(60),
        |_| {},
        |l| l.len() == 4 && verified(l) >= total / 3,
    );
    let at_kill = verified(&list);
    assert!(at_kill < total, "finished before the kill");
    d.kill();

    let d = Daemon::start(&state, &download, &[]);
    d.wait(
        "every torrent to complete",
        Duration::from_secs(120),
        |_| {},
        |l| l.len() == 4 && hashes.iter().all(|h| progress(l, h) == 1.0),
    );
    for s in &served {
        same_files(s, &download, &[]);
    }
    let fetched = d.get("/api/v1/stats")["downloaded"].as_u64().unwrap();
    let missing = total - at_kill;
    let again = fetched.saturating_sub(missing);
    println!("verified at the kill {at_kill}, fetched after {fetched}, again {again}");
    assert!(
        again * 10 < at_kill,
        "fetched {again} bytes again of {at_kill} verified"
    );
    assert_eq!(d.terminate(Duration::from_secs(30)), Some(0));
}
