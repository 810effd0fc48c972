//! The conformance suite every runtime driver runs (its tests call these
//! with its own `Runtime` inside its own `block_on`): the same engine must
//! behave the same on tokio, smol and async-std.
//!
//! - [`timers`]: `sleep_until` wakes on time;
//! - [`control`]: `Shutdown` and `Abort` sent while the loop's data channel
//!   is full (a UDP flood) both arrive; commands and queries make a round
//!   trip through the running loop;
//! - [`swarm`]: a seeder and a leecher (two engines on this runtime) find
//!   each other through a UDP tracker served on this runtime's UDP socket,
//!   the leecher downloads everything (byte-identical), both shut down
//!   cleanly, and no file descriptor is left open afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bittide_core::engine::{Engine, EngineConfig, Event};
use bittide_core::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use bittide_core::torrent::{StartMode, TorrentEvent, TorrentInfo, TorrentState};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::{PieceIndex, Seed};

use crate::client::{self, SessionOptions};
use crate::clock::os_seed;
use crate::control::{
    AddError, AddTorrent, Files, Peers, Torrent, TorrentSnapshot, Torrents, Trackers,
};
use crate::disk::Storage;
use crate::driver::{first, Command, Control, Driver, Ended, Handle};
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
    control(rt.clone(), dir.join("control")).await?;
    swarm(rt, dir).await
}

