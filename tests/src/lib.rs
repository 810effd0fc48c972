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
pub mod hash_probe;
pub mod lt;
pub use lt::Libtorrent;
pub mod netns;
pub mod nginx;
pub mod postgres;
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

/// A scratch folder under the system temp dir, removed on drop (kept when
/// `BITTIDE_KEEP_TEMP` is set, to read a failed test's logs).
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
        if std::env::var_os("BITTIDE_KEEP_TEMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
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

/// Starts `tests/interop/lt_tool.py ARGS` under Debian's libtorrent:
/// [`Libtorrent::server`].
pub fn libtorrent_server(args: &[&str]) -> ChildGuard {
    Libtorrent::Debian.server(args)
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

/// Runs `tests/interop/lt_tool.py ARGS` under Debian's libtorrent:
/// [`Libtorrent::run`].
pub fn libtorrent(args: &[&str]) -> String {
    Libtorrent::Debian.run(args)
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
        // A server that died before its test was done (libtorrent 2.0.8
        // has been killed by a signal under load) says so in the failure
        // output, not silently.
        if let Ok(Some(status)) = self.0.try_wait() {
            if !status.success() {
                eprintln!("note: process {} had already ended: {status}", self.0.id());
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The peak resident memory of live process `pid` so far, in KiB (its
/// `VmHWM`); `None` once it has exited.
pub fn peak_rss_so_far(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    kib.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Waits for `child` (killing it after `limit`) and returns how it ended
/// and its peak resident memory in KiB: the kernel's high-water mark of
/// its own memory (`VmHWM`), read every 10 ms until it exits. Not
/// `wait4`'s `ru_maxrss`: a child spawned with `vfork` (as std does)
/// counts the *parent's* peak in it, so a child of a large test process
/// looked as large as its parent. The child is reaped here.
pub fn wait_peak_rss(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> (Option<i32>, u64) {
    let start = std::time::Instant::now();
    let mut killed = false;
    let mut peak_kib = 0;
    loop {
        peak_kib = peak_kib.max(peak_rss_so_far(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return (status.code(), peak_kib);
        }
        if !killed && start.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive ports free for TCP and UDP on 127.0.0.1
/// (and on ::1 where the host has it) right now.
///
/// They come from below the kernel's ephemeral range
/// (`ip_local_port_range`), handed out in turn within this process:
/// between this call and the moment a child process binds the port, no
/// outgoing connection can take it as its source port and no other test
/// thread is given it (ports from `bind(0)` are ephemeral and may be
/// given out again as soon as they are released).
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (start, span) = if low > 12_000 {
        (low - 10_000, 10_000)
    } else {
        (61_000, 4_000)
    };
    // Test binaries run one after another, but a developer may run two
    // at once: each process starts elsewhere.
    let offset = std::process::id() * 389;
    let free = |p: u16| {
        use std::net::{TcpListener, UdpSocket};
        let v6_missing = |e: std::io::Error| e.kind() == std::io::ErrorKind::AddrNotAvailable;
        TcpListener::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("::1", p)).map_or_else(v6_missing, |_| true)
            && UdpSocket::bind(("::1", p)).map_or_else(v6_missing, |_| true)
    };
    let n32 = u32::from(n);
    for _ in 0..span / n32 {
        let at = NEXT.fetch_add(n32, Ordering::Relaxed);
        let base = start + (offset + at) % (span - n32);
        let base = u16::try_from(base).expect("a port");
        if (0..n).all(|i| free(base + i)) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports in {start}..{}", start + span);
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
