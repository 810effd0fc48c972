//! `index_bench`: how fast an index takes torrents and answers searches
//! (issue 19's targets: 5,000 torrents of 20 files a second into SQLite,
//! a search's p99 under 50 ms at a million torrents). `benches/index.py`
//! runs it against SQLite and a private PostgreSQL and prints both.
//!
//! ```text
//! index_bench --index PATH|postgres://… [--torrents N] [--files F]
//!             [--batch B] [--searches S] [--skip-insert]
//! ```
//!
//! The torrents are synthetic and the same every run: names of four words
//! from a vocabulary of 4,000, one of 8 common tags (`1080p`, `x264`…:
//! each in an eighth of all names, as such words are in real ones) and a
//! number, `F` files each. Searches are, in turn, a tag alone (the worst
//! case: 125,000 matches at a million), one word, and two words. It prints
//! one JSON object.

use std::net::SocketAddr;
use std::time::Instant;

use bittide_core::metainfo::{InfoHash, ListedFile, Listing};
use bittide_index::{Found, Index, Location};

/// A small deterministic generator (xorshift64*).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "do", "fe", "gi", "ho",
        "ju", "be", "xi", "ye", "wo",
    ];
    (0..4000)
        .map(|i: usize| {
            let mut w = String::new();
            let mut n = i;
            for _ in 0..3 {
                w.push_str(SYLLABLES[n % SYLLABLES.len()]);
                n /= SYLLABLES.len();
            }
            w
        })
        .collect()
}

/// Words in an eighth of all names each.
const TAGS: [&str; 8] = [
    "1080p",
    "x264",
    "flac",
    "remastered",
    "complete",
    "hdr",
    "web",
    "pack",
];

fn torrent(g: &mut Gen, words: &[String], i: u64, files: usize) -> Found {
    let mut hash = [0u8; 20];
    hash[..8].copy_from_slice(&i.to_be_bytes());
    hash[8..16].copy_from_slice(&g.next().to_be_bytes());
    let name = format!(
        "{} {} {} {} {} {}",
        words[g.below(words.len() as u64) as usize],
        words[g.below(words.len() as u64) as usize],
        words[g.below(words.len() as u64) as usize],
        words[g.below(words.len() as u64) as usize],
        TAGS[g.below(TAGS.len() as u64) as usize],
        i
    );
    Found {
        listing: Listing {
            info_hash: InfoHash(hash),
            info_hash_v2: None,
            file_count: files as u64,
            size: files as u64 * 1_000_000,
            files: (0..files)
                .map(|f| ListedFile {
                    path: format!("{name}/disc {}/track {f:02}.flac", f / 10),
                    size: 1_000_000,
                })
                .collect(),
            name,
            private: false,
        },
        at: 1_800_000_000 + i as i64,
        node: SocketAddr::from(([127, 0, 0, 1], 6881)).into(),
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(location) = arg(&args, "--index") else {
        eprintln!("usage: index_bench --index PATH|postgres://… [--torrents N] [--files F] [--batch B] [--searches S] [--skip-insert]");
        std::process::exit(2);
    };
    let number = |name: &str, default: u64| {
        arg(&args, name).map_or(default, |v| v.parse().expect("a number"))
    };
    let torrents = number("--torrents", 100_000);
    let files = number("--files", 20) as usize;
    let batch = number("--batch", 1000).max(1);
    let searches = number("--searches", 300);
    let location = Location::parse(&location);
    let mut index: Box<dyn Index> = location.open().unwrap_or_else(|e| {
        eprintln!("{location}: {e}");
        std::process::exit(1);
    });
    let words = vocabulary();
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut insert_secs = 0.0;
    if !args.iter().any(|a| a == "--skip-insert") {
        let mut i = 0;
        while i < torrents {
            let n = batch.min(torrents - i);
            let chunk: Vec<Found> = (i..i + n)
                .map(|k| torrent(&mut g, &words, k, files))
                .collect();
            let start = Instant::now();
            index.insert("bench", &chunk).expect("insert");
            insert_secs += start.elapsed().as_secs_f64();
            i += n;
        }
    }
    let stored = index.stats().expect("stats").torrents;
    let mut q = Gen(42);
    let mut latencies: Vec<f64> = Vec::new();
    let mut common: Vec<f64> = Vec::new();
    let mut hits: Vec<usize> = Vec::new();
    for s in 0..searches {
        let w1 = &words[q.below(words.len() as u64) as usize];
        let query = match s % 3 {
            0 => TAGS[q.below(TAGS.len() as u64) as usize].to_owned(),
            1 => w1.clone(),
            _ => format!("{w1} {}", words[q.below(words.len() as u64) as usize]),
        };
        let start = Instant::now();
        let found = index.search(&query, 20).expect("search");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        latencies.push(ms);
        if s % 3 == 0 {
            common.push(ms);
        }
        hits.push(found.len());
    }
    latencies.sort_by(f64::total_cmp);
    common.sort_by(f64::total_cmp);
    let at = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let pct = |p: f64| at(&latencies, p);
    hits.sort_unstable();
    println!(
        "{{\"index\": \"{location}\", \"torrents\": {stored}, \"inserted\": {}, \"files_each\": {files}, \"insert_s\": {insert_secs:.2}, \"insert_per_s\": {:.0}, \"searches\": {searches}, \"search_p50_ms\": {:.2}, \"search_p99_ms\": {:.2}, \"search_max_ms\": {:.2}, \"common_word_p99_ms\": {:.2}, \"median_hits\": {}}}",
        if insert_secs > 0.0 { torrents } else { 0 },
        if insert_secs > 0.0 { torrents as f64 / insert_secs } else { 0.0 },
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0),
        at(&common, 0.99),
        hits.get(hits.len() / 2).copied().unwrap_or(0)
    );
}
