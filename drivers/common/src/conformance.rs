//! The conformance suite every runtime driver runs (its tests call these
//! with its own `Runtime` inside its own `block_on`): the same engine must
//! behave the same on tokio, smol and async-std.
//!
//! - [`timers`]: `sleep_until` wakes on time;
//! - [`swarm`]: a seeder and a leecher (two engines on this runtime) find
//!   each other through a UDP tracker served on this runtime's UDP socket,
//!   the leecher downloads everything (byte-identical), both shut down
//!   cleanly, and no file descriptor is left open afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};

use crate::client::{self, SessionOptions};
use crate::clock::os_seed;
use crate::driver::{Command, Handle};
use crate::runtime::Runtime;

/// `sleep_until` fires no earlier than asked and not much later, on the
/// runtime's clock; and that clock keeps the wall clock's pace (the system
/// time is the independent witness: a runtime whose clock and timers were
/// wrong together would pass the first check alone).
pub async fn timers<R: Runtime>(rt: R) -> Result<(), String> {
    for ms in [1u64, 50, 200] {
        let start = rt.now();
        let wall = SystemTime::now();
        rt.sleep_until(start + Duration::from_millis(ms)).await;
        let took = rt.now() - start;
        if took < Duration::from_millis(ms) {
            return Err(format!("a {ms} ms timer fired after {took:?}"));
        }
        if took > Duration::from_millis(ms) + Duration::from_millis(250) {
            return Err(format!("a {ms} ms timer fired late, after {took:?}"));
        }
        let wall = wall.elapsed().unwrap_or_default();
        if wall + Duration::from_millis(50) < took || wall > took + Duration::from_millis(250) {
            return Err(format!(
                "the runtime's clock ran {took:?} while the system's ran {wall:?}"
            ));
        }
    }
    Ok(())
}

/// The whole suite, in order (timers, then the swarm); run it alone in its
/// process's test binary so that descriptor counts are not disturbed by
/// other tests.
pub async fn all<R: Runtime>(rt: R, dir: PathBuf) -> Result<(), String> {
    timers(rt.clone()).await?;
    swarm(rt, dir).await
}

/// Open file descriptors of this process (Linux), to spot leaks.
pub fn open_fds() -> usize {
    fd_targets().len()
}

/// What each open descriptor points at (sockets, files, epoll…).
fn fd_targets() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| {
            std::fs::read_link(e.path()).map_or_else(|_| "?".into(), |p| p.display().to_string())
        })
        .collect();
    out.sort();
    out
}

/// Deterministic content.
fn content(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Serves a UDP tracker on `rt` until the returned socket's task is
/// abandoned at process exit; returns its address.
async fn udp_tracker<R: Runtime>(rt: &R) -> Result<SocketAddr, String> {
    let socket = rt
        .bind_udp("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .await
        .map_err(|e| format!("bind tracker: {e}"))?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    let server = Arc::new(Mutex::new(TrackerServer::new(
        ServerConfig::default(),
        os_seed(),
    )));
    let clock = rt.clone();
    rt.spawn(Box::pin(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let answer = server
                .lock()
                .ok()
                .and_then(|mut s| s.handle_udp(clock.now(), from, &buf[..n]));
            if let Some(a) = answer {
                let _ = socket.send_to(&a, from).await;
            }
        }
    }));
    Ok(addr)
}

/// A seeder and a leecher on `rt`, through a UDP tracker on `rt`; see the
/// module documentation. `dir` is an empty scratch folder.
pub async fn swarm<R: Runtime>(rt: R, dir: PathBuf) -> Result<(), String> {
    let data = content(3 << 20);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    std::fs::write(src.join("payload.bin"), &data).map_err(|e| e.to_string())?;
    let tracker = udp_tracker(&rt).await?;
    // Baseline after the runtime's own lazily created descriptors (reactor,
    // notifiers) and the tracker's socket exist.
    rt.sleep_until(rt.now() + Duration::from_millis(10)).await;
    let targets_before = fd_targets();
    let fds_before = targets_before.len();
    let mut builder = TorrentBuilder::single_file("payload.bin", data.len() as u64);
    builder
        .set_piece_length(64 * 1024)
        .add_tracker_tier(vec![format!("udp://{tracker}")]);
    let mut hasher = PieceHasher::new(64 * 1024);
    hasher.update(&data);
    let torrent = builder.build(&hasher.finish()).map_err(|e| e.to_string())?;

    let options = |folder: &Path, seed: bool| SessionOptions {
        torrent: client::TorrentSource::File(torrent.clone()),
        save_torrent: None,
        folder: folder.to_owned(),
        keep_seeding: seed,
        listen: "127.0.0.1:0".parse().expect("literal"),
        peers: Vec::new(),
        peer_timeout: Some(Duration::from_secs(30)),
        recheck: false,
        state_dir: None,
        max_peers: None,
        max_peers_per_ip: None,
        sequential: false,
        only: None,
        upload_rate: 0,
        download_rate: 0,
        dht: None,
    };

    // The seeder runs as its own task; its handle comes back through a
    // channel once it listens.
    let (handle_tx, handle_rx) = async_channel::bounded::<Handle>(1);
    let (done_tx, done_rx) = async_channel::bounded::<Result<(), String>>(1);
    let seeder_options = options(&src, true);
    let seeder_rt = rt.clone();
    rt.spawn(Box::pin(async move {
        let r = client::run(
            seeder_rt,
            seeder_options,
            move |h, _| {
                let _ = handle_tx.try_send(h);
            },
            |_, _| {},
        )
        .await;
        let _ = done_tx.send(r.map(|_| ()).map_err(|e| e.message)).await;
    }));
    let seeder = handle_rx.recv().await.map_err(|_| "seeder did not start")?;

    let out = dir.join("out");
    let result = client::run(rt.clone(), options(&out, false), |_, _| {}, |_, _| {}).await;
    seeder.send(Command::Shutdown);
    let seeded = done_rx.recv().await.map_err(|_| "seeder vanished")?;
    let progress = result.map_err(|e| format!("download failed: {}", e.message))?;
    seeded.map_err(|e| format!("seeder failed: {e}"))?;
    if progress.done != data.len() as u64 {
        return Err(format!("downloaded {} of {}", progress.done, data.len()));
    }
    let got = std::fs::read(out.join("payload.bin")).map_err(|e| e.to_string())?;
    if got != data {
        return Err("downloaded data differs".into());
    }
    // Give closed sockets' tasks a moment to drop them, then compare.
    let deadline = rt.now() + Duration::from_secs(5);
    loop {
        let leaked = open_fds().saturating_sub(fds_before);
        if leaked == 0 {
            return Ok(());
        }
        if rt.now() > deadline {
            let mut extra = fd_targets();
            for t in &targets_before {
                if let Some(i) = extra.iter().position(|x| x == t) {
                    extra.remove(i);
                }
            }
            return Err(format!(
                "{leaked} file descriptors left open after shutdown: {extra:?}"
            ));
        }
        rt.sleep_until(rt.now() + Duration::from_millis(50)).await;
    }
}
