//! The JSON of the index's answers (`docs/index.md`), the same from
//! `bittide index … --json` and from the daemon's `/api/v1/index/…`.

use serde_json::{json, Value};

use crate::{Hit, IndexStats, ListedFile};

/// One torrent: `info_hash`, `info_hash_v2`, `name`, `size`, `files`,
/// `private`, `seeders`, `leechers`, `discovered`, `last_seen`, `magnet`.
pub fn hit_json(h: &Hit) -> Value {
    json!({
        "info_hash": h.info_hash.to_string(),
        "info_hash_v2": h.info_hash_v2.map(|v| v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        "name": h.name,
        "size": h.size,
        "files": h.files,
        "private": h.private,
        "seeders": h.seeders,
        "leechers": h.leechers,
        "discovered": h.discovered,
        "last_seen": h.last_seen,
        "magnet": h.magnet(),
    })
}

/// One torrent with its `file_list`: an array of `{"path", "size"}`.
pub fn listing_json(h: &Hit, files: &[ListedFile]) -> Value {
    let mut v = hit_json(h);
    v["file_list"] = files
        .iter()
        .map(|f| json!({"path": f.path, "size": f.size}))
        .collect();
    v
}

/// The totals: `torrents`, `files`, `bytes`, `crawlers`, `with_swarm`,
/// `newest`.
pub fn stats_json(s: &IndexStats) -> Value {
    json!({"torrents": s.torrents, "files": s.files, "bytes": s.bytes,
           "crawlers": s.crawlers, "with_swarm": s.with_swarm, "newest": s.newest})
}
