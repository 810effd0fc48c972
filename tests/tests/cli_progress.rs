//! What `bittide download` and `bittide seed` print, as a script and a
//! person see it, on loopback:
//! - `--json`: every line validates against `docs/json-events.schema.json`
//!   (with Debian's python3-jsonschema), carries `v`, `ts` and `elapsed`;
//!   `done` is last and comes once, also after a fatal error, which is an
//!   `error` event first; `finished` says size, rate and path; no state is
//!   announced twice in a row; a failing tracker is one `tracker_error`
//!   (one stderr warning without `--json`) naming scheme, host and port
//!   only — its passkey shows nowhere;
//! - `--recheck` reports the check and `finished` with nothing downloaded;
//!   a magnet link reports its metadata phase;
//! - piped: a second run of a finished download says what resume data
//!   vouched for and sums up; an idle seed prints nothing;
//! - on a terminal (tmux, 80 columns): the status line never wraps, and
//!   the start, middle and end read as docs/progress.md shows.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bittide_tests::{
    bittide, content_bytes, free_port, require_tool, run_bittide, run_bounded, start_seeding,
    workspace_root, ChildGuard, TempDir, DEBIAN_PYTHON,
};
use serde_json::Value;

/// Checks every line of stdin against the schema given as argument; one
/// line per problem, exit 1 if any.
const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = 0
for n, line in enumerate(sys.stdin, 1):
    try:
        inst = json.loads(line)
    except ValueError as e:
        print(f"line {n}: not JSON ({e}): {line.strip()}"); bad += 1; continue
    for e in v.iter_errors(inst):
        print(f"line {n}: {e.message}: {line.strip()}"); bad += 1
sys.exit(1 if bad else 0)
"#;

/// `len` bytes of content in `dir/src/<name>` and a torrent of it.
fn make_torrent(dir: &Path, name: &str, len: usize) -> (PathBuf, PathBuf) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(name), content_bytes(len, 21)).unwrap();
    let torrent = dir.join(format!("{name}.torrent"));
    run_bittide(&[
        "create",
        src.join(name).to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
    ]);
    (torrent, src)
}

