//! A torrent with web seeds (BEP 19) whose servers answer anything: the
//! bytes pick which outstanding run is answered and how (the right
//! bodies, bodies cut short or lengthened, flipped bytes, an HTTP error,
//! too few bodies), and when the clock moves. Oracles: no panic; the
//! torrent's and the picker's invariants after every step; every piece
//! that passes verification is the real one; a seed is never asked
//! again once dropped; and when the servers turn honest at the end, the
//! download completes unless every seed was dropped.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use crate::bencode::Value;
use crate::metainfo::Metainfo;
use crate::rng::Seed;
use crate::time::Instant;
use crate::torrent::{
    StartMode, Torrent, TorrentConfig, TorrentEvent, TorrentInfo, TorrentOutput, WebJob,
    WebSeedState,
};
use crate::webseed::{WebRequest, WebSeedError};

const PIECE: usize = 32 * 1024;
/// Files (path, length, padding): three real files, one padding file.
const FILES: [(&str, usize, bool); 4] = [
    ("a", 40_000, false),
    (".pad/25536", 25_536, true),
    ("b c", 50_000, false),
    ("d", 3_000, false),
];
const SEEDS: [&str; 2] = ["http://one/", "http://two/x"];

fn content() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (_, len, pad)) in FILES.iter().enumerate() {
        out.extend((0..*len).map(|j| if *pad { 0 } else { (i * 7 + j * 13) as u8 }));
    }
    out
}

fn torrent(data: &[u8]) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    let pieces: Vec<u8> = data
        .chunks(PIECE)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let files = FILES
        .iter()
        .map(|(path, len, pad)| {
            let mut d = vec![
                (&b"length"[..], Value::int(*len as i64)),
                (
                    b"path",
                    Value::list(
                        path.split('/')
                            .map(|c| Value::bytes(c.as_bytes()))
                            .collect(),
                    ),
                ),
            ];
            if *pad {
                d.push((b"attr", Value::bytes(b"p")));
            }
            Value::dict(d)
        })
        .collect();
    let urls = SEEDS.iter().map(|u| Value::bytes(u.as_bytes())).collect();
    Value::dict(vec![
        (
            b"info",
            Value::dict(vec![
                (b"files", Value::list(files)),
                (b"name", Value::bytes(b"t")),
                (b"piece length", Value::int(PIECE as i64)),
                (b"pieces", Value::bytes(&pieces)),
            ]),
        ),
        (b"url-list", Value::list(urls)),
    ])
    .to_vec()
}

/// The honest bodies of `requests` (`None` for a URL we never made).
fn honest(data: &[u8], requests: &[WebRequest]) -> Option<Vec<Bytes>> {
    let mut starts = Vec::new();
    let mut at = 0;
    for (path, len, _) in FILES {
        starts.push((path, at, len));
        at += len;
    }
    requests
        .iter()
        .map(|r| {
            let (_, start, len) = starts
                .iter()
                .find(|(p, _, _)| r.url.ends_with(&format!("t/{}", p.replace(' ', "%20"))))?;
            let (a, b) = (r.range.start as usize, r.range.end as usize);
            (a < b && b <= *len).then(|| Bytes::copy_from_slice(&data[start + a..start + b]))
        })
        .collect()
}

struct Run {
    t: Torrent,
    data: Vec<u8>,
    now: Instant,
    pending: Vec<(WebJob, Vec<WebRequest>)>,
    dropped: BTreeSet<String>,
}

impl Run {
    /// Drains outputs: verifications done honestly (and checked), runs
    /// queued, drops recorded.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(o) = self.t.poll_output() else {
                break;
            };
            match o {
                TorrentOutput::WebSeed { job, requests } => {
                    for d in &self.dropped {
                        assert!(
                            !requests.iter().any(|r| r.url.starts_with(d.as_str())),
                            "a dropped seed was asked again"
                        );
                    }
                    self.pending.push((job, requests));
                }
                TorrentOutput::Verify {
                    first,
                    pieces,
                    blocks,
                    ..
                } => {
                    let verdicts = crate::engine::run_verdicts(&pieces, &blocks);
                    let ok = verdicts.iter().all(|&ok| ok);
                    if ok {
                        let start = first.0 as usize * PIECE;
                        let got: Vec<u8> = blocks.concat();
                        assert_eq!(
                            got,
                            self.data[start..start + got.len()],
                            "a false piece passed"
                        );
                    }
                    self.t.handle_verified_run(self.now, first, &verdicts, ok);
                }
                TorrentOutput::Event(TorrentEvent::WebSeedDropped { url, .. }) => {
                    self.dropped.insert(url);
                }
                _ => {}
            }
        }
        self.t.check_invariants().unwrap();
        self.t.check_picker().unwrap();
    }
}

/// The fuzz target `web_seed`.
pub fn web_seed(input: &[u8]) {
    let data = content();
    let bytes = torrent(&data);
    let info = TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap());
    let t = Torrent::new(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Fresh,
        Seed::from_u64(3),
    );
    let mut run = Run {
        t,
        data,
        now: Instant::ZERO,
        pending: Vec::new(),
        dropped: BTreeSet::new(),
    };
    run.drain();
    for op in input.chunks(3).take(500) {
        let (kind, pick, arg) = (op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0));
        if kind % 8 == 7 {
            run.now += Duration::from_secs(u64::from(arg));
            run.t.handle_timeout(run.now);
            run.drain();
            continue;
        }
        if run.pending.is_empty() {
            continue;
        }
        let (job, requests) = run.pending.remove(usize::from(pick) % run.pending.len());
        let good = honest(&run.data, &requests).expect("requests within the files");
        let answer = match kind % 8 {
            0 | 1 => Ok(good),
            2 => Err(WebSeedError::Status(500 + u16::from(arg))),
            3 => Ok(good
                .into_iter()
                .map(|b| b.slice(..b.len() * usize::from(arg) / 256))
                .collect()),
            4 => Ok(good
                .into_iter()
                .map(|b| {
                    let mut v = b.to_vec();
                    if !v.is_empty() {
                        let i = usize::from(arg) % v.len();
                        v[i] ^= 1 | pick;
                    }
                    Bytes::from(v)
                })
                .collect()),
            5 => Ok(good.into_iter().skip(1).collect()),
            _ => Ok(good
                .into_iter()
                .map(|b| {
                    let mut v = b.to_vec();
                    v.extend(std::iter::repeat_n(arg, usize::from(pick)));
                    Bytes::from(v)
                })
                .collect()),
        };
        run.t.handle_web_seed(run.now, job, answer);
        run.drain();
    }
    // Honest servers from now on: the download ends unless every seed
    // was given up.
    for _ in 0..200 {
        if run.t.is_finished() {
            break;
        }
        while let Some((job, requests)) = run.pending.pop() {
            let good = honest(&run.data, &requests).expect("requests within the files");
            run.t.handle_web_seed(run.now, job, Ok(good));
            run.drain();
        }
        run.now += Duration::from_secs(300);
        run.t.handle_timeout(run.now);
        run.drain();
    }
    let all_dropped = run
        .t
        .web_seeds()
        .iter()
        .all(|s| s.state == WebSeedState::Dropped);
    assert!(
        run.t.is_finished() || all_dropped,
        "stuck with a usable web seed"
    );
}
