//! bittide's qBittorrent WebAPI (issue 16) where it keeps state on disk
//! or finds it there: categories, tags, share limits and force start
//! across restarts, content layouts (where the files go, and
//! `content_path`), and torrents whose files went missing. Driven by the
//! hand-made client of `tests/src/qbittorrent.rs` against a `bittide
//! daemon` on loopback, without peers: the data is put where it belongs
//! and checked. Every process and loop is bounded.

use std::time::{Duration, Instant};

use bittide_tests::compat::{daemon_with_credentials, make, small_torrent, PASS, USER};
use bittide_tests::qbittorrent::Qbt;
use bittide_tests::TempDir;

/// Categories with their save paths, share limits, tags on torrents and
/// tags no torrent carries are kept in the state folder: a restarted
/// daemon answers the same (and forgets what was deleted).
#[test]
fn categories_and_share_limits_survive_a_restart() {
    let dir = TempDir::new("qbt-restart");
    let (_, bytes) = small_torrent(dir.path(), "r.bin", 50_000, 3);
    let shows = dir.path().join("shows");
    let shows_text = shows.display().to_string();

    let (d, _) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    let form = [("category", "shows"), ("savePath", shows_text.as_str())];
    assert_eq!(q.post("torrents/createCategory", &form).0, 200);
    // Tags no torrent carries: kept as created, and as deleted.
    let form = [("tags", "unused, doomed,later")];
    assert_eq!(q.post("torrents/createTags", &form).0, 200);
    assert_eq!(q.post("torrents/deleteTags", &[("tags", "doomed")]).0, 200);
    let (code, body) = q.multipart(
        "torrents/add",
        &[
            ("category", "shows"),
            ("tags", "x"),
            ("stopped", "true"),
            ("ratioLimit", "3"),
            ("seedingTimeLimit", "45"),
            ("inactiveSeedingTimeLimit", "20"),
        ],
        &[("r.torrent", &bytes)],
    );
    assert_eq!((code, body.as_str()), (200, "Ok."));
    let seen = |q: &Qbt| {
        let info = q.json("torrents/info");
        let t = &info[0];
        (
            t["save_path"].clone(),
            t["category"].clone(),
            t["tags"].clone(),
            t["ratio_limit"].clone(),
            t["seeding_time_limit"].clone(),
            t["inactive_seeding_time_limit"].clone(),
            t["state"].clone(),
            q.json("torrents/categories"),
            q.json("torrents/tags"),
        )
    };
    let before = seen(&q);
    assert_eq!(before.0, shows_text.as_str(), "the category's save path");
    assert_eq!(before.3, 3.0);
    assert_eq!(before.4, 45);
    assert_eq!(before.5, 20);
    assert_eq!(before.6, "stoppedDL");
    assert_eq!(before.7["shows"]["savePath"], shows_text.as_str());
    assert_eq!(before.8, serde_json::json!(["later", "unused", "x"]));
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0));

    let (d, _) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    assert_eq!(seen(&q), before);
    // Deleting a tag also takes it off its torrents, and stays deleted.
    assert_eq!(q.post("torrents/deleteTags", &[("tags", "x,later")]).0, 200);
    // Force-started (it was stopped): it runs, and stays forced.
    let hash = before_hash(&q);
    let form = [("hashes", hash.as_str()), ("value", "true")];
    assert_eq!(q.post("torrents/setForceStart", &form).0, 200);
    wait_state(&q, "forcedDL");
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0));
    let (d, _) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    assert_eq!(q.json("torrents/tags"), serde_json::json!(["unused"]));
    assert_eq!(q.json("torrents/info")[0]["tags"], "");
    assert_eq!(q.json("torrents/info")[0]["force_start"], true);
    wait_state(&q, "forcedDL");
    // A plain start puts it back under the queue.
    assert_eq!(
        q.post("torrents/start", &[("hashes", hash.as_str())]).0,
        200
    );
    assert_eq!(q.json("torrents/info")[0]["force_start"], false);
    drop(d);
}

/// The hash of the one torrent listed.
fn before_hash(q: &Qbt) -> String {
    q.json("torrents/info")[0]["hash"]
        .as_str()
        .expect("a hash")
        .to_owned()
}

