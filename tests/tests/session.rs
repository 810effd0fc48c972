//! The daemon's session on loopback: two sessions on tokio, one seeding
//! and one downloading from it, with pause, restart from the state folder
//! (no read of vouched data), a corrupt entry set aside, and removal with
//! data. Bounded: every wait has a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
use bittide_core::InfoHash;
use bittide_driver::session::views::{AddOptions, AddSource, TorrentStatus, TorrentView};
use bittide_driver::session::{Session, SessionConfig, SessionHandle};
use bittide_tokio::runtime::TokioRuntime;

const PIECE: u32 = 32 * 1024;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bittide-session-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A three-file torrent whose content is written under `dir`.
fn make_torrent(dir: &Path) -> Vec<u8> {
    let files: [(&str, usize); 3] = [("a.bin", 300_000), ("b.bin", 5), ("c.bin", 200_001)];
    let mut b = TorrentBuilder::multi_file("content");
    let mut hasher = PieceHasher::new(PIECE);
    let mut seed = 7u32;
    for (name, len) in files {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        std::fs::create_dir_all(dir.join("content")).unwrap();
        std::fs::write(dir.join("content").join(name), &data).unwrap();
        hasher.update(&data);
        b.add_file(vec![name.into()], len as u64);
    }
    b.set_piece_length(PIECE);
    b.build(&hasher.finish()).unwrap()
}

fn config(state: &Path, download: &Path) -> SessionConfig {
    let mut c = SessionConfig::new(
        state.to_owned(),
        download.to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    c.max_peers_per_ip = 4;
    c
}

async fn open(
    state: &Path,
    download: &Path,
) -> (
    SessionHandle<TokioRuntime>,
    SocketAddr,
    tokio::task::JoinHandle<()>,
    Vec<String>,
) {
    let session = Session::open(TokioRuntime::current(), config(state, download))
        .await
        .expect("session opens");
    let (handle, addr, warnings) = (
        session.handle(),
        session.listen_addr(),
        session.warnings().to_vec(),
    );
    let task = tokio::spawn(async move {
        session.run().await;
    });
    (handle, addr, task, warnings)
}

async fn wait_for(
    h: &SessionHandle<TokioRuntime>,
    hash: InfoHash,
    what: &str,
    ok: impl Fn(&TorrentView) -> bool,
) -> TorrentView {
    for _ in 0..600 {
        let list = h.list().await.unwrap();
        if let Some(t) = list.iter().find(|t| t.info_hash == hash) {
            if ok(t) {
                return t.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:?}", h.list().await);
}

#[test]
fn a_session_downloads_pauses_restarts_without_reading_and_removes_with_data() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let seed_dir = temp("seed-data");
        let torrent = make_torrent(&seed_dir);
        let (seed_state, dl_state, dl_dir) = (temp("seed-state"), temp("dl-state"), temp("dl"));

        let (seeder, seeder_addr, seeder_task, _) = open(&seed_state, &seed_dir).await;
        let hash = seeder
            .add(
                AddSource::TorrentFile(torrent.clone()),
                AddOptions::default(),
            )
            .await
            .unwrap();
        wait_for(&seeder, hash, "the seeder to check its data", |t| {
            t.state == TorrentStatus::Seeding
        })
        .await;

        let (leecher, _, leecher_task, _) = open(&dl_state, &dl_dir).await;
        let options = AddOptions {
            peers: vec![seeder_addr],
            category: Some("test".into()),
            ..AddOptions::default()
        };
        let added = leecher
            .add(AddSource::TorrentFile(torrent.clone()), options.clone())
            .await;
        assert_eq!(added, Ok(hash));
        let again = leecher
            .add(AddSource::TorrentFile(torrent.clone()), options)
            .await;
        assert!(matches!(
            again,
            Err(bittide_driver::session::views::RequestError::Duplicate(_))
        ));
        let done = wait_for(&leecher, hash, "the download", |t| t.progress == 1.0).await;
        assert_eq!(done.category.as_deref(), Some("test"));
        for name in ["a.bin", "b.bin", "c.bin"] {
            let a = std::fs::read(seed_dir.join("content").join(name)).unwrap();
            let b = std::fs::read(dl_dir.join("content").join(name)).unwrap();
            assert!(a == b, "{name} differs");
        }
        leecher.pause(hash).await.unwrap();
        wait_for(&leecher, hash, "pause", |t| {
            t.state == TorrentStatus::Paused
        })
        .await;
        leecher.shutdown();
        tokio::time::timeout(Duration::from_secs(30), leecher_task)
            .await
            .unwrap()
            .unwrap();

        // A corrupt entry beside it is set aside, not fatal.
        let bad = dl_state.join("torrents").join("00".repeat(20));
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("torrent"), b"not bencode").unwrap();
        std::fs::write(bad.join("settings"), b"d7:versioni1ee").unwrap();

        let (leecher, _, leecher_task, warnings) = open(&dl_state, &dl_dir).await;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&"00".repeat(20)), "{warnings:?}");
        let back = wait_for(&leecher, hash, "the restart", |_| true).await;
        assert_eq!(back.state, TorrentStatus::Paused);
        assert_eq!(back.progress, 1.0);
        assert_eq!(back.category.as_deref(), Some("test"));
        leecher.resume(hash).await.unwrap();
        wait_for(&leecher, hash, "seeding after resume", |t| {
            t.state == TorrentStatus::Seeding
        })
        .await;
        let stats = leecher.stats().await.unwrap();
        assert_eq!(stats.disk_read, 0, "resume data vouched for every piece");

        // Moved to another folder and renamed while seeding: the files
        // follow, and so does the resume data (nothing is read).
        let moved_dir = temp("moved");
        leecher.move_storage(hash, moved_dir.clone()).await.unwrap();
        leecher.rename(hash, "renamed".into()).await.unwrap();
        assert!(!dl_dir.join("content").exists(), "moved away");
        let a = std::fs::read(seed_dir.join("content").join("c.bin")).unwrap();
        let b = std::fs::read(moved_dir.join("renamed").join("c.bin")).unwrap();
        assert!(a == b, "moved intact");
        let after = wait_for(&leecher, hash, "seeding after the move", |t| {
            t.state == TorrentStatus::Seeding
        })
        .await;
        assert_eq!(after.save_path, moved_dir);
        let bad_name = leecher.rename(hash, "../escape".into()).await;
        assert!(bad_name.is_err());
        assert_eq!(leecher.stats().await.unwrap().disk_read, 0);

        leecher.remove(hash, true).await.unwrap();
        assert!(leecher.list().await.unwrap().is_empty());
        assert!(!moved_dir.join("renamed").exists(), "data deleted");
        assert!(!dl_state.join("torrents").join(hash.to_string()).exists());
        leecher.shutdown();
        seeder.shutdown();
        for task in [leecher_task, seeder_task] {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .unwrap()
                .unwrap();
        }
        for d in [seed_dir, seed_state, dl_state, dl_dir, moved_dir] {
            let _ = std::fs::remove_dir_all(d);
        }
    });
}
