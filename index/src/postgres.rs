//! The shared index: one PostgreSQL database that any number of crawlers,
//! on any number of machines, write into together (`--index
//! postgres://…`). Names are searched through a word index of our own
//! (`torrent_words`: one row per word of a name, keyed by word then
//! torrent), so the newest matches of a search are read from the index in
//! order and only they are ranked ([`RANKED_AT_MOST`]).
//!
//! Several writers at once are the normal case here, so every write is
//! an upsert and every batch is sorted by info-hash before it takes row
//! locks: two crawlers storing or claiming the same torrents mostly wait
//! for each other, never duplicate, and a batch PostgreSQL aborts (a
//! deadlock it detected) stays with the indexer for the next flush.
//! The schema is versioned in `bittide_schema`; `docs/index.md` describes
//! it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Transaction};

use bittide_core::metainfo::InfoHash;

use crate::query::{name_words, words};
use crate::{
    in_harvest_order, Found, Hit, Index, IndexError, IndexStats, ListedFile, Listing,
    SwarmEstimate, UnixTime, RANKED_AT_MOST,
};

/// Schema version `i + 1` is made by `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE torrents (
    id BIGSERIAL PRIMARY KEY,
    info_hash BYTEA NOT NULL UNIQUE,
    info_hash_v2 BYTEA,
    v2_name BYTEA,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    file_count BIGINT NOT NULL,
    private BOOLEAN NOT NULL,
    discovered BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    seeders INTEGER,
    leechers INTEGER,
    swarm_at BIGINT,
    search TSVECTOR GENERATED ALWAYS AS
        (to_tsvector('simple', regexp_replace(name, '[^[:alnum:]]+', ' ', 'g'))) STORED
);
CREATE INDEX torrents_search ON torrents USING GIN (search);
CREATE INDEX torrents_discovered ON torrents (discovered);
CREATE INDEX torrents_v2_name ON torrents (v2_name);
CREATE TABLE files (
    torrent BIGINT NOT NULL REFERENCES torrents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (torrent, idx)
);
CREATE TABLE sources (
    info_hash BYTEA NOT NULL,
    crawler TEXT NOT NULL,
    node TEXT,
    found BIGINT NOT NULL,
    PRIMARY KEY (info_hash, crawler)
);
CREATE INDEX sources_found ON sources (found);
CREATE TABLE claims (
    info_hash BYTEA PRIMARY KEY,
    crawler TEXT NOT NULL,
    at BIGINT NOT NULL
);
",
    "
CREATE TABLE torrent_words (
    word TEXT NOT NULL,
    torrent BIGINT NOT NULL,
    PRIMARY KEY (word, torrent)
);
DROP INDEX torrents_search;
",
];

/// The version whose migration made `torrent_words`; moving past it fills
/// the table from the names already stored.
const WORDS_VERSION: usize = 2;

/// The columns a [`Hit`] is read from, in [`hit`]'s order.
const HIT_COLUMNS: &str = "t.info_hash, t.info_hash_v2, t.name, t.size, t.file_count, t.private, \
     t.seeders, t.leechers, t.discovered, t.last_seen";

/// See the module documentation.
pub struct PostgresIndex {
    db: Client,
}

impl std::fmt::Debug for PostgresIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresIndex")
    }
}

impl From<postgres::Error> for IndexError {
    fn from(e: postgres::Error) -> IndexError {
        // The server's own words (its Display says only "db error").
        IndexError::Store(match e.as_db_error() {
            Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
            // "error connecting to server", and why (its sources).
            None => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text = format!("{text}: {c}");
                    cause = c.source();
                }
                text
            }
        })
    }
}

impl PostgresIndex {
    /// Connects to `url` (`postgres://user@host:port/db`, no TLS) and
    /// migrates the schema.
    pub fn connect(url: &str) -> Result<PostgresIndex, IndexError> {
        let mut config: postgres::Config = url.parse()?;
        // An unreachable server is an error in seconds, not minutes (the
        // URL's own `connect_timeout` wins).
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut db = config.connect(NoTls)?;
        migrate(&mut db)?;
        Ok(PostgresIndex { db })
    }
}

