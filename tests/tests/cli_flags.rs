//! The command line's vocabulary (`docs/cli.md`), through the binary on
//! loopback:
//! - a seeder given `--listen PORT` (a port alone) and a downloader given
//!   `--peer localhost:PORT` (a host name) complete a download;
//! - `--timeout 2s` and `--timeout 2` both give up after two seconds;
//! - the older spellings (`seed T DIR`, `dht --bootstrap`, daemon
//!   `--state`/`--upload-rate`) still work;
//! - `bittide completions bash` is valid bash; the committed man pages are
//!   what the code generates;
//! - every `--help` ends with examples, states its defaults and fits 100
//!   columns.
//!
//! Every child is bounded by `run_bounded` or a guard.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bittide_tests::{
    bittide, content_bytes, free_port, run_bittide, run_bounded, start_seeding, workspace_root,
    ChildGuard, TempDir,
};

/// A generous bound for a command that should be quick.
const LIMIT: Duration = Duration::from_secs(60);

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// `bittide ARGS` to the end (at most [`LIMIT`]), with nothing from the
/// environment that would change the help's width.
fn run(args: &[&str]) -> std::process::Output {
    run_bounded(
        Command::new(bittide()).args(args).env_remove("COLUMNS"),
        LIMIT,
    )
}

/// A torrent of `len` bytes in `dir/src/payload.bin`, at `dir/t.torrent`.
fn make_torrent(dir: &Path, len: usize) -> Vec<u8> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = content_bytes(len, 7);
    std::fs::write(src.join("payload.bin"), &data).unwrap();
    run_bittide(&[
        "create",
        path(&src.join("payload.bin")),
        "-o",
        path(&dir.join("t.torrent")),
        "--piece-size",
        "64K",
    ]);
    data
}

