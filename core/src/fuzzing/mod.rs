//! Entry points for the fuzz targets, one per target (rustls's approach:
//! the logic lives in the library, `fuzz/fuzz_targets/*.rs` are one-liners).
//!
//! Each checks an oracle stronger than "did not panic": decoded values must
//! survive an encode → decode round trip unchanged. The same functions
//! replay the committed seeds and regressions under `cargo test`
//! (`tests/tests/fuzz_replay.rs`), so a crash once found stays fixed on
//! stable Rust.
//!
//! One file per area: [`codec`] (stateless decoders), [`peer`] (one peer
//! session), [`tracker`], [`dht`] (a node, its saved state), [`fetch`] (a
//! magnet's metadata fetch), [`swarm`] (a torrent among hostile peers),
//! [`utp`] (the uTP packet codec and one connection), [`web_seed`] (a
//! torrent whose web seeds answer anything),
//! [`engine`] (routing connections and datagrams), [`mse`] (the
//! encryption handshake from either side), [`paths`] (where files
//! go on disk).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod codec;
mod dht;
mod engine;
mod fetch;
mod mse;
mod paths;
mod peer;
mod swarm;
mod tracker;
mod utp;
mod web_seed;

pub use codec::{
    bencode, bitfield, compact, extension_handshake, file_tree, handshake, hash_tree, krpc,
    listing, lsd_announce, magnet, metainfo, pex, ut_holepunch, ut_metadata, wire_frame,
    wire_stream,
};
pub use dht::{dht_datagram, dht_state};
pub use engine::engine_routing;
pub use fetch::metadata_fetch;
pub use mse::{mse_initiator, mse_responder};
pub use paths::disk_paths;
pub use peer::peer_session_ops;
pub use swarm::{torrent_swarm, torrent_swarm_v2};
pub use tracker::{
    tracker_http_request, tracker_http_response, tracker_udp_client, tracker_udp_server,
};
pub use utp::{utp_connection, utp_packet};
pub use web_seed::web_seed;