/// The control channel on `rt`: a command is never lost behind a flood of
/// socket data, and commands and queries make a round trip. `dir` is a
/// scratch folder (created and removed here).
pub async fn control<R: Runtime>(rt: R, dir: PathBuf) -> Result<(), String> {
    for (command, expected) in [
        (Command::Shutdown, Ended::Shutdown),
        (Command::Abort, Ended::Aborted),
    ] {
        let what = format!("{command:?}");
        let (ended, sent) = flooded_loop_ends_on(&rt, command).await?;
        if ended != Some(expected) {
            return Err(format!(
                "{what} under a flood of {sent} datagrams: the loop ended {ended:?}, not {expected:?}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let r = round_trip(&rt, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Sends junk datagrams to `to` from another thread as fast as it can until
/// `stop`; counts them.
fn flood(to: SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) -> Result<(), String> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let junk = [0x55u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if socket.send_to(&junk, to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok(())
}

/// Waits for `done` at most `limit` on `rt`'s clock.
async fn within<R: Runtime, T>(
    rt: &R,
    limit: Duration,
    done: async_channel::Receiver<T>,
) -> Option<T> {
    let timer = rt.sleep_until(rt.now() + limit);
    first(Box::pin(done.recv()), timer).await.ok()?.ok()
}

/// Floods a driver's UDP socket until its data channel is full (the loop
/// is not running yet, so nothing drains it), sends `command`, then runs
/// the loop under the continuing flood. Returns why the loop ended (`None`
/// if it did not within 10 s) and how many datagrams were sent by then.
async fn flooded_loop_ends_on<R: Runtime>(
    rt: &R,
    command: Command,
) -> Result<(Option<Ended>, u64), String> {
    let mut driver = Driver::new(
        rt.clone(),
        Engine::new(EngineConfig::default(), Seed::from_u64(7)),
    );
    let socket = rt
        .bind_udp("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    driver.set_udp(socket);
    let handle = driver.handle();
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    flood(addr, stop.clone(), sent.clone())?;
    // The socket's reader task fills the data channel (a few hundred
    // inputs) while this task sleeps and thousands of datagrams go out.
    let give_up = rt.now() + Duration::from_secs(10);
    while sent.load(Ordering::Relaxed) < 20_000 && rt.now() < give_up {
        rt.sleep_until(rt.now() + Duration::from_millis(5)).await;
    }
    let accepted = handle.send(command);
    // A query queued behind the command: answered, or (after an abort)
    // dropped so that its asker hears no answer will come, never left
    // waiting.
    let (late, (late_tx, late_rx)) = (handle.clone(), async_channel::bounded(1));
    rt.spawn(Box::pin(async move {
        let _ = late_tx.send(late.query(Torrents).await.is_some()).await;
    }));
    rt.sleep_until(rt.now() + Duration::from_millis(20)).await;
    let (done_tx, done_rx) = async_channel::bounded(1);
    rt.spawn(Box::pin(async move {
        let ended = driver.run(|_, _| Control::Continue).await;
        let _ = done_tx.send(ended).await;
    }));
    let ended = within(rt, Duration::from_secs(10), done_rx).await;
    let count = sent.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    if !accepted {
        return Err(format!(
            "a command was refused while the data channel was full ({count} datagrams sent)"
        ));
    }
    if ended.is_some() && handle.send(Command::Abort) {
        return Err("a command was accepted after the loop ended".into());
    }
    if within(rt, Duration::from_secs(5), late_rx).await.is_none() {
        return Err("a query queued behind the command was left waiting".into());
    }
    Ok((ended, count))
}

/// A two-file torrent of 3 pieces (70,000 bytes), with its storage under
/// `dir`; the content is written to `dir/pair/` (a torrent started fresh
/// ignores it; one started with a check finds it).
fn two_files(dir: &Path) -> Result<(TorrentInfo, Arc<Storage>), String> {
    let (a, b) = (vec![1u8; 40_000], vec![2u8; 30_000]);
    let folder = dir.join("pair");
    std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    std::fs::write(folder.join("a.bin"), &a).map_err(|e| e.to_string())?;
    std::fs::write(folder.join("b.bin"), &b).map_err(|e| e.to_string())?;
    let mut builder = TorrentBuilder::multi_file("pair");
    builder
        .add_file(vec!["a.bin".into()], a.len() as u64)
        .add_file(vec!["b.bin".into()], b.len() as u64)
        .set_piece_length(32 * 1024);
    let mut hasher = PieceHasher::new(32 * 1024);
    hasher.update(&a);
    hasher.update(&b);
    let bytes = builder.build(&hasher.finish()).map_err(|e| e.to_string())?;
    let metainfo = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
    Ok((
        TorrentInfo::from_metainfo(&metainfo),
        Arc::new(Storage::new(dir, &metainfo)),
    ))
}

/// `Err(what)` unless `got == want`.
fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

/// Add (twice), query, pause, resume, files, peers, remove and shut down,
/// each checked through a query answered by the running loop.
async fn round_trip<R: Runtime>(rt: &R, dir: &Path) -> Result<(), String> {
    let (info, storage) = two_files(dir)?;
    let driver = Driver::new(
        rt.clone(),
        Engine::new(EngineConfig::default(), Seed::from_u64(9)),
    );
    let handle = driver.handle();
    let (done_tx, done_rx) = async_channel::bounded(1);
    // Every state a torrent entered, in order: a short recheck can begin
    // and end between two queries.
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    rt.spawn(Box::pin(async move {
        let ended = driver
            .run(|event, _| {
                if let Some(Event::Torrent(_, TorrentEvent::StateChanged(s))) = event {
                    seen.lock().expect("not poisoned").push(*s);
                }
                Control::Continue
            })
            .await;
        let _ = done_tx.send(ended).await;
    }));

    let add = AddTorrent::new(info.clone(), storage, StartMode::Fresh);
    let id = handle
        .add_torrent(add.clone())
        .await
        .map_err(|e| format!("add: {e}"))?;
    expect(
        "adding it again",
        handle.add_torrent(add).await,
        Err(AddError::Refused),
    )?;
    let all = handle.query(Torrents).await.ok_or("no answer")?;
    let t = all.first().ok_or("no torrent listed")?;
    expect("torrents listed", all.len(), 1)?;
    expect(
        "id and info-hash",
        (t.id, t.info_hash),
        (id, info.info_hash),
    )?;
    expect("state", t.state, TorrentState::Downloading)?;
    expect("pieces", (t.pieces_have, t.pieces), (0, 3))?;
    expect("bytes on disk", t.bytes_have, Some(0))?;
    expect("left", t.left, 70_000)?;

    handle.send(Command::Pause(id));
    let state = |t: Option<Option<TorrentSnapshot>>| t.flatten().map(|t| t.state);
    expect(
        "after Pause",
        state(handle.query(Torrent(id)).await),
        Some(TorrentState::Paused),
    )?;
    handle.send(Command::Resume(id));
    expect(
        "after Resume",
        state(handle.query(Torrent(id)).await),
        Some(TorrentState::Downloading),
    )?;
    // A torrent without trackers lists none (what a tracker said is the
    // engine's tracker tests' business).
    expect(
        "trackers",
        handle.query(Trackers(id)).await.flatten().map(|t| t.len()),
        Some(0),
    )?;
    let files = handle.query(Files(id)).await.flatten().ok_or("no files")?;
    expect(
        "file ranges",
        files.iter().map(|f| f.range.clone()).collect::<Vec<_>>(),
        vec![0..40_000, 40_000..70_000],
    )?;
    expect(
        "file pieces",
        files
            .iter()
            .map(|f| (f.pieces.clone(), f.pieces_have))
            .collect::<Vec<_>>(),
        vec![
            (PieceIndex(0)..PieceIndex(2), 0),
            (PieceIndex(1)..PieceIndex(3), 0),
        ],
    )?;
    expect(
        "peers",
        handle.query(Peers(id)).await,
        Some(Some(Vec::new())),
    )?;

    handle.send(Command::Remove(id));
    expect(
        "torrents after Remove",
        handle.query(Torrents).await,
        Some(Vec::new()),
    )?;
    expect(
        "peers after Remove",
        handle.query(Peers(id)).await,
        Some(None),
    )?;

    // Added again with a check: the disk jobs (verifying what is on disk)
    // go through the blocking pool and back into the loop.
    let (info, storage) = two_files(dir)?;
    let add = AddTorrent::new(info, storage, StartMode::Check);
    let id = handle
        .add_torrent(add)
        .await
        .map_err(|e| format!("add again: {e}"))?;
    let give_up = rt.now() + Duration::from_secs(10);
    let checked = loop {
        let t = handle.query(Torrent(id)).await.flatten().ok_or("gone")?;
        if t.state == TorrentState::Seeding || rt.now() > give_up {
            break t;
        }
        rt.sleep_until(rt.now() + Duration::from_millis(5)).await;
    };
    expect(
        "after the check",
        (
            checked.state,
            checked.pieces_have,
            checked.bytes_have,
            checked.left,
        ),
        (TorrentState::Seeding, 3, Some(70_000), 0),
    )?;
    let files = handle.query(Files(id)).await.flatten().ok_or("no files")?;
    expect(
        "file pieces on disk",
        files.iter().map(|f| f.pieces_have).collect::<Vec<_>>(),
        vec![2, 2],
    )?;
    let before = states.lock().map_err(|_| "poisoned")?.len();
    handle.send(Command::Recheck(id));
    let give_up = rt.now() + Duration::from_secs(10);
    loop {
        let since = states.lock().map_err(|_| "poisoned")?[before..].to_vec();
        if since.len() >= 2 {
            expect(
                "states after Recheck",
                &since[..2],
                &[TorrentState::Checking, TorrentState::Seeding][..],
            )?;
            break;
        }
        if rt.now() > give_up {
            return Err(format!("the recheck did not end: states {since:?}"));
        }
        rt.sleep_until(rt.now() + Duration::from_millis(5)).await;
    }
    expect(
        "after the recheck",
        state(handle.query(Torrent(id)).await),
        Some(TorrentState::Seeding),
    )?;

    handle.send(Command::Shutdown);
    expect(
        "the end",
        within(rt, Duration::from_secs(10), done_rx).await,
        Some(Ended::Shutdown),
    )?;
    expect("a query after the end", handle.query(Torrents).await, None)
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

/// A UDP tracker served on `rt` until its socket's task is abandoned at
/// process exit: its address and the server, to see who has announced.
type UdpTracker = (SocketAddr, Arc<Mutex<TrackerServer>>);

/// Serves a UDP tracker on `rt`; see [`UdpTracker`].
async fn udp_tracker<R: Runtime>(rt: &R) -> Result<UdpTracker, String> {
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
    let served = server.clone();
    rt.spawn(Box::pin(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let answer = served
                .lock()
                .ok()
                .and_then(|mut s| s.handle_udp(clock.now(), from, &buf[..n]));
            if let Some(a) = answer {
                let _ = socket.send_to(&a, from).await;
            }
        }
    }));
    Ok((addr, server))
}

/// A seeder and a leecher on `rt`, through a UDP tracker on `rt`; see the
/// module documentation. `dir` is an empty scratch folder.
pub async fn swarm<R: Runtime>(rt: R, dir: PathBuf) -> Result<(), String> {
    let data = content(3 << 20);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    std::fs::write(src.join("payload.bin"), &data).map_err(|e| e.to_string())?;
    let (tracker, tracker_server) = udp_tracker(&rt).await?;
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
        keep_seeding: seed,
        listen: Some("127.0.0.1:0".parse().expect("literal")),
        peer_timeout: Some(Duration::from_secs(30)),
        ..SessionOptions::new(
            client::TorrentSource::File(torrent.clone()),
            folder.to_owned(),
        )
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
    // The leecher learns of the seeder only from the tracker, and a tracker
    // that answered "no peers" is not asked again for its interval: the
    // seeder's announce must be recorded first.
    let give_up = rt.now() + Duration::from_secs(10);
    while tracker_server.lock().map_or(0, |s| s.peer_count()) == 0 {
        if rt.now() > give_up {
            seeder.send(Command::Shutdown);
            return Err("the seeder did not announce within 10 s".into());
        }
        rt.sleep_until(rt.now() + Duration::from_millis(5)).await;
    }

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
