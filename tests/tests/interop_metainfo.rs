//! Metainfo interop: torrents made by independent tools (mktorrent,
//! libtorrent) have the same info-hash in `bittide info --json` as
//! libtorrent computes, and torrents made by `bittide create` load in
//! libtorrent with the same info-hash and verify against the data.
//!
//! Needs the Debian packages `mktorrent` and `python3-libtorrent`
//! (`./scripts/test` installs them); fails, never skips, without them.

use std::path::Path;
use std::process::Command;

use bittide_tests::{bittide, content_bytes, libtorrent, require_tool, TempDir};

/// A folder with awkward sizes: a zero-length file, files smaller than a
/// block, a file that is not a multiple of the piece size, nesting.
fn make_tree(root: &Path) {
    let files: [(&str, usize); 6] = [
        ("a.bin", 100_000),
        ("empty.txt", 0),
        ("tiny", 1),
        ("sub/b.dat", 65_536),
        ("sub/deeper/c.dat", 33_333),
        ("z-last", 7),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content_bytes(*len, i as u64 + 1)).unwrap();
    }
}

fn bittide_info_hash(torrent: &Path) -> String {
    let out = Command::new(bittide())
        .args(["info", "--json"])
        .arg(torrent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bittide info {}: {}",
        torrent.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hash = v["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 40);
    assert!(hash
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    hash
}

#[test]
fn mktorrent_torrents_have_libtorrents_info_hash() {
    require_tool("mktorrent", &["-h"], "mktorrent");
    let dir = TempDir::new("mktorrent");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    std::fs::write(dir.path().join("single.iso"), content_bytes(300_001, 9)).unwrap();
    for (src, piece_exp, private) in [("tree", "15", false), ("single.iso", "16", true)] {
        let torrent = dir.path().join(format!("{src}-mk.torrent"));
        let mut cmd = Command::new("mktorrent");
        cmd.args([
            "-l",
            piece_exp,
            "-a",
            "http://127.0.0.1:6969/announce",
            "-c",
            "made by mktorrent",
        ])
        .arg("-o")
        .arg(&torrent)
        .arg(dir.path().join(src));
        if private {
            cmd.arg("-p");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = bittide_info_hash(&torrent);
        let theirs = libtorrent(&["hash", torrent.to_str().unwrap()]);
        assert_eq!(ours, theirs, "{src}");
    }
}

#[test]
fn libtorrent_v1_and_hybrid_torrents_have_the_same_info_hash() {
    let dir = TempDir::new("lt-create");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    for mode in ["v1", "hybrid"] {
        for piece in ["16384", "65536"] {
            let torrent = dir.path().join(format!("{mode}-{piece}.torrent"));
            libtorrent(&[
                "create",
                tree.to_str().unwrap(),
                torrent.to_str().unwrap(),
                piece,
                mode,
            ]);
            let ours = bittide_info_hash(&torrent);
            let theirs = libtorrent(&["hash", torrent.to_str().unwrap()]);
            assert_eq!(ours, theirs, "{mode} {piece}");
            if mode == "hybrid" {
                // Hybrid torrents pad files to piece boundaries (BEP 47).
                let out = Command::new(bittide())
                    .args(["info", "--json"])
                    .arg(&torrent)
                    .output()
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v["hybrid"], true);
                // The v2 half was read and checked (file tree, piece
                // layers against each pieces root, both halves naming the
                // same files): its SHA-256 info-hash is libtorrent's.
                let v2 = libtorrent(&["hash-v2", torrent.to_str().unwrap()]);
                assert_eq!(v["info_hash_v2"], v2, "{piece}");
                let padding = v["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| f["padding"] == true)
                    .count();
                assert!(padding > 0, "expected padding files in a hybrid torrent");
            }
        }
    }
}

#[test]
fn bittide_created_torrents_load_and_verify_in_libtorrent() {
    let dir = TempDir::new("bittide-create");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    std::fs::write(dir.path().join("single.iso"), content_bytes(1_000_000, 3)).unwrap();
    for (src, extra) in [
        ("tree", vec!["--piece-size", "32K", "--private"]),
        (
            "single.iso",
            vec!["--web-seed", "http://127.0.0.1:8080/single.iso"],
        ),
    ] {
        let torrent = dir.path().join(format!("{src}.torrent"));
        let out = Command::new(bittide())
            .arg("create")
            .arg(dir.path().join(src))
            .args([
                "-t",
                "http://127.0.0.1:6969/announce",
                "-t",
                "udp://127.0.0.1:6969",
            ])
            .args(&extra)
            .arg("-o")
            .arg(&torrent)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = bittide_info_hash(&torrent);
        let theirs = libtorrent(&["hash", torrent.to_str().unwrap()]);
        assert_eq!(ours, theirs, "{src}");
        // libtorrent checks every piece of the data against our hashes.
        let verdict = libtorrent(&[
            "verify",
            torrent.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(verdict, "ok", "{src}");
    }
    // And a corrupted byte is caught by libtorrent, so the check above means
    // something.
    let victim = tree.join("sub/b.dat");
    let mut data = std::fs::read(&victim).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&victim, data).unwrap();
    let torrent = dir.path().join("tree.torrent");
    let verdict = libtorrent(&[
        "verify",
        torrent.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert!(verdict.starts_with("mismatch"), "{verdict}");
}
