//! Replays every committed fuzz seed and regression through the fuzz entry
//! points on stable Rust, and checks the generated seeds are committed.
//!
//! To (re)write the generated seeds:
//! `BITTIDE_WRITE_SEEDS=1 cargo test -p bittide-tests --test fuzz_replay`.

use std::path::Path;

use bittide_core::fuzzing;
use bittide_driver::fuzzing as driver;
use bittide_tests::{seeds, workspace_root};

fn entry(target: &str) -> fn(&[u8]) {
    match target {
        "bencode" => fuzzing::bencode,
        "metainfo" => fuzzing::metainfo,
        "magnet" => fuzzing::magnet,
        "handshake" => fuzzing::handshake,
        "wire_frame" => fuzzing::wire_frame,
        "wire_stream" => fuzzing::wire_stream,
        "peer_session_ops" => fuzzing::peer_session_ops,
        "tracker_http_response" => fuzzing::tracker_http_response,
        "tracker_http_request" => fuzzing::tracker_http_request,
        "tracker_udp_client" => fuzzing::tracker_udp_client,
        "tracker_udp_server" => fuzzing::tracker_udp_server,
        "krpc" => fuzzing::krpc,
        "dht_datagram" => fuzzing::dht_datagram,
        "ut_metadata" => fuzzing::ut_metadata,
        "pex" => fuzzing::pex,
        "ut_holepunch" => fuzzing::ut_holepunch,
        "metadata_fetch" => fuzzing::metadata_fetch,
        "extension_handshake" => fuzzing::extension_handshake,
        "bitfield" => fuzzing::bitfield,
        "disk_paths" => fuzzing::disk_paths,
        "compact" => fuzzing::compact,
        "dht_state" => fuzzing::dht_state,
        "engine_routing" => fuzzing::engine_routing,
        "torrent_swarm" => fuzzing::torrent_swarm,
        "torrent_swarm_v2" => fuzzing::torrent_swarm_v2,
        "utp_packet" => fuzzing::utp_packet,
        "utp_connection" => fuzzing::utp_connection,
        "mse_initiator" => fuzzing::mse_initiator,
        "mse_responder" => fuzzing::mse_responder,
        "lsd_announce" => fuzzing::lsd_announce,
        "web_seed" => fuzzing::web_seed,
        "file_tree" => fuzzing::file_tree,
        "listing" => fuzzing::listing,
        "hash_tree" => fuzzing::hash_tree,
        "resume" => driver::resume,
        "tracker_front" => driver::tracker_front,
        "units" => driver::units,
        "tracker_client" => driver::tracker_client,
        "state_files" => driver::state_files,
        "receive_buffer" => driver::receive_buffer,
        other => panic!("no fuzz entry point for {other}"),
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"));
    out.sort();
    out
}

#[test]
fn generated_seeds_are_committed() {
    let write = std::env::var_os("BITTIDE_WRITE_SEEDS").is_some();
    for target in seeds::TARGETS {
        let dir = workspace_root().join("fuzz/seeds").join(target);
        for (name, bytes) in seeds::for_target(target) {
            let path = dir.join(name);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let committed = std::fs::read(&path).unwrap_or_else(|_| {
                panic!(
                    "seed {} is not committed; run with BITTIDE_WRITE_SEEDS=1",
                    path.display()
                )
            });
            assert_eq!(committed, bytes, "seed {} is stale", path.display());
        }
    }
}

#[test]
fn committed_seeds_and_regressions_replay_cleanly() {
    let mut replayed = 0;
    for target in seeds::TARGETS {
        let run = entry(target);
        for kind in ["seeds", "regressions"] {
            for path in files(&workspace_root().join("fuzz").join(kind).join(target)) {
                let data = std::fs::read(&path).unwrap();
                let result = std::panic::catch_unwind(|| run(&data));
                assert!(result.is_ok(), "{} fails its oracle", path.display());
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 20,
        "only {replayed} inputs replayed: are the seeds committed?"
    );
}

/// CI replays `fuzz/seeds/T` and `fuzz/regressions/T` of every target
/// `cargo fuzz list` names, and fails on a folder that is missing: each
/// target has its entry point and both folders committed.
#[test]
fn every_target_has_its_entry_point_and_folders() {
    let fuzz = workspace_root().join("fuzz");
    for target in seeds::TARGETS {
        let entry = fuzz.join("fuzz_targets").join(format!("{target}.rs"));
        assert!(entry.is_file(), "{} is missing", entry.display());
        for kind in ["seeds", "regressions"] {
            let dir = fuzz.join(kind).join(target);
            assert!(dir.is_dir(), "{} is missing", dir.display());
        }
    }
    let listed = files(&fuzz.join("fuzz_targets")).len();
    assert_eq!(
        listed,
        seeds::TARGETS.len(),
        "a fuzz target not in seeds::TARGETS"
    );
}
