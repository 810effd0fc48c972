//! How `bittide download`, `seed` and `demo` begin and end, run as a user
//! runs them: the demo works with nothing set up; Ctrl-C stops gracefully
//! once and at once twice, and an incomplete download exits 130 either
//! way; a finished download tells its tracker `stopped`; trackers that
//! all fail end in exit 5 with the failure said once, never the request
//! URL; `seed` pointed at the wrong folder says which path it expected.
//!
//! Everything runs on loopback; trackers are a few lines of Rust here
//! (one that logs and answers, one that accepts and never answers), so
//! each test sees exactly what bittide sent.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bittide_tests::{bittide, content_bytes, run_bittide, run_bounded, ChildGuard, TempDir};

/// A tracker on loopback, stopped when dropped. `answer` says whether it
/// replies (an empty peer list) or holds every connection open, silent.
struct TestTracker {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestTracker {
    fn start(answer: bool) -> TestTracker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tracker");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("tracker address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (requests, stop) = (requests.clone(), stop.clone());
            move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    if !answer {
                        held.push(stream);
                        continue;
                    }
                    // Each connection on its own thread: one client
                    // that connects and says nothing (up to the 5 s read
                    // timeout) must not hold up the others' announces.
                    let requests = requests.clone();
                    std::thread::spawn(move || serve_one(stream, &requests));
                }
            }
        });
        TestTracker {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// The `event=` of each announce from the peer listening on `port`.
    fn events_from(&self, port: u16) -> Vec<String> {
        let port = format!("port={port}");
        self.requests
            .lock()
            .expect("log")
            .iter()
            .filter(|r| r.split(['?', '&', ' ']).any(|p| p == port))
            .map(|r| {
                r.split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("event="))
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP request, logs its request line, then answers with an
/// empty peer list: logged before the client can hear the answer (and
/// exit), so a test reading the log once the client is gone finds every
/// request it made.
fn serve_one(mut stream: TcpStream, requests: &Mutex<Vec<String>>) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        if stream.read(&mut byte).ok()? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next()?.to_owned();
    requests.lock().expect("log").push(line);
    let body = b"d8:intervali1800e5:peers0:e";
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.write_all(body);
    Some(())
}

/// `DIR/payload` (`len` bytes) and a torrent of it announcing to
/// `trackers`, with small pieces so a rate limit spreads the download.
fn make_torrent(dir: &Path, len: usize, trackers: &[String]) -> std::path::PathBuf {
    let content = dir.join("content");
    std::fs::create_dir_all(&content).expect("content folder");
    std::fs::write(content.join("payload"), content_bytes(len, 7)).expect("content");
    let torrent = dir.join("t.torrent");
    let mut args = vec![
        "create".to_owned(),
        content.join("payload").display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--piece-size".into(),
        "64K".into(),
    ];
    for t in trackers {
        args.extend(["-t".into(), t.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bittide(&args);
    torrent
}

/// A `bittide seed` of `torrent` from `dir/content` on 127.0.0.1:`port`,
/// limited to `rate` upload.
fn seeder(torrent: &Path, dir: &Path, port: u16, rate: &str) -> ChildGuard {
    let child = Command::new(bittide())
        .arg("seed")
        .arg(torrent)
        .arg("-o")
        .arg(dir.join("content"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-dht"])
        .args(["--upload-limit", rate, "--recheck"])
        .arg("--state-dir")
        .arg(dir.join("seed-state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bittide seed");
    ChildGuard(child)
}

/// `bittide download` of `torrent` into `dir/out`, from 127.0.0.1:`port`.
fn download(torrent: &Path, dir: &Path, listen: u16) -> Command {
    let mut cmd = Command::new(bittide());
    cmd.arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(dir.join("out"))
        .args(["--listen", &format!("127.0.0.1:{listen}"), "--no-dht"])
        .arg("--state-dir")
        .arg(dir.join("state"));
    cmd
}

fn sigint(child: &Child) {
    // SAFETY: kill(2) on our own child's pid, which is not yet reaped.
    #[allow(unsafe_code)]
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(r, 0, "kill SIGINT");
}

/// Waits up to `limit` for `child` to exit; its code (`None` if it was
/// still running and had to be killed).
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn the_demo_downloads_and_verifies_with_nothing_set_up() {
    let dir = TempDir::new("cli-demo");
    let out = run_bounded(
        Command::new(bittide())
            .args(["demo", "--size", "4M", "--download-limit", "none", "-o"])
            .arg(dir.path()),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    for f in ["README.txt", "data.bin", "more/small.bin"] {
        let a = std::fs::read(dir.path().join("seed/bittide-demo").join(f)).expect("original");
        let b = std::fs::read(dir.path().join("download/bittide-demo").join(f)).expect("copy");
        assert!(a == b && !a.is_empty(), "{f} differs");
    }
}

#[test]
fn two_ctrl_c_exit_130_at_once_even_with_a_tracker_that_never_answers() {
    let dir = TempDir::new("cli-2sigint");
    let tracker = TestTracker::start(false);
    let torrent = make_torrent(dir.path(), 256 << 10, &[tracker.url()]);
    let mut child = download(&torrent, dir.path(), 0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the download");
    std::thread::sleep(Duration::from_millis(1500));
    sigint(&child);
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let second = Instant::now();
    let code = wait_exit(&mut child, Duration::from_secs(10));
    let took = second.elapsed();
    assert_eq!(code, Some(130), "exit code after two Ctrl-C");
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after the second Ctrl-C"
    );
}

#[test]
fn one_ctrl_c_mid_download_exits_130_with_resume_data_saved() {
    let dir = TempDir::new("cli-1sigint");
    let torrent = make_torrent(dir.path(), 8 << 20, &[]);
    let port = bittide_tests::free_port();
    let _seed = seeder(&torrent, dir.path(), port, "1M");
    let mut child = download(&torrent, dir.path(), 0)
        .args(["--peer", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the download");
    // Wait until some of it is on disk (the file appears with the first
    // piece written).
    let payload = dir.path().join("out/payload");
    let start = Instant::now();
    while !payload.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1000));
    sigint(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(
        code,
        Some(130),
        "a download stopped half-way is not a success"
    );
    let torrents = dir.path().join("state/torrents");
    let saved: Vec<_> = std::fs::read_dir(&torrents)
        .expect("the state folder has torrents/")
        .filter_map(Result::ok)
        .map(|e| e.path().join("resume"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    assert_eq!(saved.len(), 1, "resume data in {}", torrents.display());
}

#[test]
fn a_finished_download_tells_its_tracker_stopped() {
    let dir = TempDir::new("cli-stopped");
    let tracker = TestTracker::start(true);
    let torrent = make_torrent(dir.path(), 1 << 20, &[tracker.url()]);
    let seed_port = bittide_tests::free_port();
    let _seed = seeder(&torrent, dir.path(), seed_port, "0");
    let listen = bittide_tests::free_port();
    let out = run_bounded(
        download(&torrent, dir.path(), listen).args([
            "--peer",
            &format!("127.0.0.1:{seed_port}"),
            "--json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = tracker.events_from(listen);
    assert_eq!(
        events.last().map(String::as_str),
        Some("stopped"),
        "the downloader's announces: {events:?}; its events: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.contains("\"progress\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(events.iter().any(|e| e == "completed"), "{events:?}");
}

#[test]
fn trackers_that_all_fail_end_in_exit_5_said_once_without_the_request() {
    let dir = TempDir::new("cli-exit5");
    // Ports nobody listens on: connection refused for HTTP, port
    // unreachable for UDP.
    let closed = bittide_tests::free_port();
    let trackers = [
        format!("http://127.0.0.1:{closed}/announce"),
        format!("udp://127.0.0.1:{closed}/announce"),
    ];
    let torrent = make_torrent(dir.path(), 256 << 10, &trackers);
    let start = Instant::now();
    let out = run_bounded(
        download(&torrent, dir.path(), 0).args(["--timeout", "3s"]),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("info_hash") && !text.contains("peer_id"),
            "a request URL was printed: {text}"
        );
    }
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("every tracker failed")
            && last.contains(&format!("http://127.0.0.1:{closed}"))
            && last.contains(&format!("udp://127.0.0.1:{closed}")),
        "{stderr}"
    );
    // Each tracker's failure is said once, however often it was retried.
    for scheme in ["http", "udp"] {
        let name = format!("{scheme}://127.0.0.1:{closed}");
        let lines = stderr.lines().filter(|l| l.contains(&name)).count();
        assert!(lines <= 2, "{name} said {lines} times: {stderr}");
    }
}

#[test]
fn seed_from_the_wrong_folder_names_the_path_it_expected() {
    let dir = TempDir::new("cli-wrongdir");
    let content = dir.path().join("tree");
    std::fs::create_dir_all(content.join("sub")).expect("tree");
    std::fs::write(content.join("a.bin"), content_bytes(200_000, 1)).expect("a");
    std::fs::write(content.join("sub/b.bin"), content_bytes(50_000, 2)).expect("b");
    let torrent = dir.path().join("tree.torrent");
    run_bittide(&[
        "create",
        &content.display().to_string(),
        "-o",
        &torrent.display().to_string(),
    ]);
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty folder");
    // The content folder itself instead of its parent, then an empty one.
    for (folder, hint) in [(&content, Some(dir.path())), (&empty, None)] {
        let start = Instant::now();
        let out = run_bounded(
            Command::new(bittide())
                .arg("seed")
                .arg(&torrent)
                .arg("-o")
                .arg(folder)
                .args(["--listen", "127.0.0.1:0", "--no-dht", "--state-dir"])
                .arg(dir.path().join("state")),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "seed from {} should fail: {stderr}",
            folder.display()
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let expected = folder.join("tree");
        assert!(
            stderr.contains(&expected.display().to_string()),
            "the error should name {}: {stderr}",
            expected.display()
        );
        if let Some(parent) = hint {
            let parent = std::fs::canonicalize(parent).expect("canonical");
            assert!(
                stderr.contains(&format!("did you mean `{}`", parent.display())),
                "{stderr}"
            );
        }
    }
}
