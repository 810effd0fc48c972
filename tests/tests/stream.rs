//! Streaming over HTTP with ranges (issue 15, `docs/api.md` "Streaming"),
//! against a `bittide daemon` downloading from a rate-limited libtorrent
//! seeder on loopback: every range form, byte for byte against the
//! source, while the file is only partly downloaded; a seek to 80 % served
//! long before the whole file is in; a skipped file streamed; the M3U
//! playlist; a stream that ends when its torrent is removed; and a small
//! video played in headless Chromium from the stream URL while it
//! downloads, with a seek to 80 %, and opened by itself in a tab as the
//! web UI's "Play" does. Every process and wait is bounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bittide_tests::daemon::Daemon;
use bittide_tests::{
    compat_python, content_bytes, free_port, libtorrent, libtorrent_server, require_tool,
    run_bittide, run_bounded, workspace_root, ChildGuard, TempDir,
};
use serde_json::Value;

const PIECE: &str = "256K";
/// The seeder's upload limit: the 16 MiB clip takes about 16 s.
const RATE: u64 = 1 << 20;
const CLIP: usize = 16 << 20;
/// The file the user skips: larger than a stream's window, so streaming
/// part of it shows that only what is read (and read ahead) is fetched.
const EXTRA: usize = 12 << 20;

/// A folder torrent `show/` (clip.mp4, extra.mkv, notes.txt) and its
/// content.
struct Show {
    torrent: PathBuf,
    hash: String,
    clip: Vec<u8>,
    extra: Vec<u8>,
}