/// `bittide seed --json` of it, once it seeds; its events go to `log`.
fn seed(torrent: &Path, src: &Path, log: &Path) -> (Child, u16) {
    let port = free_port();
    let mut cmd = Command::new(bittide());
    cmd.args([
        "seed",
        torrent.to_str().unwrap(),
        "-o",
        src.to_str().unwrap(),
    ])
    .args([
        "--json",
        "--no-dht",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("--state-dir")
    .arg(log.with_extension("state"));
    (start_seeding(&mut cmd, log, Duration::from_secs(30)), port)
}

/// `bittide download` of `torrent` from the seeder on `port`.
fn download(torrent: &Path, out: &Path, port: u16, state: &Path) -> Command {
    let mut c = Command::new(bittide());
    c.args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(out)
        .args(["--peer", &format!("127.0.0.1:{port}"), "--no-dht"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(state);
    c
}

/// `--timeout`'s value for 2 s: `2s` with the durations with units of
/// every flag, `2` in the builds that took bare seconds.
fn two_seconds() -> &'static str {
    let help = Command::new(bittide())
        .args(["download", "--help"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&help.stdout).contains("--timeout <SECONDS>") {
        "2"
    } else {
        "2s"
    }
}

/// SIGINT, as Ctrl-C sends it.
fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -INT failed");
}

/// Waits for `child` to exit, killing it after `limit`.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line validates against the documented schema.
fn validate(stdout: &str) {
    require_tool(
        DEBIAN_PYTHON,
        &["-c", "import jsonschema"],
        "python3-jsonschema",
    );
    let schema = workspace_root().join("docs/json-events.schema.json");
    let mut child = Command::new(DEBIAN_PYTHON)
        .args(["-c", VALIDATE])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(stdout.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "output does not match {}:\n{}",
        schema.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The events of one run, checked for what every run guarantees: `v`,
/// `ts` and `elapsed` on each, in order; `done` last and once; no state
/// announced twice in a row.
fn events(stdout: &str) -> Vec<Value> {
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!events.is_empty(), "no events");
    let (mut ts, mut elapsed) = (0, 0.0);
    for e in &events {
        assert_eq!(e["v"], 1, "{e}");
        let t = e["ts"].as_u64().unwrap_or_else(|| panic!("no ts: {e}"));
        let el = e["elapsed"]
            .as_f64()
            .unwrap_or_else(|| panic!("no elapsed: {e}"));
        assert!(t >= ts && el >= elapsed, "time goes back: {e}");
        (ts, elapsed) = (t, el);
    }
    let dones = events.iter().filter(|e| e["event"] == "done").count();
    assert_eq!(dones, 1, "done {dones} times: {stdout}");
    assert_eq!(events.last().unwrap()["event"], "done", "{stdout}");
    let states: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "state")
        .map(|e| &e["state"])
        .collect();
    assert!(
        states.windows(2).all(|w| w[0] != w[1]),
        "a state twice: {states:?}"
    );
    events
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn json_download_validates_then_resumed_rechecked_and_by_magnet() {
    let dir = TempDir::new("progress-json");
    const LEN: usize = 3 << 20;
    let (torrent, src) = make_torrent(dir.path(), "payload.bin", LEN);
    let seed_log = dir.path().join("seed.log");
    let (seeder, port) = seed(&torrent, &src, &seed_log);
    let seeder = ChildGuard(seeder);
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));

    let first = run_bounded(
        download(&torrent, &out, port, &state).arg("--json"),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    validate(&stdout);
    let ev = events(&stdout);
    assert_eq!(ev[0]["event"], "started", "{stdout}");
    assert_eq!(ev[0]["mode"], "download");
    assert_eq!(ev[0]["size"], LEN);
    let finished = of(&ev, "finished");
    assert_eq!(finished.len(), 1, "{stdout}");
    let f = finished[0];
    assert_eq!(f["size"], LEN, "{f}");
    assert_eq!(f["downloaded"], LEN, "{f}");
    assert!(f["rate"].as_u64().unwrap() > 0, "{f}");
    assert!(f["seconds"].as_f64().unwrap() > 0.0, "{f}");
    let path = out.join("payload.bin");
    assert_eq!(f["content"], path.to_str().unwrap(), "{f}");
    let done = ev.last().unwrap();
    assert_eq!(
        (&done["exit_code"], &done["complete"], &done["done"]),
        (&Value::from(0), &Value::from(true), &Value::from(LEN)),
        "{done}"
    );
    assert!(
        of(&ev, "progress")
            .iter()
            .any(|p| p["phase"] == "downloading"),
        "{stdout}"
    );

    // The same command again, piped: nothing to fetch, and it says so.
    let second = run_bounded(
        &mut download(&torrent, &out, port, &state),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{text}");
    assert!(
        text.contains("resumed: 3.0 MiB of 3.0 MiB already verified"),
        "{text}"
    );
    let summary = format!(
        "done: payload.bin — 3.0 MiB, already complete → {}",
        path.display()
    );
    assert!(text.lines().any(|l| l == summary), "{text}");
    assert!(!text.contains("seeding"), "seeding without --seed: {text}");

    // Again with --recheck: the check has its own progress, and nothing
    // is downloaded.
    let third = run_bounded(
        download(&torrent, &out, port, &state).args(["--json", "--recheck"]),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert_eq!(third.status.code(), Some(0), "{stdout}");
    validate(&stdout);
    let ev = events(&stdout);
    let checks = of(&ev, "checking");
    let last = checks
        .last()
        .unwrap_or_else(|| panic!("no checking: {stdout}"));
    assert!(
        last["pieces"].as_u64() > Some(0) && last["checked"] == last["pieces"],
        "{stdout}"
    );
    let finished = of(&ev, "finished");
    assert_eq!(finished.len(), 1, "{stdout}");
    assert_eq!(finished[0]["downloaded"], 0, "{stdout}");

    // A magnet link: the metadata phase counts its peers, then says the
    // metadata arrived.
    let hash = ev[0]["info_hash"].as_str().unwrap().to_owned();
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=payload.bin");
    let fourth = run_bounded(
        download(
            Path::new(&magnet),
            &dir.path().join("m"),
            port,
            &dir.path().join("m-state"),
        )
        .arg("--json"),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&fourth.stdout);
    assert_eq!(fourth.status.code(), Some(0), "{stdout}");
    validate(&stdout);
    let ev = events(&stdout);
    assert_eq!(ev[0]["size"], Value::Null, "unknown before the metadata");
    assert_eq!(
        of(&ev, "state")[0]["state"],
        "fetching_metadata",
        "{stdout}"
    );
    let metadata = of(&ev, "metadata");
    assert_eq!(metadata.len(), 1, "{stdout}");
    assert_eq!(metadata[0]["size"], LEN, "{stdout}");
    assert_eq!(of(&ev, "finished").len(), 1, "{stdout}");

    // The seed: Ctrl-C ends it with a summary of what it served, and its
    // events validate too, `seeding` said once.
    let mut seeder = seeder;
    interrupt(&seeder.0);
    assert_eq!(wait(&mut seeder.0, Duration::from_secs(15)), Some(0));
    let log = std::fs::read_to_string(&seed_log).unwrap();
    validate(&log);
    let ev = events(&log);
    let seeding = of(&ev, "state")
        .iter()
        .filter(|s| s["state"] == "seeding")
        .count();
    assert_eq!(seeding, 1, "{log}");
    let done = ev.last().unwrap();
    assert_eq!(done["exit_code"], 0, "{done}");
    assert!(done["uploaded"].as_u64().unwrap() >= LEN as u64, "{done}");
}

#[test]
fn a_fatal_error_is_an_event_then_done_with_the_exit_code() {
    let dir = TempDir::new("progress-fail");
    let (torrent, _) = make_torrent(dir.path(), "lonely.bin", 64 << 10);
    let nobody = free_port();
    let out = run_bounded(
        download(
            &torrent,
            &dir.path().join("out"),
            nobody,
            &dir.path().join("state"),
        )
        .args(["--json", "--timeout", two_seconds()]),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    validate(&stdout);
    let ev = events(&stdout);
    let [.., error, done] = ev.as_slice() else {
        panic!("fewer than two events: {stdout}");
    };
    assert_eq!(error["event"], "error", "{stdout}");
    assert_eq!(error["exit_code"], 6, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("no peers"),
        "{error}"
    );
    assert_eq!(done["exit_code"], 6, "{done}");
    assert_eq!(done["complete"], false, "{done}");
}

#[test]
fn a_failing_tracker_is_said_once_without_its_passkey() {
    let dir = TempDir::new("progress-tracker");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("t.bin"), content_bytes(64 << 10, 5)).unwrap();
    let torrent = dir.path().join("t.torrent");
    // Nobody listens there: connection refused.
    let tracker = format!("http://127.0.0.1:{}", free_port());
    run_bittide(&[
        "create",
        src.join("t.bin").to_str().unwrap(),
        "-t",
        &format!("{tracker}/PASSKEY1234/announce"),
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let run = |json: bool| {
        let mut c = Command::new(bittide());
        c.args(["download", torrent.to_str().unwrap(), "-o"])
            .arg(dir.path().join(if json { "j" } else { "t" }))
            .args([
                "--no-dht",
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--timeout", two_seconds()]);
        if json {
            c.arg("--json");
        }
        let out = run_bounded(&mut c, Duration::from_secs(30));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
        for text in [&stdout, &stderr] {
            assert!(!text.contains("PASSKEY"), "the passkey shows: {text}");
            assert!(!text.contains("info_hash="), "the query shows: {text}");
        }
        (stdout, stderr)
    };

    let (stdout, stderr) = run(true);
    validate(&stdout);
    let ev = events(&stdout);
    let failures = of(&ev, "tracker_error");
    assert_eq!(failures.len(), 1, "{stdout}");
    assert_eq!(failures[0]["tracker"], tracker.as_str());
    let [.., error, _] = ev.as_slice() else {
        panic!("{stdout}")
    };
    assert_eq!(error["exit_code"], 5, "{error}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let (_, stderr) = run(false);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("bittide: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with(&format!(
            "bittide: warning: {tracker}: tracker unreachable: "
        )),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("bittide: error: "),
        "{stderr}"
    );
}

#[test]
fn an_idle_seed_prints_nothing_when_piped() {
    let dir = TempDir::new("progress-idle");
    let (torrent, src) = make_torrent(dir.path(), "quiet.bin", 256 << 10);
    let mut child = Command::new(bittide())
        .args([
            "seed",
            torrent.to_str().unwrap(),
            "-o",
            src.to_str().unwrap(),
        ])
        .args([
            "--no-dht",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (lines, stdout) = (lines.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let start = Instant::now();
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("seeding  "))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no seeding status: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = lines.lock().unwrap().clone();
    std::thread::sleep(Duration::from_secs(12));
    let after = lines.lock().unwrap().clone();
    assert_eq!(before, after, "lines while idle");
    interrupt(&child);
    assert_eq!(wait(&mut child, Duration::from_secs(15)), Some(0));
    reader.join().unwrap();
    let all = lines.lock().unwrap().clone();
    assert!(
        all.last()
            .is_some_and(|l| l.starts_with("stopped seeding quiet.bin: ↑ 0 B in ")),
        "{all:?}"
    );
    assert!(all.len() <= 6, "{all:?}");
}

/// A tmux server of this test's own, on a socket in its folder.
struct Tmux(PathBuf);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen, wrapped lines joined (`-J`): a line longer than the
    /// terminal shows as one.
    fn capture(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-J", "-t", "p"])
    }

    /// Captures until `done` says the screen is the one wanted.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {what} screen: {screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .output();
    }
}

/// The percentage on the status line, if one shows.
fn percent(screen: &str) -> Option<f64> {
    screen.lines().filter(|l| l.starts_with('[')).find_map(|l| {
        l.split_whitespace()
            .find_map(|w| w.strip_suffix('%')?.parse().ok())
    })
}

#[test]
fn on_a_terminal_the_status_line_fits_80_columns() {
    require_tool("tmux", &["-V"], "tmux");
    let dir = TempDir::new("progress-tty");
    const LEN: usize = 16 << 20;
    let (torrent, src) = make_torrent(dir.path(), "movie.bin", LEN);
    let (seeder, port) = seed(&torrent, &src, &dir.path().join("seed.log"));
    let _seeder = ChildGuard(seeder);
    let cmd = download(&torrent, &dir.path().join("o"), port, &dir.path().join("s"));
    let mut line: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    line.extend(["--download-limit".into(), "2M".into()]);
    let shell = format!("{}; echo exit=$?; sleep 60", line.join(" "));
    let tmux = Tmux(dir.path().join("tmux.sock"));
    let started = Command::new("tmux")
        .arg("-S")
        .arg(&tmux.0)
        .args(["new-session", "-d", "-s", "p", "-x", "80", "-y", "24"])
        .arg(&shell)
        .env_remove("TMUX")
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "tmux did not start: {}",
        String::from_utf8_lossy(&started.stderr)
    );

    let start = tmux.wait_for("start", |s| s.contains("listening on"));
    let middle = tmux.wait_for("middle", |s| {
        percent(s).is_some_and(|p| (20.0..80.0).contains(&p))
    });
    let end = tmux.wait_for("end", |s| s.contains("exit="));
    for (when, screen) in [("start", &start), ("middle", &middle), ("end", &end)] {
        // Lines naming the (long) temporary folder may wrap: the path is
        // the user's. The status line may not.
        let ours = dir.path().to_str().unwrap();
        for l in screen.lines().filter(|l| !l.contains(ours)) {
            assert!(
                l.chars().count() <= 80,
                "{when}: a line of {} columns: {l}\n{screen}",
                l.chars().count()
            );
        }
        assert!(!screen.contains("0 B/0 B"), "{when}: {screen}");
    }
    assert!(middle.contains("↓") && middle.contains("eta "), "{middle}");
    assert!(middle.contains("1 peer "), "{middle}");
    assert!(end.contains("exit=0"), "{end}");
    let summary = end
        .lines()
        .find(|l| l.starts_with("done: movie.bin — 16.0 MiB in "))
        .unwrap_or_else(|| panic!("no summary: {end}"));
    assert!(
        summary.contains("MiB/s) → ") && summary.ends_with("movie.bin"),
        "{summary}"
    );
    // The bar is gone once the download is over.
    assert!(
        !end.lines().any(|l| l.starts_with('[')),
        "a bar left behind: {end}"
    );
    println!("start:\n{start}\nmiddle:\n{middle}\nend:\n{end}");
}

/// docs/json-events.md and the schema describe the same events and
/// fields, and the page's examples validate.
#[test]
fn the_schema_page_and_the_schema_agree() {
    let root = workspace_root().join("docs");
    let page = std::fs::read_to_string(root.join("json-events.md")).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("json-events.schema.json")).unwrap(),
    )
    .unwrap();
    let kinds = schema["properties"]["event"]["enum"].as_array().unwrap();
    let sections: Vec<&str> = page.split("\n### `").skip(1).collect();
    assert_eq!(sections.len(), kinds.len(), "sections vs schema events");
    for kind in kinds {
        let kind = kind.as_str().unwrap();
        let section = sections
            .iter()
            .find(|s| s.starts_with(&format!("{kind}`")))
            .unwrap_or_else(|| panic!("no section for `{kind}`"));
        let fields = schema["$defs"][kind]["properties"].as_object().unwrap();
        for field in fields.keys().filter(|f| *f != "event") {
            assert!(
                section.contains(&format!("| `{field}` |")),
                "`{kind}.{field}` is not documented"
            );
        }
    }
    let mut examples = String::new();
    let mut inside = false;
    for line in page.lines() {
        match line {
            "```json" => inside = true,
            "```" => inside = false,
            l if inside => {
                examples.push_str(l);
                examples.push('\n');
            }
            _ => {}
        }
    }
    assert!(examples.lines().count() >= 5, "{examples}");
    validate(&examples);
}
