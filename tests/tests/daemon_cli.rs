//! `bittide daemon` and the remote CLI, as users run them: the binary on
//! loopback, a torrent whose data is already in the download folder,
//! controlled with `bittide add`/`list`/`pause`/`resume`/`remove`; a
//! SIGTERM that exits 0 and a restart that brings the torrent back; the
//! refusal of an exposed API without a password; `--print-config`.
//!
//! Every wait is bounded, and every daemon is killed when its guard drops,
//! even when an assertion fails.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
use bittide_tests::{bittide, content_bytes, free_port, run_bounded, ChildGuard, TempDir};
use serde_json::Value;

/// A bound on each CLI call.
const CLI_LIMIT: Duration = Duration::from_secs(30);
/// A bound on start-up and on graceful shutdown.
const DAEMON_LIMIT: Duration = Duration::from_secs(15);

/// `bittide ARGS` with no config file of whoever runs the tests.
fn bittide_cmd(config_home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bittide());
    cmd.args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("BITTIDE_API")
        .env_remove("BITTIDE_API_USERNAME")
        .env_remove("BITTIDE_API_PASSWORD")
        .env_remove("RUST_LOG");
    cmd
}

/// A running `bittide daemon`, killed when dropped.
struct Daemon {
    guard: ChildGuard,
    api: String,
    log: PathBuf,
    config_home: PathBuf,
}

impl Daemon {
    /// Starts a daemon on loopback (peers and API) without DHT, and waits
    /// until its API accepts connections.
    fn start(dir: &Path, state: &Path, download: &Path) -> Daemon {
        Daemon::start_with(dir, state, download, &[])
    }