#[test]
fn a_port_alone_for_listen_and_a_host_name_for_peer_complete_a_download() {
    let dir = TempDir::new("cli-addr");
    let data = make_torrent(dir.path(), 1 << 20);
    let torrent = dir.path().join("t.torrent");
    let port = free_port().to_string();
    // `seed T -o DIR`, the same flag as download's.
    let _seeder = ChildGuard(start_seeding(
        Command::new(bittide()).args([
            "seed",
            path(&torrent),
            "-o",
            path(&dir.path().join("src")),
            "--listen",
            &port,
            "--no-dht",
            "--json",
            "--state-dir",
            path(&dir.path().join("state-seed")),
        ]),
        &dir.path().join("seed.log"),
        LIMIT,
    ));
    let out = dir.path().join("out");
    // No --listen: the downloader takes 6881 if free, else any free port.
    let got = run(&[
        "download",
        path(&torrent),
        "-o",
        path(&out),
        "--peer",
        &format!("localhost:{port}"),
        "--no-dht",
        "--timeout",
        "30s",
        "--state-dir",
        path(&dir.path().join("state-dl")),
    ]);
    assert_eq!(
        got.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(
        std::fs::read(out.join("payload.bin")).unwrap() == data,
        "the downloaded data differs"
    );
}

#[test]
fn timeouts_take_a_unit_or_bare_seconds() {
    let dir = TempDir::new("cli-timeout");
    make_torrent(dir.path(), 64 << 10);
    // Nothing listens there: no peer will ever be of use.
    let nobody = format!("127.0.0.1:{}", free_port());
    for timeout in ["2s", "2"] {
        let start = Instant::now();
        let got = run(&[
            "download",
            path(&dir.path().join("t.torrent")),
            "-o",
            path(&dir.path().join("out")),
            "--peer",
            &nobody,
            "--no-dht",
            "--timeout",
            timeout,
            "--state-dir",
            path(&dir.path().join("state")),
        ]);
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&got.stderr);
        assert_eq!(got.status.code(), Some(6), "--timeout {timeout}: {stderr}");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(20),
            "--timeout {timeout} gave up after {took:?}"
        );
    }
    let bad = run(&["download", "x.torrent", "--timeout", "2x"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the units are s, m and h"), "{stderr}");
}

#[test]
fn addresses_that_cannot_be_used_say_which_forms_work() {
    for (flag, value, expected) in [
        ("--listen", "70000", "65535"),
        ("--listen", "::1:80", "brackets"),
        ("--peer", "localhost", "HOST:PORT"),
        ("--peer", "localhost:http", "not a port"),
    ] {
        let got = run(&["download", "x.torrent", flag, value]);
        let stderr = String::from_utf8_lossy(&got.stderr);
        assert_eq!(got.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
    }
}

#[test]
fn older_spellings_still_work() {
    let dir = TempDir::new("cli-old");
    // The daemon's older flags, and the port alone for --listen, as
    // --print-config shows them under their new names (an empty config
    // file: not the default one of whoever runs the test).
    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let got = run(&[
        "daemon",
        "--print-config",
        "--config",
        path(&dir.path().join("none.toml")),
        "--state",
        "/srv/state",
        "--download-dir",
        "/srv/dl",
        "--upload-rate",
        "1M",
        "--download-limit",
        "none",
        "--listen",
        "51060",
    ]);
    let text = String::from_utf8_lossy(&got.stdout);
    assert_eq!(
        got.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    for line in [
        "state-dir = \"/srv/state\"",
        "upload-limit = 1048576",
        "download-limit = 0",
        "listen = \"0.0.0.0:51060\"",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }

    // `dht` with its older flag names: no node answers (exit 6), but the
    // flags are understood (not exit 2).
    let nobody = format!("127.0.0.1:{}", free_port());
    let state_file = dir.path().join("dht.dat");
    let got = run(&[
        "dht",
        "--bootstrap",
        &nobody,
        "--port",
        "0",
        "--state-file",
        path(&state_file),
        "--dht-allow-local",
        "--timeout",
        "1",
        "crawl",
        "--for",
        "1s",
    ]);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert_eq!(got.status.code(), Some(6), "{stderr}");
}

#[test]
fn bash_completion_is_valid_bash() {
    let got = run(&["completions", "bash"]);
    assert_eq!(got.status.code(), Some(0));
    let script = String::from_utf8_lossy(&got.stdout);
    for word in ["download", "seed", "--listen", "--upload-limit", "crawl"] {
        assert!(script.contains(word), "no `{word}` in the bash completion");
    }
    let dir = TempDir::new("cli-completion");
    let file = dir.path().join("bittide.bash");
    std::fs::write(&file, script.as_bytes()).unwrap();
    let check = run_bounded(Command::new("bash").args(["-n", path(&file)]), LIMIT);
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let got = run(&["completions", shell]);
        assert!(got.status.success() && got.stdout.len() > 1000, "{shell}");
    }
}

#[test]
fn committed_man_pages_are_what_the_code_generates() {
    let dir = TempDir::new("cli-man");
    let got = run(&["man", "--dir", path(dir.path())]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let pages = |d: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(d)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap())
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        (name, std::fs::read(e.path()).unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let generated = pages(dir.path());
    let committed = pages(&workspace_root().join("docs/man"));
    assert!(generated.contains_key("bittide.1"), "no bittide.1");
    let regenerate = "regenerate them: rm -r docs/man && \
                      cargo run -p bittide-cli -- man --dir docs/man";
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "docs/man has other pages than the code generates; {regenerate}"
    );
    for (name, page) in &generated {
        assert!(
            committed.get(name) == Some(page),
            "docs/man/{name} differs from what the code generates; {regenerate}"
        );
    }
    // Without --dir: the top-level page on stdout.
    let top = run(&["man"]);
    assert_eq!(Some(&top.stdout), generated.get("bittide.1"));
}

/// The subcommands a `--help` lists (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.split("\nCommands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| !l.is_empty())
                .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|name| *name != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Each option of a `--help`: its flag names and its whole text.
fn options(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let section = help.split("\nOptions:\n").nth(1).unwrap_or("");
    for line in section.lines() {
        if line.starts_with("Examples:") || line.starts_with("Example:") {
            break;
        }
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.starts_with('-') && indent <= 6 {
            let name = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches(',');
            let long = t
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap_or(name);
            out.push((long.to_owned(), t.to_owned()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(' ');
            last.1.push_str(t);
        }
    }
    out
}

/// Flags whose default matters to what happens: each must state it.
const STATE_THE_DEFAULT: &[&str] = &[
    "--output",
    "--listen",
    "--timeout",
    "--upload-limit",
    "--download-limit",
    "--max-peers",
    "--max-peers-per-ip",
    "--encryption",
    "--state-dir",
    "--dht-state",
    "--dht-bootstrap",
    "--duration",
    "--interval",
    "--piece-size",
    "--api",
    "--seed-time",
    "--seed-ratio",
    "--max-connections",
    "--http",
    "--udp",
];

#[test]
fn every_help_has_examples_states_its_defaults_and_fits_100_columns() {
    let top = run(&["--help"]);
    let top_text = String::from_utf8_lossy(&top.stdout).into_owned();
    assert!(top.status.success());
    for newcomer in ["bittide demo", "bittide download", "bittide seed"] {
        assert!(
            top_text.contains(newcomer),
            "no `{newcomer}` in:\n{top_text}"
        );
    }
    assert!(
        top_text.starts_with("bittide, a BitTorrent client"),
        "{top_text}"
    );
    let mut pending: Vec<Vec<String>> = subcommands(&top_text)
        .into_iter()
        .map(|c| vec![c])
        .collect();
    let mut seen = 0;
    let mut problems = Vec::new();
    while let Some(cmd) = pending.pop() {
        seen += 1;
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let got = run(&args);
        let help = String::from_utf8_lossy(&got.stdout).into_owned();
        let name = cmd.join(" ");
        if !got.status.success() {
            problems.push(format!("{name}: --help failed"));
            continue;
        }
        for sub in subcommands(&help) {
            let mut next = cmd.clone();
            next.push(sub);
            pending.push(next);
        }
        let Some(examples) = help
            .split_once("\nExamples:\n")
            .or_else(|| help.split_once("\nExample:\n"))
            .map(|(_, e)| e)
        else {
            problems.push(format!("{name}: no Examples block"));
            continue;
        };
        for line in examples.lines().filter(|l| !l.is_empty()) {
            if !(line.starts_with("  bittide ") || line.starts_with("  BITTIDE_")) {
                problems.push(format!("{name}: example line `{line}` (wrapped?)"));
            }
        }
        if let Some(long) = help.lines().find(|l| l.chars().count() > 100) {
            problems.push(format!("{name}: a line over 100 columns: {long}"));
        }
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        for (flag, text) in options(&help) {
            let required = usage.contains(&format!("{flag} <"));
            if STATE_THE_DEFAULT.contains(&flag.as_str()) && !required && !text.contains("[default")
            {
                problems.push(format!("{name}: {flag} does not state its default"));
            }
            if flag == "--json" && !text.contains("line") {
                problems.push(format!("{name}: --json does not say it prints lines"));
            }
        }
    }
    assert!(seen >= 25, "only {seen} subcommands found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
