//! The embedded index: one SQLite file (WAL, so `bittide index search`
//! reads while a crawl writes), names searched with FTS5.
//!
//! The schema is versioned with `PRAGMA user_version`: each entry of
//! [`MIGRATIONS`] brings a file from one version to the next, in one
//! transaction, and a file newer than this build is refused rather than
//! misread. `docs/index.md` describes the tables.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};

use bittide_core::metainfo::InfoHash;

use crate::query::fts_terms;
use crate::{
    in_harvest_order, Found, Hit, Index, IndexError, IndexStats, ListedFile, SwarmEstimate,
    UnixTime, RANKED_AT_MOST,
};

/// Schema version `i + 1` is made by `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &["
CREATE TABLE torrents (
    id INTEGER PRIMARY KEY,
    info_hash BLOB NOT NULL UNIQUE,
    info_hash_v2 BLOB,
    v2_name BLOB,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    private INTEGER NOT NULL,
    discovered INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    seeders INTEGER,
    leechers INTEGER,
    swarm_at INTEGER
);
CREATE INDEX torrents_discovered ON torrents(discovered);
CREATE INDEX torrents_v2_name ON torrents(v2_name);
CREATE TABLE files (
    torrent INTEGER NOT NULL REFERENCES torrents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (torrent, idx)
) WITHOUT ROWID;
CREATE TABLE sources (
    info_hash BLOB NOT NULL,
    crawler TEXT NOT NULL,
    node TEXT,
    found INTEGER NOT NULL,
    PRIMARY KEY (info_hash, crawler)
) WITHOUT ROWID;
CREATE INDEX sources_found ON sources(found);
CREATE TABLE claims (
    info_hash BLOB PRIMARY KEY,
    crawler TEXT NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE VIRTUAL TABLE torrents_fts USING fts5(
    name, content='torrents', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER torrents_ai AFTER INSERT ON torrents BEGIN
    INSERT INTO torrents_fts(rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER torrents_ad AFTER DELETE ON torrents BEGIN
    INSERT INTO torrents_fts(torrents_fts, rowid, name) VALUES ('delete', old.id, old.name);
END;
CREATE TRIGGER torrents_au AFTER UPDATE OF name ON torrents BEGIN
    INSERT INTO torrents_fts(torrents_fts, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO torrents_fts(rowid, name) VALUES (new.id, new.name);
END;
"];

/// The columns a [`Hit`] is read from, in [`hit`]'s order.
const HIT_COLUMNS: &str = "t.info_hash, t.info_hash_v2, t.name, t.size, t.file_count, t.private, \
     t.seeders, t.leechers, t.discovered, t.last_seen";

/// See the module documentation.
#[derive(Debug)]
pub struct SqliteIndex {
    db: Connection,
}

impl SqliteIndex {
    /// Opens `path` (created with its folder if missing) and migrates it.
    pub fn open(path: &Path) -> Result<SqliteIndex, IndexError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| IndexError::Store(format!("{}: {e}", dir.display())))?;
        }
        let db = Connection::open(path)
            .map_err(|e| IndexError::Store(format!("{}: {e}", path.display())))?;
        SqliteIndex::with(db)
    }

    /// An index in memory (tests, benchmarks).
    pub fn in_memory() -> Result<SqliteIndex, IndexError> {
        SqliteIndex::with(Connection::open_in_memory()?)
    }

    fn with(mut db: Connection) -> Result<SqliteIndex, IndexError> {
        db.busy_timeout(Duration::from_secs(10))?;
        // WAL: readers never wait for the crawler's writes; NORMAL sync is
        // safe with WAL (a crash loses at most the last transactions).
        db.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        db.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        migrate(&mut db)?;
        Ok(SqliteIndex { db })
    }
}

/// Brings the schema to the newest version this build knows.
fn migrate(db: &mut Connection) -> Result<(), IndexError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(IndexError::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = db.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn hash_from(bytes: Vec<u8>) -> rusqlite::Result<InfoHash> {
    let h: [u8; 20] = bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "info-hash".into(),
        )
    })?;
    Ok(InfoHash(h))
}

fn hit(r: &Row<'_>) -> rusqlite::Result<Hit> {
    let v2: Option<Vec<u8>> = r.get(1)?;
    Ok(Hit {
        info_hash: hash_from(r.get(0)?)?,
        info_hash_v2: v2.and_then(|b| b.try_into().ok()),
        name: r.get(2)?,
        size: r.get::<_, i64>(3)?.max(0) as u64,
        files: r.get::<_, i64>(4)?.max(0) as u64,
        private: r.get(5)?,
        seeders: r
            .get::<_, Option<i64>>(6)?
            .map(|n| n.clamp(0, u32::MAX.into()) as u32),
        leechers: r
            .get::<_, Option<i64>>(7)?
            .map(|n| n.clamp(0, u32::MAX.into()) as u32),
        discovered: r.get(8)?,
        last_seen: r.get(9)?,
    })
}