    /// [`Daemon::start`] with more flags.
    fn start_with(dir: &Path, state: &Path, download: &Path, extra: &[&str]) -> Daemon {
        let port = free_port();
        let api = format!("127.0.0.1:{port}");
        let log = dir.join(format!("daemon-{port}.log"));
        let mut args = vec![
            "daemon",
            "--state",
            path(state),
            "--download-dir",
            path(download),
            "--api",
            &api,
            "--listen",
            "127.0.0.1:0",
            "--no-dht",
        ];
        args.extend(extra);
        let child = bittide_cmd(dir, &args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the daemon log"))
            .spawn()
            .expect("start bittide daemon");
        let mut daemon = Daemon {
            guard: ChildGuard(child),
            api: format!("http://{api}"),
            log,
            config_home: dir.to_owned(),
        };
        let start = Instant::now();
        // Ready: it has logged its start (after loading its torrents) and
        // the API answers.
        while !daemon.log().contains("bittide daemon running") || TcpStream::connect(&api).is_err()
        {
            let exited = daemon.guard.0.try_wait().ok().flatten();
            assert!(
                exited.is_none() && start.elapsed() < DAEMON_LIMIT,
                "the daemon's API did not come up ({exited:?}): {}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `bittide ARGS --api URL`: its output, whatever the exit code.
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// [`Daemon::cli`] with environment variables.
    fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--api", &self.api]);
        let mut cmd = bittide_cmd(&self.config_home, &all);
        cmd.envs(env.iter().copied());
        run_bounded(&mut cmd, CLI_LIMIT)
    }

    /// `bittide ARGS --api URL`, which must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "bittide {args:?} failed ({:?}): {}\ndaemon log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `bittide list --json`, parsed.
    fn list(&self) -> Vec<Value> {
        let text = self.ok(&["list", "--json"]);
        match serde_json::from_str(&text) {
            Ok(Value::Array(list)) => list,
            other => panic!("list --json is not an array: {other:?}: {text}"),
        }
    }

    /// Polls the list until the torrent `hash` satisfies `ok`.
    fn wait_for(&self, hash: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let list = self.list();
            if let Some(t) = list.iter().find(|t| t["info_hash"] == hash) {
                if ok(t) {
                    return t.clone();
                }
            }
            assert!(
                start.elapsed() < DAEMON_LIMIT,
                "timed out waiting for {what}: {list:?}\ndaemon log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM.
    fn signal(&self) {
        let pid = self.guard.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    /// SIGTERM, then the exit code (within the bound).
    fn terminate(self) -> Option<i32> {
        self.signal();
        self.exit_code()
    }

    /// Waits (bounded) for the daemon to exit.
    fn exit_code(mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.guard.0.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < DAEMON_LIMIT,
                "the daemon did not exit after SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A two-file torrent whose content is written to `dir/content/`, with
/// a tracker if given.
fn make_torrent(dir: &Path, tracker: Option<String>) -> Vec<u8> {
    const PIECE: u32 = 16 * 1024;
    let mut b = TorrentBuilder::multi_file("content");
    if let Some(url) = tracker {
        b.add_tracker_tier(vec![url]);
    }
    let mut hasher = PieceHasher::new(PIECE);
    std::fs::create_dir_all(dir.join("content")).unwrap();
    for (name, len, seed) in [("a.bin", 70_000, 1), ("b.bin", 5_000, 2)] {
        let data = content_bytes(len, seed);
        std::fs::write(dir.join("content").join(name), &data).unwrap();
        hasher.update(&data);
        b.add_file(vec![name.into()], len as u64);
    }
    b.set_piece_length(PIECE);
    b.build(&hasher.finish()).unwrap()
}

#[test]
fn the_remote_cli_controls_a_daemon_that_survives_a_restart() {
    let dir = TempDir::new("daemon-cli");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let torrent = dir.path().join("content.torrent");
    std::fs::write(&torrent, make_torrent(&download, None)).unwrap();

    let daemon = Daemon::start(dir.path(), &state, &download);
    assert!(daemon.list().is_empty());
    let added = daemon.ok(&["add", path(&torrent)]);
    let hash = added
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(hash.len(), 40, "add prints the info-hash: {added}");

    let t = daemon.wait_for(&hash, "seeding", |t| t["state"] == "seeding");
    assert_eq!(t["progress"], 1.0);
    assert_eq!(t["name"], "content");
    assert_eq!(t["size"], 75_000);
    assert_eq!(t["save_path"], path(&download));
    for key in [
        "downloaded",
        "uploaded",
        "download_rate",
        "upload_rate",
        "peers",
        "eta",
        "error",
    ] {
        assert!(t.get(key).is_some(), "list --json lacks {key}: {t}");
    }
    // The human table names it; an abbreviated hash works.
    let table = daemon.ok(&["list"]);
    assert!(
        table.contains("content") && table.contains("seeding"),
        "{table}"
    );
    let short = &hash[..8];
    assert!(daemon.ok(&["show", short]).contains("a.bin"));

    daemon.ok(&["pause", short]);
    daemon.wait_for(&hash, "paused", |t| t["state"] == "paused");
    daemon.ok(&["resume", "--all"]);
    daemon.wait_for(&hash, "seeding again", |t| t["state"] == "seeding");

    // File priorities and a torrent's own limits, read back from the API.
    daemon.ok(&["prio", short, "1", "skip"]);
    daemon.ok(&["limits", short, "--download", "500K"]);
    let details: Value = serde_json::from_str(&daemon.ok(&["show", short, "--json"])).unwrap();
    assert_eq!(details["files"][1]["priority"], "skip", "{details}");
    assert_eq!(details["files"][0]["priority"], "normal", "{details}");
    assert_eq!(details["download_limit"], 500 * 1024, "{details}");
    let stats: Value = serde_json::from_str(&daemon.ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["torrents"], 1, "{stats}");

    // Adding it twice is refused, with the API's message and a non-zero
    // exit.
    let again = daemon.cli(&["add", path(&torrent)]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // SIGTERM: a graceful exit 0; a restart brings the torrent back.
    assert_eq!(daemon.terminate(), Some(0));
    let daemon = Daemon::start(dir.path(), &state, &download);
    let log = daemon.log();
    assert!(log.contains("torrents=1"), "the start log counts it: {log}");
    daemon.wait_for(&hash, "seeding after the restart", |t| {
        t["state"] == "seeding" && t["progress"] == 1.0
    });

    daemon.ok(&["remove", "--delete-data", short]);
    assert!(daemon.list().is_empty());
    assert!(
        !download.join("content").join("a.bin").exists(),
        "remove --delete-data deletes the files"
    );
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once_while_the_first_waits_for_a_tracker() {
    // A tracker that accepts connections (the kernel's backlog) and never
    // answers: the graceful shutdown waits its grace period for the
    // `stopped` announce.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let tracker = format!("http://{}/announce", silent.local_addr().unwrap());
    let dir = TempDir::new("daemon-signal");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let torrent = dir.path().join("content.torrent");
    std::fs::write(&torrent, make_torrent(&download, Some(tracker))).unwrap();

    let daemon = Daemon::start(dir.path(), &state, &download);
    let added = daemon.ok(&["add", path(&torrent)]);
    let hash = added
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    daemon.wait_for(&hash, "seeding", |t| t["state"] == "seeding");
    daemon.signal();
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal();
    let log = daemon.log.clone();
    assert_eq!(daemon.exit_code(), Some(130));
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(log.contains("second signal"), "{log}");
}

#[test]
fn a_daemon_with_a_login_needs_it_and_owns_its_state_folder() {
    let dir = TempDir::new("daemon-login");
    let (state, download) = (dir.path().join("state"), dir.path().join("dl"));
    let daemon = Daemon::start_with(
        dir.path(),
        &state,
        &download,
        &["--api-username", "admin", "--api-password", "s3cret"],
    );
    // A second daemon on the same state folder says who holds it.
    let api = format!("127.0.0.1:{}", free_port());
    let second = run_bounded(
        &mut bittide_cmd(
            dir.path(),
            &[
                "daemon",
                "--state",
                path(&state),
                "--download-dir",
                path(&download),
                "--api",
                &api,
                "--listen",
                "127.0.0.1:0",
                "--no-dht",
            ],
        ),
        CLI_LIMIT,
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another bittide daemon"), "{stderr}");

    let anonymous = daemon.cli(&["list"]);
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert_eq!(anonymous.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--api-username"), "{stderr}");

    let wrong = daemon.cli(&["stats", "--api-username", "admin", "--api-password", "x"]);
    assert_eq!(wrong.status.code(), Some(2));

    // From the environment, for reads and for state changes (Basic auth
    // stands in for the CSRF header, which the client sends anyway).
    let login = [
        ("BITTIDE_API_USERNAME", "admin"),
        ("BITTIDE_API_PASSWORD", "s3cret"),
    ];
    let list = daemon.cli_env(&["list", "--json"], &login);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "[]");
    let limits = daemon.cli_env(&["limits", "--upload", "1M"], &login);
    let text = String::from_utf8_lossy(&limits.stdout);
    assert!(
        limits.status.success(),
        "{}",
        String::from_utf8_lossy(&limits.stderr)
    );
    assert!(text.contains("upload:   1.0 MiB/s"), "{text}");
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn an_exposed_api_without_a_password_is_refused_before_anything_starts() {
    let dir = TempDir::new("daemon-exposed");
    let state = dir.path().join("state");
    let out = run_bounded(
        &mut bittide_cmd(
            dir.path(),
            &[
                "daemon",
                "--api",
                "0.0.0.0:0",
                "--state",
                path(&state),
                "--download-dir",
                path(dir.path()),
                "--listen",
                "127.0.0.1:0",
                "--no-dht",
            ],
        ),
        CLI_LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--api-password"), "{stderr}");
    assert!(!state.exists(), "the state folder was not even created");
}

#[test]
fn print_config_merges_the_file_under_the_flags() {
    let dir = TempDir::new("daemon-config");
    let config = dir.path().join("bittide").join("daemon.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "listen = \"0.0.0.0:7000\"\nmax-peers = 7\nupload-rate = \"1M\"\n\
         api-username = \"admin\"\napi-password = \"hunter2\"\n",
    )
    .unwrap();
    // The default config file ($XDG_CONFIG_HOME/bittide/daemon.toml).
    let out = run_bounded(
        &mut bittide_cmd(
            dir.path(),
            &[
                "daemon",
                "--print-config",
                "--listen",
                "127.0.0.1:7001",
                "--download-rate",
                "2K",
                "--state",
                "/srv/state",
                "--download-dir",
                "/srv/dl",
            ],
        ),
        CLI_LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "listen = \"127.0.0.1:7001\"",
        "max-peers = 7",
        "upload-limit = 1048576",
        "download-limit = 2048",
        "api-username = \"admin\"",
        "api-password = \"<set>\"",
        "state-dir = \"/srv/state\"",
        "api = \"127.0.0.1:9850\"",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("hunter2"), "the password is not printed");

    // An unknown key names itself and the file.
    std::fs::write(&config, "upload-rte = 5\n").unwrap();
    let out = run_bounded(
        &mut bittide_cmd(dir.path(), &["daemon", "--print-config"]),
        CLI_LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("upload-rte") && stderr.contains(path(&config)),
        "{stderr}"
    );
}

#[test]
fn remote_commands_without_a_daemon_say_how_to_start_one() {
    let dir = TempDir::new("daemon-absent");
    let api = format!("http://127.0.0.1:{}", free_port());
    let out = run_bounded(
        &mut bittide_cmd(dir.path(), &["list", "--api", &api]),
        CLI_LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("bittide daemon"), "{stderr}");
}
