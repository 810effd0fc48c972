//! The driver's control channel on tokio: commands are never lost behind a
//! flood of socket data, and commands and queries make a round trip
//! through the running loop.

use std::net::UdpSocket as StdUdp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bittide_core::engine::{Engine, EngineConfig};
use bittide_core::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use bittide_core::torrent::{StartMode, TorrentInfo, TorrentState};
use bittide_core::Seed;
use bittide_driver::control::{AddError, AddTorrent, Files, Peers, Torrent, Torrents};
use bittide_driver::disk::Storage;
use bittide_driver::driver::{Command, Control, Driver, Ended};
use bittide_driver::runtime::Runtime;
use bittide_tokio::runtime::TokioRuntime;

/// A one-thread runtime: the loop, the socket reader and the test share
/// it, so the reader fills the data channel whenever the loop is busy.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Sends junk datagrams to `to` from another thread as fast as it can until
/// `stop`; counts them.
fn flood(to: std::net::SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let socket = StdUdp::bind("127.0.0.1:0").expect("bind flooder");
        let junk = [0x55u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if socket.send_to(&junk, to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

/// Floods a driver's UDP socket until its data channel is full (the loop
/// is not running yet, so nothing drains it), sends `command`, then runs
/// the loop under the continuing flood. Returns why the loop ended (or
/// `None` if it did not within 10 s) and how many datagrams were sent by
/// then.
fn flooded_loop_ends_on(command: fn() -> Command) -> (Option<Ended>, u64) {
    runtime().block_on(async move {
        let rt = TokioRuntime::current();
        let mut driver = Driver::new(
            rt.clone(),
            Engine::new(EngineConfig::default(), Seed::from_u64(7)),
        );
        let socket = rt
            .bind_udp("127.0.0.1:0".parse().expect("literal"))
            .await
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        driver.set_udp(socket);
        let handle = driver.handle();
        let (stop, sent) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        flood(addr, stop.clone(), sent.clone());
        // The socket's reader task fills the data channel (256 inputs)
        // while this task sleeps; thousands of datagrams are sent.
        while sent.load(Ordering::Relaxed) < 20_000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            handle.send(command()),
            "a command is accepted while the data channel is full"
        );
        let running = tokio::spawn(driver.run(|_, _| Control::Continue));
        let ended = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .ok()
            .map(|joined| joined.expect("the loop did not panic"));
        let count = sent.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        if ended.is_some() {
            assert!(!handle.send(Command::Abort), "a send after the end fails");
        }
        (ended, count)
    })
}

#[test]
fn shutdown_arrives_through_a_flood() {
    let (ended, sent) = flooded_loop_ends_on(|| Command::Shutdown);
    assert_eq!(
        ended,
        Some(Ended::Shutdown),
        "{sent} datagrams sent; the shutdown was lost or stuck"
    );
}

#[test]
fn abort_arrives_through_a_flood() {
    let (ended, sent) = flooded_loop_ends_on(|| Command::Abort);
    assert_eq!(
        ended,
        Some(Ended::Aborted),
        "{sent} datagrams sent; the abort was lost or stuck"
    );
}

/// A two-file torrent of 3 pieces, with its storage under `dir`.
fn torrent(dir: &std::path::Path) -> (TorrentInfo, Arc<Storage>) {
    let (a, b) = (vec![1u8; 40_000], vec![2u8; 30_000]);
    let mut builder = TorrentBuilder::multi_file("pair");
    builder
        .add_file(vec!["a.bin".into()], a.len() as u64)
        .add_file(vec!["b.bin".into()], b.len() as u64)
        .set_piece_length(32 * 1024);
    let mut hasher = PieceHasher::new(32 * 1024);
    hasher.update(&a);
    hasher.update(&b);
    let bytes = builder.build(&hasher.finish()).expect("torrent");
    let metainfo = Metainfo::from_bytes(&bytes).expect("parses");
    (
        TorrentInfo::from_metainfo(&metainfo),
        Arc::new(Storage::new(dir, &metainfo)),
    )
}

#[test]
fn commands_and_queries_round_trip() {
    let dir = std::env::temp_dir().join(format!("bittide-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let (info, storage) = torrent(&dir);
    runtime().block_on(async move {
        let rt = TokioRuntime::current();
        let driver = Driver::new(
            rt.clone(),
            Engine::new(EngineConfig::default(), Seed::from_u64(9)),
        );
        let handle = driver.handle();
        let running = tokio::spawn(driver.run(|_, _| Control::Continue));

        let add = AddTorrent::new(info.clone(), storage.clone(), StartMode::Fresh);
        let id = handle.add_torrent(add.clone()).await.expect("added");
        assert_eq!(
            handle.add_torrent(add).await,
            Err(AddError::Refused),
            "one info-hash, one torrent"
        );

        let all = handle.query(Torrents).await.expect("answered");
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].id, all[0].info_hash), (id, info.info_hash));
        assert_eq!(all[0].state, Some(TorrentState::Downloading));
        assert_eq!((all[0].pieces_have, all[0].pieces), (0, 3));
        assert_eq!(all[0].left, 70_000);

        assert!(handle.send(Command::Pause(id)));
        let paused = handle.query(Torrent(id)).await.expect("answered");
        assert_eq!(paused.map(|t| t.state), Some(Some(TorrentState::Paused)));
        assert!(handle.send(Command::Resume(id)));
        let resumed = handle.query(Torrent(id)).await.expect("answered");
        assert_eq!(
            resumed.map(|t| t.state),
            Some(Some(TorrentState::Downloading))
        );

        let files = handle
            .query(Files(id))
            .await
            .expect("answered")
            .expect("known");
        let ranges: Vec<_> = files.iter().map(|f| f.range.clone()).collect();
        assert_eq!(ranges, vec![0..40_000, 40_000..70_000]);
        assert!(files.iter().all(|f| f.pieces_have == 0 && !f.padding));
        assert_eq!(handle.query(Peers(id)).await, Some(Some(Vec::new())));

        assert!(handle.send(Command::Remove(id)));
        assert_eq!(handle.query(Torrents).await, Some(Vec::new()));
        assert_eq!(handle.query(Peers(id)).await, Some(None));

        assert!(handle.send(Command::Shutdown));
        let ended = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("ended in time")
            .expect("no panic");
        assert_eq!(ended, Ended::Shutdown);
        assert_eq!(
            handle.query(Torrents).await,
            None,
            "no answer after the end"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
