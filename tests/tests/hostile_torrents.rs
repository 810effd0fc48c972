//! The `bittide` binary refuses hostile and malformed torrents with one line
//! on stderr and a non-zero exit, for every command that reads a torrent.

use std::process::Command;

use bittide_core::bencode::Value;
use bittide_tests::{bittide, TempDir};

fn torrent_with_info(info: Vec<(&'static [u8], Value<'static>)>) -> Vec<u8> {
    Value::dict(vec![(b"info", Value::dict(info))]).to_vec()
}

fn single(name: &'static [u8]) -> Vec<u8> {
    torrent_with_info(vec![
        (b"name", Value::bytes(name)),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[0; 20])),
        (b"length", Value::int(1)),
    ])
}

fn multi(path: Vec<&'static [u8]>) -> Vec<u8> {
    torrent_with_info(vec![
        (b"name", Value::bytes(b"top")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[0; 20])),
        (
            b"files",
            Value::list(vec![
                Value::dict(vec![
                    (b"length", Value::int(1)),
                    (b"path", Value::list(vec![Value::bytes(b"fine")])),
                ]),
                Value::dict(vec![
                    (b"length", Value::int(1)),
                    (
                        b"path",
                        Value::list(path.into_iter().map(Value::bytes).collect()),
                    ),
                ]),
            ]),
        ),
    ])
}

/// (file name, bytes, text the error must contain)
fn hostile_set() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("name-dotdot", single(b".."), "unsafe torrent name"),
        (
            "name-absolute",
            single(b"/etc/passwd"),
            "unsafe torrent name",
        ),
        (
            "name-backslash",
            single(b"..\\..\\evil"),
            "unsafe torrent name",
        ),
        ("name-drive", single(b"C:"), "drive prefix"),
        ("name-nul", single(b"a\0b"), "NUL"),
        ("name-empty", single(b""), "unsafe torrent name"),
        (
            "path-dotdot",
            multi(vec![b"..", b"..", b"etc", b"passwd"]),
            "unsafe path in file 1",
        ),
        (
            "path-inner-dotdot",
            multi(vec![b"a", b"..", b"..", b"x"]),
            "unsafe path in file 1",
        ),
        (
            "path-slash",
            multi(vec![b"a/../../b"]),
            "unsafe path in file 1",
        ),
        (
            "path-absolute",
            multi(vec![b"/abs"]),
            "unsafe path in file 1",
        ),
        ("path-dot", multi(vec![b"."]), "unsafe path in file 1"),
        (
            "path-empty-component",
            multi(vec![b"a", b""]),
            "unsafe path in file 1",
        ),
        ("path-empty-list", multi(vec![]), "unsafe path in file 1"),
        ("path-drive", multi(vec![b"c:x"]), "unsafe path in file 1"),
        (
            "path-unc",
            multi(vec![b"\\\\host\\share"]),
            "unsafe path in file 1",
        ),
        (
            "truncated",
            single(b"ok")[..40].to_vec(),
            "not a valid torrent file",
        ),
        (
            "garbage",
            b"<html><body>404</body></html>".to_vec(),
            "not a valid torrent file",
        ),
        ("empty-file", Vec::new(), "not a valid torrent file"),
        ("deep-nesting", vec![b'l'; 1 << 20], "nested too deeply"),
        (
            "v2-escape",
            torrent_with_info(vec![
                (b"meta version", Value::int(2)),
                (b"name", Value::bytes(b"x")),
                (b"piece length", Value::int(16384)),
                (b"file tree", v2_tree(b"..", 1)),
            ]),
            "unsafe path in file 0",
        ),
        (
            "v2-no-piece-layer",
            torrent_with_info(vec![
                (b"meta version", Value::int(2)),
                (b"name", Value::bytes(b"x")),
                (b"piece length", Value::int(16384)),
                (b"file tree", v2_tree(b"x", 100_000)),
            ]),
            "piece layer of file 0 is missing",
        ),
        (
            "piece-count",
            torrent_with_info(vec![
                (b"name", Value::bytes(b"x")),
                (b"piece length", Value::int(16384)),
                (b"pieces", Value::bytes(&[0; 20])),
                (b"length", Value::int(100_000)),
            ]),
            "holds 1 hashes but the content needs 7",
        ),
    ]
}

#[test]
fn hostile_torrents_are_refused_by_every_command_with_one_line() {
    let dir = TempDir::new("hostile");
    let bin = bittide();
    for (name, bytes, expected) in hostile_set() {
        let path = dir.path().join(format!("{name}.torrent"));
        std::fs::write(&path, &bytes).unwrap();
        for args in [vec!["info"], vec!["info", "--json"]] {
            let out = Command::new(&bin).args(&args).arg(&path).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{name} {args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{name}: printed to stdout");
            assert_eq!(stderr.lines().count(), 1, "{name}: not one line: {stderr}");
            assert!(stderr.starts_with("bittide: error: "), "{name}: {stderr}");
            assert!(
                stderr.contains(expected),
                "{name}: `{stderr}` lacks `{expected}`"
            );
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        }
    }
    // Nothing was created next to the torrents by refusing them.
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, hostile_set().len());
}

#[test]
fn missing_files_and_bad_arguments_fail_cleanly() {
    let bin = bittide();
    let out = Command::new(&bin)
        .args(["info", "/nonexistent/x.torrent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    let out = Command::new(&bin).args(["info"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");

    let dir = TempDir::new("create-bad");
    let file = dir.path().join("data");
    std::fs::write(&file, b"hello").unwrap();
    let out = Command::new(&bin)
        .arg("create")
        .arg(&file)
        .args(["--piece-size", "1000", "-o"])
        .arg(dir.path().join("x.torrent"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("not a power of two"), "{stderr}");
    assert!(!dir.path().join("x.torrent").exists());

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = Command::new(&bin)
        .arg("create")
        .arg(&empty)
        .arg("-o")
        .arg(dir.path().join("y.torrent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one byte"));
}

/// A BEP 52 file tree of one file `name` of `length` bytes (its pieces
/// root made up: nothing checks it against data here).
fn v2_tree(name: &'static [u8], length: i64) -> Value<'static> {
    let leaf = Value::dict(vec![
        (b"length", Value::int(length)),
        (b"pieces root", Value::bytes(&[1; 32])),
    ]);
    Value::dict(vec![(name, Value::dict(vec![(b"", leaf)]))])
}
