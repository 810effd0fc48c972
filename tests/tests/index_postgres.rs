//! Issue 19's shared index on a real PostgreSQL (a private cluster on
//! 127.0.0.1, `bittide_tests::postgres`): the store contract every index
//! keeps (`bittide_index::contract`), a schema newer than this build
//! refused, a version 1 database upgraded, and two writers at once — two
//! threads storing and claiming the same torrents in opposite orders
//! never duplicate, lose or deadlock.

use bittide_index::{contract, Index, IndexError, PostgresIndex};
use bittide_tests::postgres::Postgres;

/// A fresh database in `pg` for one test (made with the client library
/// directly: creating databases is no business of the index's).
fn database(pg: &Postgres, name: &str) -> String {
    let mut admin = postgres::Client::connect(&pg.url(), postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    pg.url_of(name)
}

#[test]
fn postgres_keeps_the_store_contract() {
    let pg = Postgres::start();
    let url = database(&pg, "contract_a");
    contract::stores_searches_and_shows(&mut PostgresIndex::connect(&url).expect("connect"));
    let url = database(&pg, "contract_b");
    contract::claims_share_the_work(&mut PostgresIndex::connect(&url).expect("connect"));
    let url = database(&pg, "contract_d");
    contract::searches_rank_the_newest_matches(&mut PostgresIndex::connect(&url).expect("connect"));
    let url = database(&pg, "contract_c");
    contract::hostile_text_is_stored_as_text(&mut PostgresIndex::connect(&url).expect("connect"));

    // A second connection sees the schema as it is; a newer one is refused.
    let mut ix = PostgresIndex::connect(&url).expect("connect again");
    assert_eq!(ix.stats().expect("stats").torrents, 1);
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    raw.batch_execute("UPDATE bittide_schema SET version = 99")
        .expect("bump");
    assert!(matches!(
        PostgresIndex::connect(&url),
        Err(IndexError::NewerSchema { found: 99, .. })
    ));
}

/// A database made by schema version 1 (names searched through a GIN
/// index) gets the word index, filled from the names it holds.
#[test]
fn a_version_1_database_gets_its_names_indexed() {
    let pg = Postgres::start();
    let url = database(&pg, "upgrade");
    let batch: Vec<_> = (1..=25)
        .map(|i| contract::found(i, &format!("Old.Name.{i}"), 1))
        .collect();
    PostgresIndex::connect(&url)
        .expect("connect")
        .insert("a", &batch)
        .expect("insert");
    // Back to version 1 as it was.
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    raw.batch_execute(
        "DROP TABLE torrent_words;
         CREATE INDEX torrents_search ON torrents USING GIN (search);
         UPDATE bittide_schema SET version = 1",
    )
    .expect("downgrade");
    let mut ix = PostgresIndex::connect(&url).expect("migrate");
    assert_eq!(ix.search("old name", 100).expect("search").len(), 25);
    assert_eq!(
        ix.search("name 7", 10).expect("search")[0].name,
        "Old.Name.7"
    );
    let version: i64 = raw
        .query_one("SELECT version FROM bittide_schema", &[])
        .expect("version")
        .get(0);
    assert_eq!(version, 2);
}

#[test]
fn two_writers_at_once_never_duplicate_nor_lose() {
    let pg = Postgres::start();
    let url = database(&pg, "concurrent");
    drop(PostgresIndex::connect(&url).expect("migrate"));
    let batch: Vec<_> = (0..400)
        .map(|i| contract::found(i, &format!("torrent {i}"), 3))
        .collect();
    let writers: Vec<_> = ["one", "two"]
        .into_iter()
        .enumerate()
        .map(|(w, crawler)| {
            let url = url.clone();
            let mut mine = batch.clone();
            if w == 1 {
                mine.reverse();
            }
            std::thread::spawn(move || {
                let mut ix = PostgresIndex::connect(&url).expect("connect");
                let hashes: Vec<_> = mine.iter().map(|f| (f.listing.info_hash, None)).collect();
                let mut claimed = 0;
                for chunk in hashes.chunks(50) {
                    claimed += ix.claim(crawler, chunk, 5000, 300).expect("claim").len();
                }
                let mut new = 0;
                for chunk in mine.chunks(40) {
                    new += ix.insert(crawler, chunk).expect("insert");
                }
                (claimed, new)
            })
        })
        .collect();
    let results: Vec<(usize, usize)> = writers
        .into_iter()
        .map(|h| h.join().expect("writer"))
        .collect();
    // Every hash claimed by exactly one, every torrent stored by one.
    assert_eq!(
        results.iter().map(|r| r.0).sum::<usize>(),
        400,
        "{results:?}"
    );
    assert_eq!(
        results.iter().map(|r| r.1).sum::<usize>(),
        400,
        "{results:?}"
    );
    let mut ix = PostgresIndex::connect(&url).expect("connect");
    let stats = ix.stats().expect("stats");
    assert_eq!(
        (stats.torrents, stats.files, stats.crawlers),
        (400, 1200, 2)
    );
    assert_eq!(
        ix.search("torrent 399", 5).expect("search")[0].name,
        "torrent 399"
    );
}