/// A size in SQLite's signed 64-bit integer.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Index for SqliteIndex {
    fn claim(
        &mut self,
        crawler: &str,
        harvested: &[(InfoHash, Option<SocketAddr>)],
        now: UnixTime,
        window: i64,
    ) -> Result<Vec<InfoHash>, IndexError> {
        let tx = self.db.transaction()?;
        let mut chosen = BTreeSet::new();
        {
            let mut source = tx.prepare_cached(
                "INSERT INTO sources (info_hash, crawler, node, found) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (info_hash, crawler) DO NOTHING",
            )?;
            // Known by either name (BEP 52: the DHT names a hybrid by both).
            let mut seen = tx.prepare_cached(
                "UPDATE torrents SET last_seen = max(last_seen, ?2) WHERE info_hash = ?1 OR v2_name = ?1",
            )?;
            let mut claim = tx.prepare_cached(
                "INSERT INTO claims (info_hash, crawler, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (info_hash) DO UPDATE SET crawler = excluded.crawler, at = excluded.at
                 WHERE claims.at < ?4 OR claims.crawler = excluded.crawler",
            )?;
            for (h, node) in harvested {
                let hash = &h.0[..];
                source.execute(params![hash, crawler, node.map(|a| a.to_string()), now])?;
                if seen.execute(params![hash, now])? > 0 {
                    continue;
                }
                if claim.execute(params![hash, crawler, now, now - window])? > 0 {
                    chosen.insert(*h);
                }
            }
            tx.execute("DELETE FROM claims WHERE at < ?1", params![now - window])?;
            tx.execute(
                "DELETE FROM sources WHERE found < ?1
                 AND NOT EXISTS (SELECT 1 FROM torrents t
                             WHERE t.info_hash = sources.info_hash OR t.v2_name = sources.info_hash)",
                params![now - 2 * window],
            )?;
        }
        tx.commit()?;
        Ok(in_harvest_order(harvested, chosen))
    }

    fn insert(&mut self, crawler: &str, batch: &[Found]) -> Result<usize, IndexError> {
        let tx = self.db.transaction()?;
        let mut new = 0;
        {
            let mut torrent = tx.prepare_cached(
                "INSERT INTO torrents (info_hash, info_hash_v2, v2_name, name, size, file_count, private, discovered, last_seen)
                 VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (info_hash) DO NOTHING",
            )?;
            let mut existing = tx.prepare_cached(
                "UPDATE torrents SET last_seen = max(last_seen, ?2) WHERE info_hash = ?1",
            )?;
            let mut file = tx.prepare_cached(
                "INSERT OR IGNORE INTO files (torrent, idx, path, size) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut source = tx.prepare_cached(
                "INSERT INTO sources (info_hash, crawler, node, found) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (info_hash, crawler) DO NOTHING",
            )?;
            let mut unclaim = tx.prepare_cached("DELETE FROM claims WHERE info_hash = ?1")?;
            for f in batch {
                let r = &f.listing;
                let hash = &r.info_hash.0[..];
                let v2 = r.info_hash_v2.as_ref().map(|h| &h[..]);
                if torrent.execute(params![
                    hash,
                    v2,
                    r.name,
                    int(r.size),
                    int(r.file_count),
                    r.private,
                    f.at,
                    r.info_hash_v2.as_ref().map(|h| &h[..20])
                ])? > 0
                {
                    new += 1;
                    let id = tx.last_insert_rowid();
                    for (i, fr) in r.files.iter().enumerate() {
                        file.execute(params![id, i as i64, fr.path, int(fr.size)])?;
                    }
                } else {
                    existing.execute(params![hash, f.at])?;
                }
                source.execute(params![hash, crawler, f.node.map(|a| a.to_string()), f.at])?;
                unclaim.execute(params![hash])?;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    fn set_swarms(&mut self, estimates: &[SwarmEstimate]) -> Result<(), IndexError> {
        let tx = self.db.transaction()?;
        {
            let mut set = tx.prepare_cached(
                "UPDATE torrents SET seeders = ?2, leechers = ?3, swarm_at = ?4
                 WHERE (info_hash = ?1 OR v2_name = ?1) AND (swarm_at IS NULL OR swarm_at <= ?4)",
            )?;
            for e in estimates {
                set.execute(params![&e.info_hash.0[..], e.seeders, e.leechers, e.at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn search(&mut self, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let terms = fts_terms(query).map_err(IndexError::Query)?;
        // Where the newest RANKED_AT_MOST matches start, from the FTS
        // index's list of matches alone.
        let floor: i64 = self
            .db
            .prepare_cached(
                "SELECT rowid FROM torrents_fts WHERE torrents_fts MATCH ?1
                 ORDER BY rowid DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(params![terms, RANKED_AT_MOST - 1], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        // The best matches first, then the seeders break ties (names of
        // as many words tie): every candidate is ranked with its seeders.
        let sql = format!(
            "SELECT {HIT_COLUMNS} FROM (
                 SELECT rowid, rank FROM torrents_fts WHERE torrents_fts MATCH ?1 AND rowid >= ?3
             ) f JOIN torrents t ON t.id = f.rowid
             ORDER BY f.rank, coalesce(t.seeders, -1) DESC, t.id LIMIT ?2"
        );
        let mut stmt = self.db.prepare_cached(&sql)?;
        let hits = stmt
            .query_map(params![terms, int(limit as u64), floor], hit)?
            .collect::<Result<Vec<Hit>, _>>()?;
        Ok(hits)
    }

    fn get(&mut self, info_hash: &InfoHash) -> Result<Option<(Hit, Vec<ListedFile>)>, IndexError> {
        let sql = format!("SELECT {HIT_COLUMNS}, t.id FROM torrents t WHERE t.info_hash = ?1");
        let found = self
            .db
            .query_row(&sql, params![&info_hash.0[..]], |r| {
                Ok((hit(r)?, r.get::<_, i64>(10)?))
            })
            .optional()?;
        let Some((hit, id)) = found else {
            return Ok(None);
        };
        let files = files_of(&self.db, id)?;
        Ok(Some((hit, files)))
    }

    fn stats(&mut self) -> Result<IndexStats, IndexError> {
        let (torrents, bytes, files, with_swarm, newest) = self.db.query_row(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(file_count), 0),
                    count(seeders), max(discovered) FROM torrents",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )?;
        // Crawlers with a find that is indexed (by either name).
        let crawlers: i64 = self.db.query_row(
            "SELECT count(DISTINCT s.crawler) FROM sources s
             JOIN torrents t ON t.info_hash = s.info_hash OR t.v2_name = s.info_hash",
            [],
            |r| r.get(0),
        )?;
        Ok(IndexStats {
            torrents: torrents.max(0) as u64,
            files: files.max(0) as u64,
            bytes: bytes.max(0) as u64,
            crawlers: crawlers.max(0) as u64,
            with_swarm: with_swarm.max(0) as u64,
            newest,
        })
    }

    fn export(
        &mut self,
        each: &mut dyn FnMut(&Hit, &[ListedFile]) -> std::io::Result<()>,
    ) -> Result<u64, IndexError> {
        let sql = format!("SELECT {HIT_COLUMNS}, t.id FROM torrents t ORDER BY t.id");
        let mut stmt = self.db.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let hit = hit(r)?;
            let files = files_of(&self.db, r.get(10)?)?;
            each(&hit, &files).map_err(|e| IndexError::Store(format!("export: {e}")))?;
            n += 1;
        }
        Ok(n)
    }
}

fn files_of(db: &Connection, id: i64) -> Result<Vec<ListedFile>, IndexError> {
    let mut stmt =
        db.prepare_cached("SELECT path, size FROM files WHERE torrent = ?1 ORDER BY idx")?;
    let files = stmt
        .query_map(params![id], |r| {
            Ok(ListedFile {
                path: r.get(0)?,
                size: r.get::<_, i64>(1)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[test]
    fn the_store_contract() {
        contract::stores_searches_and_shows(&mut SqliteIndex::in_memory().expect("open"));
        contract::claims_share_the_work(&mut SqliteIndex::in_memory().expect("open"));
        contract::hostile_text_is_stored_as_text(&mut SqliteIndex::in_memory().expect("open"));
        contract::searches_rank_the_newest_matches(&mut SqliteIndex::in_memory().expect("open"));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("bittide-index-{}", std::process::id()));
        let path = dir.join("new.db");
        drop(SqliteIndex::open(&path).expect("create"));
        let db = Connection::open(&path).expect("open");
        db.pragma_update(None, "user_version", 99).expect("set");
        drop(db);
        assert!(matches!(
            SqliteIndex::open(&path),
            Err(IndexError::NewerSchema { found: 99, .. })
        ));
        // Reopening a current one is fine.
        let _ = std::fs::remove_dir_all(&dir);
        drop(SqliteIndex::open(&path).expect("create again"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
