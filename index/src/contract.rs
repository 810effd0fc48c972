//! What every [`Index`] must do, as functions any store's tests call (the
//! SQLite unit tests, the PostgreSQL interop test): one contract, not a
//! copy per store. Each wants an empty index.

use bittide_core::metainfo::InfoHash;

use crate::{Found, Index, IndexError, ListedFile, Listing, SwarmEstimate, RANKED_AT_MOST};

/// A listing of `files` files named `name`, hash from `i`.
pub fn found(i: u32, name: &str, files: usize) -> Found {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    Found {
        listing: Listing {
            info_hash: InfoHash(h),
            info_hash_v2: None,
            name: name.to_owned(),
            size: files as u64 * 10,
            file_count: files as u64,
            files: (0..files)
                .map(|f| ListedFile {
                    path: format!("{name}/{f}.bin"),
                    size: 10,
                })
                .collect(),
            private: false,
        },
        at: 1000 + i64::from(i),
        node: None,
    }
}

/// Stores, finds by words (any case), shows files, counts, exports; the
/// same batch from a second crawler adds nothing.
pub fn stores_searches_and_shows(ix: &mut dyn Index) {
    let batch = vec![
        found(1, "Debian 12.5 netinst", 1),
        found(2, "Big Buck Bunny 1080p", 3),
        found(3, "Sintel (2010) 1080p", 2),
        found(4, "The.Matrix.1999.1080p.x264-GRP", 1),
    ];
    assert_eq!(ix.insert("a", &batch).expect("insert"), 4);
    assert_eq!(ix.insert("b", &batch).expect("insert"), 0);
    let hits = ix.search("1080P", 10).expect("search");
    assert_eq!(hits.len(), 3);
    // Dotted scene names are words too.
    assert_eq!(ix.search("matrix x264", 10).expect("search").len(), 1);
    assert!(ix.search("bunny big", 10).expect("search")[0]
        .name
        .starts_with("Big Buck"));
    assert!(ix.search("nothing here", 10).expect("search").is_empty());
    let (hit, files) = ix
        .get(&batch[1].listing.info_hash)
        .expect("get")
        .expect("there");
    assert_eq!(hit.files, 3);
    assert_eq!(files[2].path, "Big Buck Bunny 1080p/2.bin");
    assert!(ix.get(&InfoHash([9; 20])).expect("get").is_none());
    let stats = ix.stats().expect("stats");
    assert_eq!((stats.torrents, stats.files, stats.crawlers), (4, 7, 2));
    let mut exported = Vec::new();
    ix.export(&mut |h, f| {
        exported.push((h.name.clone(), f.len()));
        Ok(())
    })
    .expect("export");
    assert_eq!(exported.len(), 4);
    assert_eq!(exported[1], ("Big Buck Bunny 1080p".to_owned(), 3));
}

