//! A tokio engine, a smol engine and an async-std engine in one swarm on
//! loopback: each starts with a different third of the same torrent's
//! pieces on its own disk, they trade with each other, and all end with
//! identical, complete data.
//!
//! It lives here, in the deprecated async-std crate, so that deleting this
//! folder leaves the rest of the workspace intact.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bittide_core::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use bittide_core::PieceIndex;
use bittide_driver::client::{self, SessionOptions};
use bittide_driver::disk::Storage;

const PIECE: u32 = 64 * 1024;

fn content_bytes(len: usize, seed: u64) -> Vec<u8> {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn options(
    torrent: &[u8],
    folder: PathBuf,
    listen: SocketAddr,
    peers: Vec<SocketAddr>,
) -> SessionOptions {
    SessionOptions {
        torrent: client::TorrentSource::File(torrent.to_vec()),
        save_torrent: None,
        folder,
        keep_seeding: false,
        listen: Some(listen),
        also_listen: Vec::new(),
        seed_only: false,
        peers,
        peer_timeout: Some(Duration::from_secs(60)),
        recheck: true,
        state_dir: None,
        max_peers: None,
        max_peers_per_ip: Some(4),
        sequential: false,
        only: None,
        upload_rate: 0,
        download_rate: 0,
        dht: None,
        encryption: Default::default(),
        transports: Default::default(),
        lsd: false,
        web_seeds: true,
    }
}

#[test]
fn tokio_smol_and_async_std_complete_each_other() {
    let root = std::env::temp_dir().join(format!("bittide-mixed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = Cleanup(root);
    let data = content_bytes(6 << 20, 99);
    let mut b = TorrentBuilder::single_file("shared.bin", data.len() as u64);
    b.set_piece_length(PIECE);
    let mut h = PieceHasher::new(PIECE);
    h.update(&data);
    let torrent = b.build(&h.finish()).unwrap();
    let m = Metainfo::from_bytes(&torrent).unwrap();
    let layout = m.info.layout();

    // Each node starts with the pieces p where p % 3 == its number: nobody
    // can finish without the other two.
    let names = ["tokio", "smol", "async-std"];
    let folders: Vec<PathBuf> = names.iter().map(|n| dir.0.join(n)).collect();
    for (i, folder) in folders.iter().enumerate() {
        let storage = Storage::new(folder, &m);
        for p in (0..layout.piece_count()).filter(|p| p % 3 == i as u32) {
            let piece = PieceIndex(p);
            let slices: Vec<_> = layout.piece_slices(piece).collect();
            let start = layout.piece_offset(piece) as usize;
            let len = layout.piece_size(piece) as usize;
            storage.write(&slices, &data[start..start + len]).unwrap();
        }
        storage.sync().unwrap();
    }
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let peers_of = |i: usize| {
        addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };

    // Each engine on its own runtime, on its own thread. A node that has
    // everything stays up a little for the others (keep seeding until its
    // peers are done would need coordination; a grace period is enough on
    // loopback).
    let run = |i: usize| {
        let o = options(&torrent, folders[i].clone(), addrs[i], peers_of(i));
        std::thread::spawn(move || -> Result<(), String> {
            let r = match i {
                0 => {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let o = SessionOptions {
                            keep_seeding: true,
                            ..o
                        };
                        with_grace(bittide_tokio::runtime::TokioRuntime::current(), o).await
                    })
                }
                1 => bittide_smol::block_on(with_grace(
                    bittide_smol::runtime(),
                    SessionOptions {
                        keep_seeding: true,
                        ..o
                    },
                )),
                _ => bittide_async_std::block_on(with_grace(
                    bittide_async_std::runtime(),
                    SessionOptions {
                        keep_seeding: true,
                        ..o
                    },
                )),
            };
            r
        })
    };
    let threads: Vec<_> = (0..3).map(run).collect();
    for (i, t) in threads.into_iter().enumerate() {
        t.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: {e}", names[i]));
    }
    for (i, folder) in folders.iter().enumerate() {
        let got = std::fs::read(folder.join("shared.bin")).unwrap();
        assert!(got == data, "{} ended with different data", names[i]);
    }
}

/// Runs a seeding session and stops it 3 s after it has every piece (time
/// for the others to fetch what they still need from it), or after 60 s.
async fn with_grace<R: bittide_driver::runtime::Runtime>(
    rt: R,
    options: SessionOptions,
) -> Result<(), String> {
    let (handle_tx, handle_rx) = async_channel::bounded(1);
    let clock = rt.clone();
    let started = clock.now();
    let mut complete_since: Option<bittide_core::Instant> = None;
    let mut stopping = false;
    let result = client::run(
        rt,
        options,
        move |h, _| {
            let _ = handle_tx.try_send(h);
        },
        |p, _| {
            if p.total > 0 && p.done == p.total && complete_since.is_none() {
                complete_since = Some(clock.now());
            }
            let now = clock.now();
            let grace_over = complete_since.is_some_and(|t| now - t > Duration::from_secs(3));
            if !stopping && (grace_over || now - started > Duration::from_secs(60)) {
                stopping = true;
                if let Ok(h) = handle_rx.try_recv() {
                    h.send(bittide_driver::driver::Command::Shutdown);
                }
            }
        },
    )
    .await
    .map_err(|e| e.message)?;
    if result.done == result.total {
        Ok(())
    } else {
        Err(format!(
            "ended with {} of {} bytes",
            result.done, result.total
        ))
    }
}
