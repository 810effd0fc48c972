//! Shared helpers for bittide's integration tests.
//!
//! - [`bittide`]: the `bittide` binary, built once per test run, so tests
//!   exercise exactly what users run (or the one `BITTIDE_BIN` names).
//! - [`TempDir`]: a scratch folder removed when dropped.
//! - [`seeds`]: the generated seed inputs of the fuzz targets, which
//!   `tests/fuzz_replay.rs` checks are committed and replays.
//! - [`require_tool`]: interop tests fail (not skip) when a tool they need
//!   is missing in CI; locally they say how to install it.
//!
//! - [`compat`]: what the qBittorrent and Transmission compatibility
//!   tests share (a daemon with credentials, seeded content, the PyPI
//!   clients run as scripts).
//! - [`sim`]: the simulator (engines and the driver loop on virtual time
//!   in a seeded network model, with in-memory disks).

pub mod compat;
pub mod daemon;
pub mod netns;
pub mod qbittorrent;
pub mod seeds;
pub mod sim;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_owned()
}

/// Path to the `bittide` binary, built (once) with the same cargo that runs
/// the tests.
///
/// `BITTIDE_BIN=/path/to/bittide` runs the tests against that binary
/// instead, unbuilt: to show that a test fails on an older build (e.g. one
/// made in a worktree at the commit before a fix), or to test a release
/// build.
///
/// The first call also sets `BITTIDE_NO_LSD=1` for the processes the tests
/// start: local service discovery would multicast onto the host's network.
pub fn bittide() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Local service discovery multicasts to the host's network; tests
        // stay on loopback (the LSD test runs in a network namespace of its
        // own and turns it back on there). `scripts/test` exports it
        // already; setting it here covers a bare `cargo test`.
        if std::env::var_os("BITTIDE_NO_LSD").is_none() {
            std::env::set_var("BITTIDE_NO_LSD", "1");
        }
        if let Some(bin) = std::env::var_os("BITTIDE_BIN").filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "BITTIDE_BIN: no file at {}", bin.display());
            return bin;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "bittide-cli", "--bin", "bittide"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build for the bittide binary");
        assert!(status.success(), "building the bittide binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = target
            .join("debug")
            .join(format!("bittide{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// A scratch folder under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty folder whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bittide-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks that `program` can run (`check` is an argument list that exits
/// 0). Panics with install instructions if not: interop tests never skip
/// silently, in CI or elsewhere.
pub fn require_tool(program: &str, check: &[&str], package: &str) {
    let ok = Command::new(program)
        .args(check)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{program}` is needed for this interop test: install the Debian package `{package}` \
         (./scripts/test installs everything the tests need)"
    );
}

/// Debian's python, which is where python3-libtorrent installs.
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// The python of the virtualenv `scripts/test` makes (`BITTIDE_PYTHON`,
/// else `target/compat-venv`), with the PyPI API clients the
/// compatibility tests drive (`qbittorrent-api`, `transmission-rpc`) and
/// Debian's libtorrent. Fails with how to get it when it is missing.
pub fn compat_python() -> PathBuf {
    let python = std::env::var_os("BITTIDE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/compat-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import qbittorrentapi, transmission_rpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} lacks qbittorrent-api or transmission-rpc: run ./scripts/test once \
         (it makes the virtualenv), or set BITTIDE_PYTHON",
        python.display()
    );
    python
}

/// Starts `cmd` (a `bittide seed … --json`) with its JSON events going to
/// `log`, and returns once it reports seeding (it takes peers only then:
/// while checking its data it refuses them). Fails after `limit`.
pub fn start_seeding(
    cmd: &mut Command,
    log: &Path,
    limit: std::time::Duration,
) -> std::process::Child {
    let mut child = cmd
        .stdout(std::fs::File::create(log).expect("create the seed log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bittide seed");
    let start = std::time::Instant::now();
    loop {
        let out = std::fs::read_to_string(log).unwrap_or_default();
        // The `state` event of docs/json-events.md.
        let seeding = out.lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["event"] == "state" && v["state"] == "seeding")
        });
        if seeding {
            return child;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bittide seed did not start seeding ({exited:?}): {out}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Starts `tests/interop/lt_tool.py ARGS` (a libtorrent seeder of some
/// kind) and returns once it prints `ready` (failing after 60 s); the
/// guard stops it.
///
/// A seeder that dies before it is ready (libtorrent has crashed at
/// session start on CI, with nothing on stderr) is started once more, and
/// says so on stderr; a second failure fails the test with both accounts.
pub fn libtorrent_server(args: &[&str]) -> ChildGuard {
    require_tool(
        DEBIAN_PYTHON,
        &["-c", "import libtorrent"],
        "python3-libtorrent",
    );
    let first = match start_libtorrent_server(args) {
        Ok(guard) => return guard,
        Err(why) => why,
    };
    eprintln!("libtorrent {args:?} did not start ({first}); starting it once more");
    match start_libtorrent_server(args) {
        Ok(guard) => guard,
        Err(second) => panic!("libtorrent {args:?} did not start: {first}; again: {second}"),
    }
}

fn start_libtorrent_server(args: &[&str]) -> Result<ChildGuard, String> {
    use std::io::BufRead;
    let mut child = Command::new(DEBIAN_PYTHON)
        .arg(workspace_root().join("tests/interop/lt_tool.py"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {DEBIAN_PYTHON}: {e}"))?;
    let out = child.stdout.take().expect("piped stdout");
    // Its stderr is read all along (a full pipe would block it) and kept
    // for the failure message: why it did not start.
    let err = child.stderr.take().expect("piped stderr");
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let said = said.clone();
        move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = said.lock().unwrap_or_else(|p| p.into_inner());
                if s.len() < 8192 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        }
    });
    let mut guard = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(60));
    if line.as_deref().map(str::trim) == Ok("ready") {
        return Ok(guard);
    }
    let printed = match &line {
        Ok(l) if l.is_empty() => "closed its output".to_string(),
        Ok(l) => format!("printed {:?}", l.trim()),
        Err(_) => "printed nothing in 60 s".to_string(),
    };
    let _ = guard.0.kill();
    let status = guard.0.wait();
    // stderr ends with the process; its reader then has all of it.
    let _ = reader.join();
    let said = said.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    Err(format!("it {printed}, {status}, stderr: {said:?}"))
}

/// `bittide tracker serve ARGS` (its `--http`/`--udp` addresses among
/// them), once it says it is serving; the guard stops it.
pub fn bittide_tracker(args: &[&str]) -> ChildGuard {
    serve_tracker(Command::new(bittide()), args)
}

/// [`bittide_tracker`] run by `command` (`bittide`, or one that runs it
/// elsewhere, such as inside a network namespace).
pub fn serve_tracker(mut command: Command, args: &[&str]) -> ChildGuard {
    use std::io::BufRead;
    let mut child = command
        .args(["tracker", "serve"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bittide tracker serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let mut line = String::new();
    let _ = std::io::BufReader::new(stdout).read_line(&mut line);
    assert!(
        line.starts_with("serving "),
        "bittide tracker serve: {line}"
    );
    guard
}

/// Asserts that files `a` and `b` hold the same bytes (without printing
/// them: they are megabytes).
pub fn assert_same_file(a: &Path, b: &Path) {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        read(a) == read(b),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

/// Runs `tests/interop/lt_tool.py` with libtorrent and returns its stdout.
pub fn libtorrent(args: &[&str]) -> String {
    require_tool(
        DEBIAN_PYTHON,
        &["-c", "import libtorrent"],
        "python3-libtorrent",
    );
    let script = workspace_root().join("tests/interop/lt_tool.py");
    let out = Command::new(DEBIAN_PYTHON)
        .arg(script)
        .args(args)
        .output()
        .expect("run lt_tool.py");
    assert!(
        out.status.success(),
        "lt_tool.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One file to share: `len` bytes of [`content_bytes`]`(len, seed)` at
/// `dir/src/<name>`, and its torrent at `dir/<name>.torrent` made by
/// `bittide create` with `piece_size` pieces (`64K`) and `tracker` if any.
/// Returns the content folder (`dir/src`) and the torrent.
pub fn one_file_torrent(
    dir: &Path,
    name: &str,
    len: usize,
    seed: u64,
    piece_size: &str,
    tracker: Option<&str>,
) -> (PathBuf, PathBuf) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("create the content folder");
    let file = src.join(name);
    std::fs::write(&file, content_bytes(len, seed)).expect("write the content");
    let torrent = dir.join(format!("{name}.torrent"));
    let mut args = vec![
        "create",
        file.to_str().expect("a UTF-8 path"),
        "--piece-size",
        piece_size,
        "-o",
        torrent.to_str().expect("a UTF-8 path"),
    ];
    if let Some(t) = tracker {
        args.extend(["-t", t]);
    }
    run_bittide(&args);
    (src, torrent)
}

/// Deterministic pseudo-random bytes (xorshift), for test content.
pub fn content_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A child process killed and reaped when dropped, so no test leaves a
/// server running.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` (killing it after `limit`) and returns how it ended
/// and its peak resident memory in KiB, from the kernel's accounting of
/// that one process (`wait4`), so nothing is sampled or missed. The child
/// is reaped here; its pipes are closed.
#[allow(unsafe_code)] // wait4: std offers no per-child resource usage.
pub fn wait_peak_rss(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> (Option<i32>, u64) {
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of the plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std never waits
        // on it behind our back); the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
            // Reaped: std must not wait on (or kill) the pid again.
            std::mem::forget(child);
            return (code, usage.ru_maxrss as u64);
        }
        assert!(r == 0, "wait4 failed");
        if !killed && start.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Runs the `bittide` binary with `args`; returns stdout, panicking with
/// stderr on failure.
pub fn run_bittide(args: &[&str]) -> String {
    let out = Command::new(bittide())
        .args(args)
        .output()
        .expect("run bittide");
    assert!(
        out.status.success(),
        "bittide {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to the end, killing it after `limit`; returns its output
/// (stdout and stderr read by threads, so a chatty child never blocks).
pub fn run_bounded(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the command");
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read_all(Box::new(child.stdout.take().expect("stdout")));
    let err = read_all(Box::new(child.stderr.take().expect("stderr")));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// opentracker on 127.0.0.1:`port` (HTTP and UDP), allowing only `hashes`
/// (the Debian build is whitelist-only; it chroots into `dir`, so its
/// paths are relative to it). `None` if it exits before serving: tests run
/// in parallel, and a port free a moment ago can be taken first.
pub fn opentracker(dir: &Path, port: u16, hashes: &[String]) -> Option<ChildGuard> {
    use std::os::unix::fs::PermissionsExt;
    require_tool("sh", &["-c", "command -v opentracker"], "opentracker");
    std::fs::create_dir_all(dir).expect("tracker folder");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.join("whitelist.txt"), hashes.join("\n") + "\n").expect("whitelist");
    std::fs::write(dir.join("conf"), "access.whitelist /whitelist.txt\n").expect("conf");
    let child = Command::new("opentracker")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-f")
        .arg(dir.join("conf"))
        .arg("-d")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start opentracker");
    let mut guard = ChildGuard(child);
    // Ready when it accepts TCP and is still running (an answer from a
    // process that took the port first does not count).
    for _ in 0..100 {
        if guard.0.try_wait().ok().flatten().is_some() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(100));
            return guard.0.try_wait().ok().flatten().is_none().then_some(guard);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("opentracker did not start");
}