/// How long a connection may take to open unless the URL says.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Brings the schema to the newest version this build knows; several
/// crawlers starting at once take turns (an advisory lock).
fn migrate(db: &mut Client) -> Result<(), IndexError> {
    let known = MIGRATIONS.len() as i64;
    let mut tx = db.transaction()?;
    // The same key in every bittide: "bittide" in ASCII.
    tx.execute("SELECT pg_advisory_xact_lock(6280203621684101221)", &[])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS bittide_schema (version BIGINT NOT NULL)")?;
    let found: i64 = tx
        .query_opt("SELECT version FROM bittide_schema", &[])?
        .map_or(0, |r| r.get(0));
    if found > known {
        return Err(IndexError::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        if i + 1 == WORDS_VERSION {
            index_stored_names(&mut tx)?;
        }
    }
    tx.execute("DELETE FROM bittide_schema", &[])?;
    tx.execute(
        "INSERT INTO bittide_schema (version) VALUES ($1)",
        &[&known.max(found)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Fills `torrent_words` from every name stored before it existed, a page
/// at a time.
fn index_stored_names(tx: &mut Transaction<'_>) -> Result<(), IndexError> {
    let mut after = 0i64;
    loop {
        let rows = tx.query(
            "SELECT id, name FROM torrents WHERE id > $1 ORDER BY id LIMIT 10000",
            &[&after],
        )?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        let named: Vec<(i64, &str)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        insert_words(tx, &named)?;
    }
}

/// Indexes the words of the names of torrents just stored (`id`, name).
fn insert_words(tx: &mut Transaction<'_>, named: &[(i64, &str)]) -> Result<(), IndexError> {
    let (mut words, mut ids) = (Vec::new(), Vec::new());
    for (id, name) in named {
        for word in name_words(name) {
            words.push(word);
            ids.push(*id);
        }
    }
    tx.execute(
        "INSERT INTO torrent_words (word, torrent) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT DO NOTHING",
        &[&words, &ids],
    )?;
    Ok(())
}

fn hit(r: &Row) -> Hit {
    let hash: Vec<u8> = r.get(0);
    let v2: Option<Vec<u8>> = r.get(1);
    let mut h = [0u8; 20];
    if hash.len() == 20 {
        h.copy_from_slice(&hash);
    }
    Hit {
        info_hash: InfoHash(h),
        info_hash_v2: v2.and_then(|b| b.try_into().ok()),
        name: r.get(2),
        size: r.get::<_, i64>(3).max(0) as u64,
        files: r.get::<_, i64>(4).max(0) as u64,
        private: r.get(5),
        seeders: r.get::<_, Option<i32>>(6).map(|n| n.max(0) as u32),
        leechers: r.get::<_, Option<i32>>(7).map(|n| n.max(0) as u32),
        discovered: r.get(8),
        last_seen: r.get(9),
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Stores a batch in `tx` in five statements whatever its size (arrays
/// unnested server-side); returns how many were new.
fn insert_batch(
    tx: &mut Transaction<'_>,
    crawler: &str,
    batch: &[&Found],
) -> Result<usize, IndexError> {
    let listings = || batch.iter().map(|f| &f.listing);
    let hashes: Vec<&[u8]> = listings().map(|l| &l.info_hash.0[..]).collect();
    let v2: Vec<Option<&[u8]>> = listings()
        .map(|l| l.info_hash_v2.as_ref().map(|h| &h[..]))
        .collect();
    let v2_names: Vec<Option<&[u8]>> = listings()
        .map(|l| l.info_hash_v2.as_ref().map(|h| &h[..20]))
        .collect();
    let names: Vec<&str> = listings().map(|l| l.name.as_str()).collect();
    let sizes: Vec<i64> = listings().map(|l| int(l.size)).collect();
    let counts: Vec<i64> = listings().map(|l| int(l.file_count)).collect();
    let private: Vec<bool> = listings().map(|l| l.private).collect();
    let at: Vec<i64> = batch.iter().map(|f| f.at).collect();
    let new: Vec<(i64, Vec<u8>)> = tx
        .query(
            "INSERT INTO torrents (info_hash, info_hash_v2, v2_name, name, size, file_count, private, discovered, last_seen)
             SELECT h, v, vn, n, s, c, p, a, a
             FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bool[], $8::bigint[])
                  AS x(h, v, vn, n, s, c, p, a)
             ORDER BY h
             ON CONFLICT (info_hash) DO NOTHING RETURNING id, info_hash",
            &[&hashes, &v2, &v2_names, &names, &sizes, &counts, &private, &at],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let by_hash: BTreeMap<&[u8], &Listing> = listings().map(|l| (&l.info_hash.0[..], l)).collect();
    let stored: Vec<(i64, &Listing)> = new
        .iter()
        .filter_map(|(id, hash)| Some((*id, *by_hash.get(&hash[..])?)))
        .collect();
    let (mut ids, mut idx, mut paths, mut file_sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, listing) in &stored {
        for (i, file) in listing.files.iter().enumerate() {
            ids.push(*id);
            idx.push(i as i32);
            paths.push(file.path.as_str());
            file_sizes.push(int(file.size));
        }
    }
    tx.execute(
        "INSERT INTO files (torrent, idx, path, size)
         SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[])",
        &[&ids, &idx, &paths, &file_sizes],
    )?;
    let named: Vec<(i64, &str)> = stored
        .iter()
        .map(|(id, l)| (*id, l.name.as_str()))
        .collect();
    insert_words(tx, &named)?;
    // Those already there were seen again.
    tx.execute(
        "UPDATE torrents SET last_seen = GREATEST(last_seen, x.a)
         FROM unnest($1::bytea[], $2::bigint[]) AS x(h, a)
         WHERE torrents.info_hash = x.h AND torrents.last_seen < x.a",
        &[&hashes, &at],
    )?;
    let nodes: Vec<Option<String>> = batch
        .iter()
        .map(|f| f.node.map(|a| a.to_string()))
        .collect();
    tx.execute(
        "INSERT INTO sources (info_hash, crawler, node, found)
         SELECT h, $2, n, a FROM unnest($1::bytea[], $3::text[], $4::bigint[]) AS x(h, n, a) ORDER BY h
         ON CONFLICT (info_hash, crawler) DO NOTHING",
        &[&hashes, &crawler, &nodes, &at],
    )?;
    tx.execute("DELETE FROM claims WHERE info_hash = ANY($1)", &[&hashes])?;
    Ok(new.len())
}

impl Index for PostgresIndex {
    fn claim(
        &mut self,
        crawler: &str,
        harvested: &[(InfoHash, Option<SocketAddr>)],
        now: UnixTime,
        window: i64,
    ) -> Result<Vec<InfoHash>, IndexError> {
        let mut sorted: Vec<(InfoHash, Option<SocketAddr>)> = harvested.to_vec();
        sorted.sort_by_key(|(h, _)| *h);
        sorted.dedup_by_key(|(h, _)| *h);
        let bytes: Vec<&[u8]> = sorted.iter().map(|(h, _)| &h.0[..]).collect();
        let nodes: Vec<Option<String>> = sorted
            .iter()
            .map(|(_, n)| n.map(|a| a.to_string()))
            .collect();
        let mut tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO sources (info_hash, crawler, node, found)
             SELECT h, $2, n, $3 FROM unnest($1::bytea[], $4::text[]) AS s(h, n) ORDER BY h
             ON CONFLICT (info_hash, crawler) DO NOTHING",
            &[&bytes, &crawler, &now, &nodes],
        )?;
        // Claim first, then drop what is indexed: the second statement's
        // snapshot is taken after the first waited for any crawler storing
        // the same torrents, so a torrent stored meanwhile is seen (READ
        // COMMITTED) and never fetched twice.
        let claimed: BTreeSet<Vec<u8>> = tx
            .query(
                "INSERT INTO claims (info_hash, crawler, at)
                 SELECT h, $2, $3 FROM unnest($1::bytea[]) AS h ORDER BY h
                 ON CONFLICT (info_hash) DO UPDATE SET crawler = EXCLUDED.crawler, at = EXCLUDED.at
                 WHERE claims.at < $4 OR claims.crawler = EXCLUDED.crawler
                 RETURNING info_hash",
                &[&bytes, &crawler, &now, &(now - window)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Known by either name (BEP 52: the DHT names a hybrid by both).
        let known: Vec<Vec<u8>> = tx
            .query(
                "UPDATE torrents SET last_seen = GREATEST(last_seen, $2)
                 WHERE id IN (SELECT id FROM torrents WHERE info_hash = ANY($1) OR v2_name = ANY($1)
                              ORDER BY id FOR UPDATE)
                 RETURNING info_hash, v2_name",
                &[&bytes, &now],
            )?
            .iter()
            .flat_map(|r| [Some(r.get::<_, Vec<u8>>(0)), r.get::<_, Option<Vec<u8>>>(1)])
            .flatten()
            .collect();
        tx.execute("DELETE FROM claims WHERE info_hash = ANY($1)", &[&known])?;
        tx.execute("DELETE FROM claims WHERE at < $1", &[&(now - window)])?;
        tx.execute(
            "DELETE FROM sources WHERE found < $1
             AND NOT EXISTS (SELECT 1 FROM torrents t
                             WHERE t.info_hash = sources.info_hash OR t.v2_name = sources.info_hash)",
            &[&(now - 2 * window)],
        )?;
        tx.commit()?;
        let known: BTreeSet<Vec<u8>> = known.into_iter().collect();
        let chosen = claimed
            .difference(&known)
            .filter_map(|c| c.as_slice().try_into().ok().map(InfoHash))
            .collect();
        Ok(in_harvest_order(harvested, chosen))
    }

    fn insert(&mut self, crawler: &str, batch: &[Found]) -> Result<usize, IndexError> {
        // Sorted (one lock order for every writer) and each torrent once
        // (a statement may not touch a row twice).
        let mut order: Vec<&Found> = batch.iter().collect();
        order.sort_by_key(|f| f.listing.info_hash);
        order.dedup_by_key(|f| f.listing.info_hash);
        let mut tx = self.db.transaction()?;
        let new = insert_batch(&mut tx, crawler, &order)?;
        tx.commit()?;
        Ok(new)
    }

    fn set_swarms(&mut self, estimates: &[SwarmEstimate]) -> Result<(), IndexError> {
        let mut order: Vec<&SwarmEstimate> = estimates.iter().collect();
        order.sort_by_key(|e| e.info_hash);
        let mut tx = self.db.transaction()?;
        for e in order {
            tx.execute(
                "UPDATE torrents SET seeders = $2, leechers = $3, swarm_at = $4
                 WHERE (info_hash = $1 OR v2_name = $1) AND (swarm_at IS NULL OR swarm_at <= $4)",
                &[
                    &&e.info_hash.0[..],
                    &count(e.seeders),
                    &count(e.leechers),
                    &e.at,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn search(&mut self, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let mut words = words(query).map_err(IndexError::Query)?;
        words.sort_unstable();
        words.dedup();
        // The newest matches, straight from the word index: one join per
        // further word, which PostgreSQL orders by its statistics (from the
        // rarest word, or a merge of two long lists read newest first).
        // Only the placeholders' numbers are spliced into the SQL.
        let joins: String = (1..words.len())
            .map(|i| {
                format!(
                    " JOIN torrent_words w{i} ON w{i}.torrent = w0.torrent AND w{i}.word = ${}",
                    i + 1
                )
            })
            .collect();
        let (ranked, text, most) = (words.len() + 1, words.len() + 2, words.len() + 3);
        let sql = format!(
            "WITH newest AS (
                 SELECT w0.torrent FROM torrent_words w0{joins}
                 WHERE w0.word = $1 ORDER BY w0.torrent DESC LIMIT ${ranked}
             )
             SELECT {HIT_COLUMNS} FROM newest JOIN torrents t ON t.id = newest.torrent,
                  plainto_tsquery('simple', ${text}) q
             ORDER BY ts_rank(t.search, q) DESC, coalesce(t.seeders, -1) DESC, t.id
             LIMIT ${most}"
        );
        let joined = words.join(" ");
        let most_hits = int(limit as u64);
        let mut params: Vec<&(dyn ToSql + Sync)> = words.iter().map(|w| w as _).collect();
        params.extend::<[&(dyn ToSql + Sync); 3]>([&RANKED_AT_MOST, &joined, &most_hits]);
        let rows = self.db.query(&sql, &params)?;
        Ok(rows.iter().map(hit).collect())
    }

    fn get(&mut self, info_hash: &InfoHash) -> Result<Option<(Hit, Vec<ListedFile>)>, IndexError> {
        let sql = format!("SELECT {HIT_COLUMNS}, t.id FROM torrents t WHERE t.info_hash = $1");
        let Some(row) = self.db.query_opt(&sql, &[&&info_hash.0[..]])? else {
            return Ok(None);
        };
        let files = files_of(&mut self.db, row.get(10))?;
        Ok(Some((hit(&row), files)))
    }

    fn stats(&mut self) -> Result<IndexStats, IndexError> {
        let r = self.db.query_one(
            "SELECT count(*), coalesce(sum(size), 0)::bigint, coalesce(sum(file_count), 0)::bigint,
                    count(seeders), max(discovered) FROM torrents",
            &[],
        )?;
        let crawlers: i64 = self
            .db
            .query_one(
                "SELECT count(DISTINCT s.crawler) FROM sources s JOIN torrents t ON t.info_hash = s.info_hash OR t.v2_name = s.info_hash",
                &[],
            )?
            .get(0);
        Ok(IndexStats {
            torrents: r.get::<_, i64>(0).max(0) as u64,
            bytes: r.get::<_, i64>(1).max(0) as u64,
            files: r.get::<_, i64>(2).max(0) as u64,
            with_swarm: r.get::<_, i64>(3).max(0) as u64,
            newest: r.get(4),
            crawlers: crawlers.max(0) as u64,
        })
    }

    fn export(
        &mut self,
        each: &mut dyn FnMut(&Hit, &[ListedFile]) -> std::io::Result<()>,
    ) -> Result<u64, IndexError> {
        // Pages by id, so an export of millions never holds them all.
        let sql = format!(
            "SELECT {HIT_COLUMNS}, t.id FROM torrents t WHERE t.id > $1 ORDER BY t.id LIMIT 1000"
        );
        let mut after = 0i64;
        let mut n = 0;
        loop {
            let rows = self.db.query(&sql, &[&after])?;
            if rows.is_empty() {
                return Ok(n);
            }
            for row in &rows {
                after = row.get(10);
                let files = files_of(&mut self.db, after)?;
                each(&hit(row), &files).map_err(|e| IndexError::Store(format!("export: {e}")))?;
                n += 1;
            }
        }
    }
}

fn files_of(db: &mut Client, id: i64) -> Result<Vec<ListedFile>, IndexError> {
    let rows = db.query(
        "SELECT path, size FROM files WHERE torrent = $1 ORDER BY idx",
        &[&id],
    )?;
    Ok(rows
        .iter()
        .map(|r| ListedFile {
            path: r.get(0),
            size: r.get::<_, i64>(1).max(0) as u64,
        })
        .collect())
}
