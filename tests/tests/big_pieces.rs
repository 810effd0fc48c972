//! Pieces larger than the client's memory budget (8 MiB of block data):
//! torrents with 32 MiB and 512 MiB pieces are created, checked, seeded
//! and downloaded by `bittide` on loopback, and every one of those
//! processes stays within the budget plus a small constant of resident
//! memory (the kernel's high-water mark for each process, `VmHWM`).
//! Before, a piece was verified only once whole in memory:
//! a 32 MiB piece never downloaded, and checking a 512 MiB piece took
//! 2.1 GB. And a torrent of 500,000 files is read without a tree of
//! its file list.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bittide_tests::{bittide, content_bytes, free_port, peak_rss_so_far, wait_peak_rss, TempDir};

/// The client's in-memory budget for block data.
const BUDGET_MIB: u64 = 8;
/// What a process may use beyond the budget: code, runtime, buffers for
/// the disk and sockets (a release build's 1 GiB download with small
/// pieces peaks at 27 MiB in all; these are debug builds).
const CONSTANT_MIB: u64 = 48;

/// Writes `len` bytes of varied content to `path`, a MiB at a time.
fn write_content(path: &Path, len: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..len.div_ceil(1 << 20) {
        let n = (len - (i << 20)).min(1 << 20);
        f.write_all(&content_bytes(n, i as u64)).unwrap();
    }
    f.flush().unwrap();
}

fn same_file(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        let m = b.read(&mut y[..n.max(1)]).unwrap();
        if n != m || x[..n] != y[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

/// Runs a bittide command to the end and returns its peak RSS in MiB.
fn peak_mib(args: &[&str], limit: Duration) -> u64 {
    let child = Command::new(bittide())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (code, kib) = wait_peak_rss(child, limit);
    assert_eq!(code, Some(0), "bittide {args:?}");
    kib / 1024
}

/// Creates, seeds and downloads one file of `len` bytes in pieces of
/// `piece`; returns peak RSS (MiB) of create, seed and download.
fn round_trip(tag: &str, len: usize, piece: &str) -> (u64, u64, u64) {
    let dir = TempDir::new(tag);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("big.bin");
    write_content(&file, len);
    let torrent = dir.path().join("big.torrent");
    let create = peak_mib(
        &[
            "create",
            file.to_str().unwrap(),
            "--piece-size",
            piece,
            "-o",
            torrent.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let port = free_port();
    let seeder = bittide_tests::start_seeding(
        Command::new(bittide())
            .args(["seed", torrent.to_str().unwrap(), src.to_str().unwrap()])
            .args([
                "--no-dht",
                "--json",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--state-dir")
            .arg(dir.path().join("seed-state")),
        &dir.path().join("seed.jsonl"),
        Duration::from_secs(120),
    );
    let out = dir.path().join("out");
    let download = peak_mib(
        &[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--no-dht",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--state-dir",
            dir.path().join("leech-state").to_str().unwrap(),
            "--timeout",
            "60",
        ],
        Duration::from_secs(240),
    );
    // The seeder has checked its data and served it all: its peak is in.
    let seed_kib = peak_rss_so_far(seeder.id()).expect("the seeder is still running");
    let mut seeder = seeder;
    let _ = seeder.kill();
    let _ = wait_peak_rss(seeder, Duration::from_secs(10));
    assert!(
        same_file(&file, &out.join("big.bin")),
        "{tag}: data differs"
    );
    (create, seed_kib / 1024, download)
}

fn check(tag: &str, (create, seed, download): (u64, u64, u64)) {
    println!("{tag}: peak RSS create {create} MiB, seed {seed} MiB, download {download} MiB");
    let limit = BUDGET_MIB + CONSTANT_MIB;
    for (what, mib) in [("create", create), ("seed", seed), ("download", download)] {
        assert!(
            mib <= limit,
            "{tag}: {what} peaked at {mib} MiB (limit {limit})"
        );
    }
}

#[test]
fn pieces_of_32_mib_download_within_the_memory_budget() {
    check("32 MiB pieces", round_trip("piece32", 96 << 20, "32M"));
}

#[test]
fn a_512_mib_piece_downloads_within_the_memory_budget() {
    check("512 MiB piece", round_trip("piece512", 512 << 20, "512M"));
}

/// A .torrent of 500,000 one-byte files (23 MiB): `bittide info` reads it
/// with a per-file overhead near that of the file itself. (It took 381 MiB
/// before the file list was read without a tree; now about 110.)
#[test]
fn a_torrent_of_500000_files_is_read_in_bounded_memory() {
    use bittide_core::bencode::{encode_bytes, encode_int};
    const FILES: usize = 500_000;
    let dir = TempDir::new("manyfiles");
    let mut files = Vec::with_capacity(FILES * 48);
    files.push(b'l');
    for i in 0..FILES {
        files.extend_from_slice(b"d6:lengthi1e4:pathl");
        encode_bytes(&mut files, format!("dir{:04}", i / 1000).as_bytes());
        encode_bytes(&mut files, format!("file{i:06}.txt").as_bytes());
        files.extend_from_slice(b"ee");
    }
    files.push(b'e');
    let zeros = vec![0u8; FILES];
    let pieces: Vec<u8> = zeros
        .chunks(16384)
        .flat_map(|c| <[u8; 20]>::from(<sha1::Sha1 as sha1::Digest>::digest(c)))
        .collect();
    let mut t = b"d4:infod5:files".to_vec();
    t.extend_from_slice(&files);
    encode_bytes(&mut t, b"name");
    encode_bytes(&mut t, b"many");
    encode_bytes(&mut t, b"piece length");
    encode_int(&mut t, 16384);
    encode_bytes(&mut t, b"pieces");
    encode_bytes(&mut t, &pieces);
    t.extend_from_slice(b"ee");
    let path = dir.path().join("many.torrent");
    std::fs::write(&path, &t).unwrap();
    let mib = peak_mib(&["info", path.to_str().unwrap()], Duration::from_secs(120));
    let torrent_mib = t.len() as u64 >> 20;
    println!("500,000 files ({torrent_mib} MiB .torrent): bittide info peaked at {mib} MiB");
    assert!(mib <= 160, "bittide info peaked at {mib} MiB");
}