/// Polls `torrents/info` until its one torrent shows `state` (10 s).
fn wait_state(q: &Qbt, state: &str) {
    let start = Instant::now();
    loop {
        let info = q.json("torrents/info");
        if info[0]["state"] == state {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never {state}: {info:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A torrent's name and files, the `contentLayout` it is added with, the
/// folder under the save path its data goes in, and its `content_path`
/// under the save path.
type LayoutCase<'a> = (
    &'a str,
    &'a [(&'a str, usize)],
    Option<&'a str>,
    &'a str,
    &'a str,
);

/// `contentLayout` on add and the `torrent_content_layout` preference put
/// files where qBittorrent would: the data is found there (checked, not
/// downloaded: no peer is given) and `content_path` says so.
#[test]
fn content_layouts_place_the_files_and_content_path_follows() {
    let dir = TempDir::new("qbt-layout");
    let src = dir.path().join("src");
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    // (name, files, layout, where the data must be, content_path)
    let pack = [("a.mkv", 70_000), ("sub/b.nfo", 3_000)];
    let cases: [LayoutCase<'_>; 4] = [
        ("Pack", &pack, Some("NoSubfolder"), "", ""),
        (
            "Movie.2024.mkv",
            &[("", 90_000)],
            Some("Subfolder"),
            "Movie.2024",
            "Movie.2024/Movie.2024.mkv",
        ),
        (
            "Other.mkv",
            &[("", 20_000)],
            Some("Original"),
            "",
            "Other.mkv",
        ),
        // The preference, set below, for an add that names none.
        ("Clip.mp4", &[("", 30_000)], None, "Clip", "Clip/Clip.mp4"),
    ];
    let prefs = [("json", r#"{"torrent_content_layout": "Subfolder"}"#)];
    assert_eq!(q.post("app/setPreferences", &prefs).0, 200);
    assert_eq!(
        q.json("app/preferences")["torrent_content_layout"],
        "Subfolder"
    );
    for (i, (name, files, layout, folder, content)) in cases.iter().enumerate() {
        // The content as the layout lays it out, in the daemon's folder.
        let made = make(&src, name, files, 70 + i as u64, false);
        for (path, data) in &made.files {
            let relative = match *layout {
                Some("NoSubfolder") => path.strip_prefix(name).unwrap().to_owned(),
                _ => path.clone(),
            };
            let at = download.join(folder).join(relative);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(&at, data).unwrap();
        }
        let bytes = std::fs::read(&made.torrent).unwrap();
        let mut form = vec![("tags", *name)];
        if let Some(l) = layout {
            form.push(("contentLayout", l));
        }
        let (code, body) = q.multipart("torrents/add", &form, &[("t.torrent", &bytes)]);
        assert_eq!((code, body.as_str()), (200, "Ok."), "{name}");
        let start = Instant::now();
        let t = loop {
            let t = q.json(&format!("torrents/info?tag={name}"))[0].clone();
            if t["progress"] == 1.0 {
                break t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: its data was not found where the layout puts it: {t:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(t["downloaded"], 0, "{name}: fetched instead of found");
        let content_path = match *content {
            "" => download.clone(),
            c => download.join(c),
        };
        assert_eq!(
            t["content_path"],
            content_path.display().to_string(),
            "{name}"
        );
    }
    // NoSubfolder: the files are listed without the top folder, as
    // qBittorrent lists them.
    let info = q.json("torrents/info?tag=Pack");
    let hash = info[0]["hash"].as_str().unwrap();
    let files = q.json(&format!("torrents/files?hash={hash}"));
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["a.mkv", "sub/b.nfo"]);
    let (code, _) = q.post(
        "app/setPreferences",
        &[("json", r#"{"torrent_content_layout": "Sideways"}"#)],
    );
    assert_eq!(code, 400);
    drop(d);
}

/// A torrent whose verified files are gone when the daemon starts shows
/// `missingFiles` and downloads nothing; a start while they are still
/// gone changes nothing, a start once they are back checks them (nothing
/// fetched), and a recheck gives up waiting.
#[test]
fn missing_files_wait_for_their_data() {
    let dir = TempDir::new("qbt-missing");
    let made = make(&dir.path().join("src"), "m.bin", &[("", 200_000)], 5, false);
    let (_, data) = made.files[0].clone();
    let bytes = std::fs::read(&made.torrent).unwrap();
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let file = download.join("m.bin");
    std::fs::create_dir_all(&download).unwrap();
    std::fs::write(&file, &data).unwrap();
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    let (code, _) = q.multipart("torrents/add", &[], &[("m.torrent", &bytes)]);
    assert_eq!(code, 200);
    let hash = before_hash(&q);
    let complete = |q: &Qbt| {
        let start = Instant::now();
        loop {
            let t = q.json("torrents/info")[0].clone();
            if t["progress"] == 1.0 && t["state"] == "stalledUP" {
                return t;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{t:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    complete(&q);
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0));

    let restart = |q: &mut Qbt| {
        let (d, _) = daemon_with_credentials(dir.path(), &[]);
        *q = Qbt::new(&d.api);
        q.login(USER, PASS);
        d
    };
    std::fs::remove_file(&file).unwrap();
    let d = restart(&mut q);
    wait_state(&q, "missingFiles");
    let errored = q.json("torrents/info?filter=errored");
    assert_eq!(errored[0]["hash"], hash.as_str());
    // Still gone: a start changes nothing.
    assert_eq!(
        q.post("torrents/start", &[("hashes", hash.as_str())]).0,
        200
    );
    std::thread::sleep(Duration::from_secs(1));
    wait_state(&q, "missingFiles");
    assert!(!file.exists(), "a waiting torrent created its file");
    // Back: a start checks them, nothing is fetched.
    std::fs::write(&file, &data).unwrap();
    assert_eq!(
        q.post("torrents/start", &[("hashes", hash.as_str())]).0,
        200
    );
    let t = complete(&q);
    assert_eq!(t["downloaded"], 0);
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0));

    // Gone again, twice over a restart (the wait keeps its resume data):
    // a recheck ends the wait, and the torrent downloads (no peer here).
    std::fs::remove_file(&file).unwrap();
    let d = restart(&mut q);
    wait_state(&q, "missingFiles");
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0));
    let d = restart(&mut q);
    wait_state(&q, "missingFiles");
    assert_eq!(
        q.post("torrents/recheck", &[("hashes", hash.as_str())]).0,
        200
    );
    wait_state(&q, "stalledDL");
    drop(d);
}

/// While `setLocation` moves a torrent's data it shows `moving` (and the
/// filter `moving` finds it); after, it is where it was sent. The data is
/// copied to another file system (`/dev/shm`, a tmpfs), so the move takes
/// long enough to be seen.
#[test]
fn set_location_shows_moving_while_the_data_moves() {
    let dir = TempDir::new("qbt-moving");
    let shm =
        std::path::Path::new("/dev/shm").join(format!("bittide-moving-{}", std::process::id()));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(shm.clone());
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let made = make(
        &dir.path().join("src"),
        "big.bin",
        &[("", 32 << 20)],
        9,
        false,
    );
    let (_, data) = &made.files[0];
    std::fs::create_dir_all(&download).unwrap();
    std::fs::write(download.join("big.bin"), data).unwrap();
    let mut q = Qbt::new(&d.api);
    q.login(USER, PASS);
    let bytes = std::fs::read(&made.torrent).unwrap();
    assert_eq!(
        q.multipart("torrents/add", &[], &[("b.torrent", &bytes)]).0,
        200
    );
    let hash = before_hash(&q);
    wait_state(&q, "stalledUP");
    let mover = {
        let mut m = Qbt::new(&d.api);
        m.sid = q.sid.clone();
        let (hash, to) = (hash.clone(), shm.display().to_string());
        std::thread::spawn(move || {
            m.post(
                "torrents/setLocation",
                &[("hashes", &hash), ("location", &to)],
            )
        })
    };
    let mut seen = Vec::new();
    let mut filtered = false;
    let start = Instant::now();
    while !mover.is_finished() && start.elapsed() < Duration::from_secs(60) {
        let t = q.json("torrents/info")[0].clone();
        if seen.last() != Some(&t["state"]) {
            seen.push(t["state"].clone());
        }
        // The filter finds it (unless the move ended in between).
        if t["state"] == "moving" {
            let moving = q.json("torrents/info?filter=moving");
            let listed = moving.as_array().unwrap();
            assert!(
                listed.iter().all(|m| m["hash"] == hash.as_str()),
                "{moving}"
            );
            filtered |= !listed.is_empty();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mover.join().unwrap().0, 200);
    assert!(
        seen.contains(&"moving".into()),
        "never seen moving: {seen:?}"
    );
    eprintln!("states seen: {seen:?}; found by the filter: {filtered}");
    wait_state(&q, "stalledUP");
    let t = q.json("torrents/info")[0].clone();
    assert_eq!(t["save_path"], shm.display().to_string());
    assert!(std::fs::read(shm.join("big.bin")).unwrap() == *data);
    assert!(!download.join("big.bin").exists());
    drop(d);
}