/// A hash indexed is not fetched again; one claimed is left to its
/// crawler within the window and free after it; every crawler that met a
/// torrent is one of its sources.
pub fn claims_share_the_work(ix: &mut dyn Index) {
    ix.insert("a", &[found(1, "one", 1)]).expect("insert");
    let hashes: Vec<InfoHash> = (1..=3)
        .map(|i| found(i, "x", 0).listing.info_hash)
        .collect();
    let met: Vec<(InfoHash, Option<std::net::SocketAddr>)> = hashes
        .iter()
        .map(|h| (*h, "127.0.0.1:6881".parse().ok()))
        .collect();
    assert_eq!(
        ix.claim("a", &met, 2000, 300).expect("claim"),
        hashes[1..].to_vec()
    );
    assert!(ix.claim("b", &met, 2100, 300).expect("claim").is_empty());
    assert_eq!(
        ix.claim("b", &met, 2400, 300).expect("claim"),
        hashes[1..].to_vec()
    );
    // Meeting a torrent counts as finding it, indexed or not yet: b's find
    // of 2 shows once 2 is stored, though a fetched it.
    assert_eq!(ix.stats().expect("stats").crawlers, 2);
    ix.insert("a", &[found(2, "two", 1)]).expect("insert");
    assert!(ix
        .claim("z", &met[1..2], 2410, 300)
        .expect("claim")
        .is_empty());
    assert_eq!(ix.stats().expect("stats").crawlers, 3);
    // A hybrid met by its v2 name (BEP 52) is known by it too.
    let mut hybrid = found(7, "hybrid", 1);
    hybrid.listing.info_hash_v2 = Some([0xab; 32]);
    ix.insert("a", &[hybrid]).expect("insert");
    let v2_name = (InfoHash([0xab; 20]), None);
    assert!(ix
        .claim("a", &[v2_name], 2420, 300)
        .expect("claim")
        .is_empty());
    // Met by that name, it counts for the crawler that met it.
    assert!(ix
        .claim("v2", &[v2_name], 2421, 300)
        .expect("claim")
        .is_empty());
    assert_eq!(ix.stats().expect("stats").crawlers, 4);
    // A swarm counted under that name is the hybrid's (BEP 33); an older
    // estimate does not replace a newer one.
    let estimate = crate::SwarmEstimate {
        info_hash: InfoHash([0xab; 20]),
        seeders: 4,
        leechers: 9,
        at: 2430,
    };
    ix.set_swarms(&[estimate]).expect("swarms");
    ix.set_swarms(&[crate::SwarmEstimate {
        seeders: 1,
        at: 2000,
        ..estimate
    }])
    .expect("swarms");
    let (hit, _) = ix
        .get(&found(7, "", 0).listing.info_hash)
        .expect("get")
        .expect("there");
    assert_eq!((hit.seeders, hit.leechers), (Some(4), Some(9)));
    // Storing it ended the claim: nobody fetches 2 again; 3, never
    // stored, is free once b's claim is old.
    assert!(ix.claim("c", &met, 2450, 300).expect("claim").is_empty());
    assert_eq!(
        ix.claim("c", &met, 2750, 300).expect("claim"),
        vec![hashes[2]]
    );
}

/// A search matching more than [`RANKED_AT_MOST`] ranks the newest that
/// many (by text match, then seeders): an older, better seeded match is
/// left out, a newer one first; words in any order and repeated find the
/// same.
pub fn searches_rank_the_newest_matches(ix: &mut dyn Index) {
    let total = RANKED_AT_MOST as u32 + 5;
    let all: Vec<Found> = (1..=total)
        .map(|i| found(i, &format!("common name {i}"), 0))
        .collect();
    for chunk in all.chunks(2000) {
        ix.insert("a", chunk).expect("insert");
    }
    let swarm = |i: u32, seeders: u32| SwarmEstimate {
        info_hash: found(i, "", 0).listing.info_hash,
        seeders,
        leechers: 0,
        at: 5000,
    };
    ix.set_swarms(&[swarm(1, 100), swarm(2, 90), swarm(total - 7, 50)])
        .expect("swarms");
    let hits = ix.search("common", 3).expect("search");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].name, format!("common name {}", total - 7));
    assert_eq!(hits[0].seeders, Some(50));
    assert!(hits[1].seeders.is_none());
    let named = ix.search("NAME common common", 3).expect("search");
    assert_eq!(named[0].name, hits[0].name);
    // Few matches are all ranked.
    assert_eq!(
        ix.search("common 2", 5).expect("search")[0].seeders,
        Some(90)
    );
}

/// Names that look like SQL or query syntax are text; a search without
/// words is refused.
pub fn hostile_text_is_stored_as_text(ix: &mut dyn Index) {
    let evil = "x'); DROP TABLE torrents; -- \" OR 1=1 & !(a | b):*";
    ix.insert("a", &[found(1, evil, 1)]).expect("insert");
    let hits = ix.search("drop table", 10).expect("search");
    assert_eq!(hits[0].name, evil);
    assert!(matches!(
        ix.search("\"*)(&|!", 10),
        Err(IndexError::Query(_))
    ));
    assert_eq!(ix.search("x'); DROP", 10).expect("search").len(), 1);
    assert_eq!(ix.stats().expect("stats").torrents, 1);
}