fn make_show(dir: &Path) -> (Show, PathBuf) {
    let src = dir.join("src");
    let root = src.join("show");
    std::fs::create_dir_all(&root).unwrap();
    let clip = content_bytes(CLIP, 7);
    let extra = content_bytes(EXTRA, 8);
    std::fs::write(root.join("clip.mp4"), &clip).unwrap();
    std::fs::write(root.join("extra.mkv"), &extra).unwrap();
    std::fs::write(root.join("notes.txt"), b"hello\n".repeat(500)).unwrap();
    let torrent = dir.join("show.torrent");
    run_bittide(&[
        "create",
        root.to_str().unwrap(),
        "--piece-size",
        PIECE,
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let hash = libtorrent(&["hash", torrent.to_str().unwrap()]);
    (
        Show {
            torrent,
            hash,
            clip,
            extra,
        },
        src,
    )
}

/// A libtorrent seeder of `torrent` (content under `src`) on `port`,
/// uploading at most `rate` bytes/s.
fn seeder(torrent: &Path, src: &Path, port: u16, rate: u64) -> ChildGuard {
    libtorrent_server(&[
        "seed",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &port.to_string(),
        &rate.to_string(),
    ])
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

/// What came back: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = agent().request(method, url);
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let r = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = r.header(&n).unwrap_or("").to_owned();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    r.into_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
    Answer {
        status,
        headers,
        body,
    }
}

fn get_range(url: &str, range: &str) -> Answer {
    request("GET", url, &[("Range", range)])
}

/// A 206 for `range` with exactly `want` at `start` of a file of `len`.
fn check_part(a: &Answer, what: &str, start: usize, want: &[u8], len: usize) {
    assert_eq!(a.status, 206, "{what}: status");
    let end = start + want.len() - 1;
    assert_eq!(
        a.header("content-range"),
        Some(format!("bytes {start}-{end}/{len}").as_str()),
        "{what}: Content-Range"
    );
    assert_eq!(
        a.header("content-length"),
        Some(want.len().to_string().as_str()),
        "{what}: Content-Length"
    );
    assert!(a.body == want, "{what}: the bytes differ from the source's");
}

fn details(d: &Daemon, hash: &str) -> Value {
    d.get(&format!("/api/v1/torrents/{hash}"))
}

#[test]
fn ranges_seek_and_playlist_on_a_partly_downloaded_torrent() {
    let dir = TempDir::new("stream-ranges");
    let (show, src) = make_show(dir.path());
    let port = free_port();
    let _seeder = seeder(&show.torrent, &src, port, RATE);
    let d = Daemon::start(&dir.path().join("state"), &dir.path().join("dl"), &[]);
    let hash = show.hash.clone();
    let total = 16u64 << 20;
    d.add_file(&show.torrent, &format!("only=0,2&peers=127.0.0.1:{port}"));
    let by_index = format!("{}/api/v1/torrents/{hash}/files/0/stream", d.api);
    let by_path = format!("{}/api/v1/torrents/{hash}/stream/show/clip.mp4", d.api);

    // HEAD: what a GET would send, without the body.
    let head = request("HEAD", &by_index, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert_eq!(head.header("content-type"), Some("video/mp4"));
    assert_eq!(
        head.header("content-length"),
        Some(CLIP.to_string().as_str())
    );
    assert_eq!(
        head.header("content-disposition"),
        Some("inline; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4")
    );
    assert!(head.body.is_empty());

    // Seek to 80 %: served long before the whole torrent is in.
    let at = CLIP * 8 / 10;
    let started = Instant::now();
    let seek = get_range(&by_index, &format!("bytes={at}-{}", at + 65535));
    let seek_time = started.elapsed();
    let after_seek = details(&d, &hash);
    let downloaded = after_seek["downloaded"].as_u64().unwrap();
    check_part(&seek, "seek to 80 %", at, &show.clip[at..at + 65536], CLIP);
    eprintln!(
        "seek to 80 %: {:.2} s, {:.1} MiB of {:.1} MiB downloaded when it returned",
        seek_time.as_secs_f64(),
        downloaded as f64 / 1048576.0,
        total as f64 / 1048576.0
    );
    assert!(
        downloaded < total / 2,
        "the seek returned only after {downloaded} of {total} bytes were downloaded"
    );

    // Every single-range form, byte for byte.
    let suffix = get_range(&by_index, "bytes=-100000");
    check_part(
        &suffix,
        "suffix",
        CLIP - 100000,
        &show.clip[CLIP - 100000..],
        CLIP,
    );
    let closed = get_range(&by_path, "bytes=1000-2999");
    check_part(
        &closed,
        "first-last by path",
        1000,
        &show.clip[1000..3000],
        CLIP,
    );
    let multi = get_range(&by_index, "bytes=0-9,100-199");
    check_part(
        &multi,
        "several ranges: the first",
        0,
        &show.clip[..10],
        CLIP,
    );
    let past = get_range(&by_index, &format!("bytes={CLIP}-"));
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{CLIP}").as_str())
    );
    let partly = details(&d, &hash)["progress"].as_f64().unwrap();
    eprintln!("progress after the range checks: {:.0} %", partly * 100.0);
    assert!(
        partly < 1.0,
        "the torrent finished before the range checks: they did not test a partial file"
    );
    let tail = CLIP - (3 << 20);
    let open = get_range(&by_index, &format!("bytes={tail}-"));
    check_part(&open, "open-ended", tail, &show.clip[tail..], CLIP);

    // Two streams at once.
    let readers: Vec<_> = [4usize << 20, 10 << 20]
        .into_iter()
        .map(|start| {
            let url = by_index.clone();
            std::thread::spawn(move || {
                let a = get_range(&url, &format!("bytes={start}-{}", start + (1 << 20) - 1));
                (start, a)
            })
        })
        .collect();
    for r in readers {
        let (start, a) = r.join().expect("a reader thread");
        check_part(
            &a,
            "two at once",
            start,
            &show.clip[start..start + (1 << 20)],
            CLIP,
        );
    }

    // A file the user skipped: its pieces under the stream are fetched
    // (into the part file), its priority stays "skip".
    let extra_url = format!("{}/api/v1/torrents/{hash}/stream/show/extra.mkv", d.api);
    let extra_head = get_range(&extra_url, "bytes=0-65535");
    assert_eq!(extra_head.header("content-type"), Some("video/x-matroska"));
    check_part(
        &extra_head,
        "skipped file, start",
        0,
        &show.extra[..65536],
        EXTRA,
    );
    let extra_tail = get_range(&extra_url, "bytes=-1000");
    check_part(
        &extra_tail,
        "skipped file, end",
        EXTRA - 1000,
        &show.extra[EXTRA - 1000..],
        EXTRA,
    );
    let files = details(&d, &hash)["files"].clone();
    assert_eq!(files[1]["priority"], "skip", "{files:#}");

    let notes = request(
        "HEAD",
        &format!("{}/api/v1/torrents/{hash}/files/2/stream", d.api),
        &[],
    );
    assert_eq!(
        notes.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // The playlist: media files only, absolute URLs on the Host used.
    let list = request(
        "GET",
        &format!("{}/api/v1/torrents/{hash}/playlist.m3u", d.api),
        &[],
    );
    assert_eq!(list.status, 200);
    let text = String::from_utf8(list.body.clone()).unwrap();
    let clip_url = format!("{}/api/v1/torrents/{hash}/stream/show/clip.mp4", d.api);
    assert_eq!(
        text,
        format!("#EXTM3U\n#EXTINF:-1,clip.mp4\n{clip_url}\n#EXTINF:-1,extra.mkv\n{extra_url}\n")
    );

    // No Range: the whole file, once it has all arrived.
    let whole = request("GET", &clip_url, &[]);
    assert_eq!(whole.status, 200);
    assert!(whole.body == show.clip, "the whole file differs");
    // An If-Range that is not our entity tag: the whole file too.
    let stale = request(
        "GET",
        &by_index,
        &[
            ("Range", "bytes=0-9"),
            ("If-Range", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
    );
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.len(), CLIP);
    let etag = whole.header("etag").expect("an ETag").to_owned();
    let fresh = request(
        "GET",
        &by_index,
        &[("Range", "bytes=0-9"), ("If-Range", etag.as_str())],
    );
    check_part(&fresh, "If-Range with our ETag", 0, &show.clip[..10], CLIP);
    // The wanted files are in, the skipped one only where it was read
    // (and read ahead): the torrent is complete without it.
    d.wait(
        "the torrent to seed",
        Duration::from_secs(60),
        |_| {},
        |list| bittide_tests::daemon::entry(list, &hash)["state"] == "seeding",
    );
    let extra_progress = details(&d, &hash)["files"][1]["progress"].as_f64().unwrap();
    eprintln!(
        "skipped file: {:.0} % fetched for the streams that read it",
        extra_progress * 100.0
    );
    assert!(
        extra_progress > 0.0 && extra_progress < 0.75,
        "the skipped file is {extra_progress} fetched"
    );
    // A page of another site may not open a stream.
    let foreign = request(
        "GET",
        &by_index,
        &[("Sec-Fetch-Site", "cross-site"), ("Range", "bytes=0-9")],
    );
    assert_eq!(foreign.status, 403);
}

#[test]
fn a_stream_ends_when_its_torrent_is_removed_and_needs_the_login() {
    let dir = TempDir::new("stream-removed");
    let (show, _src) = make_show(dir.path());
    let d = Daemon::start(
        &dir.path().join("state"),
        &dir.path().join("dl"),
        &["--api-username", "u", "--api-password", "p@ss word"],
    );
    let hash = show.hash.clone();
    let auth = "Basic dTpwQHNzIHdvcmQ="; // u:p@ss word
    let bytes = std::fs::read(&show.torrent).unwrap();
    let added = agent()
        .post(&format!("{}/api/v1/torrents", d.api))
        .set("Authorization", auth)
        .set("Content-Type", "application/x-bittorrent")
        .send_bytes(&bytes);
    assert!(added.is_ok(), "add: {added:?}");
    let url = format!("{}/api/v1/torrents/{hash}/files/0/stream", d.api);

    let anonymous = request("GET", &url, &[]);
    assert_eq!(anonymous.status, 401);

    let list = request(
        "GET",
        &format!("{}/api/v1/torrents/{hash}/playlist.m3u", d.api),
        &[("Authorization", auth)],
    );
    let text = String::from_utf8(list.body).unwrap();
    let host = d.api.strip_prefix("http://").unwrap();
    assert!(
        text.contains(&format!(
            "http://u:p%40ss%20word@{host}/api/v1/torrents/{hash}/stream/show/clip.mp4"
        )),
        "{text}"
    );

    // No peer has the data: the read waits, until the torrent goes.
    let reader = std::thread::spawn({
        let url = url.clone();
        move || {
            let r = agent()
                .get(&url)
                .set("Authorization", auth)
                .set("Range", "bytes=1000-")
                .call();
            let started = Instant::now();
            let got = r.map(|r| {
                let mut body = Vec::new();
                let read = r.into_reader().read_to_end(&mut body);
                (body.len(), read.is_err())
            });
            (got.map_err(|e| e.to_string()), started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(!reader.is_finished(), "the read did not wait for data");
    let removed = Instant::now();
    let gone = agent()
        .delete(&format!("{}/api/v1/torrents/{hash}", d.api))
        .set("Authorization", auth)
        .call();
    assert!(gone.is_ok(), "remove: {gone:?}");
    let (got, _) = reader.join().expect("the reader thread");
    let ended_after = removed.elapsed();
    let (len, cut) = got.expect("the response's headers came before the data");
    assert_eq!(len, 0, "no byte of a file that never arrived");
    assert!(cut, "the body ended cleanly instead of being cut short");
    assert!(
        ended_after < Duration::from_secs(5),
        "the stream ended {ended_after:?} after the removal"
    );
}

/// Where a test leaves what a person may want to look at (screenshots):
/// `target/test-output/NAME/`, kept after the run.
fn output_dir(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/test-output").join(name);
    std::fs::create_dir_all(&dir).expect("create the test output folder");
    dir
}

#[test]
fn chromium_plays_a_downloading_video_and_seeks_to_80_percent() {
    require_tool("ffmpeg", &["-version"], "ffmpeg");
    require_tool("/usr/bin/chromium", &["--version"], "chromium");
    require_tool("/usr/bin/chromedriver", &["--version"], "chromium-driver");
    let python = compat_python();
    require_tool(
        python.to_str().unwrap(),
        &["-c", "import selenium"],
        "selenium (PyPI, in the venv ./scripts/test makes)",
    );
    let dir = TempDir::new("stream-browser");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = src.join("clip.webm");
    // 30 s of 320x240 VP8 at 2 Mbit/s (noise keeps the rate up): 7 MiB,
    // a key frame every second.
    let made = run_bounded(
        std::process::Command::new("ffmpeg").args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "30",
            "-vf",
            "noise=alls=30:allf=t",
            "-c:v",
            "libvpx",
            "-b:v",
            "2M",
            "-minrate",
            "2M",
            "-maxrate",
            "2M",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            "25",
            "-an",
            video.to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    assert!(
        made.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let torrent = dir.path().join("clip.torrent");
    run_bittide(&[
        "create",
        video.to_str().unwrap(),
        "--piece-size",
        "64K",
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let hash = libtorrent(&["hash", torrent.to_str().unwrap()]);
    let port = free_port();
    // 512 KiB/s: faster than the video plays (2 Mbit/s), slower than the
    // whole file would need to be in before the seek.
    let _seeder = seeder(&torrent, &src, port, 512 << 10);
    let d = Daemon::start(&dir.path().join("state"), &dir.path().join("dl"), &[]);
    d.add_file(&torrent, &format!("peers=127.0.0.1:{port}"));
    let shot = output_dir("stream_browser").join("seeked.png");
    let _ = std::fs::remove_file(&shot);
    let out = run_bounded(
        std::process::Command::new(&python).args([
            workspace_root()
                .join("tests/interop/stream_browser.py")
                .to_str()
                .unwrap(),
            &format!("{}/", d.api),
            &format!("{}/api/v1/torrents/{hash}/files/0/stream", d.api),
            &format!("{}/api/v1/torrents/{hash}", d.api),
            shot.to_str().unwrap(),
        ]),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!("chromium: {seen}");
    let duration = seen["duration"].as_f64().unwrap();
    assert!((duration - 30.0).abs() < 1.0, "duration {duration}");
    assert!(seen["time_after_seek"].as_f64().unwrap() > seen["seek_to"].as_f64().unwrap() + 1.0);
    assert!(
        seen["progress_at_seek"].as_f64().unwrap() < 1.0,
        "the whole video was in before the seek: it did not test streaming"
    );
    let errors: Vec<&Value> = seen["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        // The page is a JSON endpoint: the daemon has no favicon until the
        // web UI brings one, and Chromium asks for it by itself.
        .filter(|e| {
            !e["message"]
                .as_str()
                .unwrap_or("")
                .contains("/favicon.ico ")
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
}
