//! Web seeds (BEP 19) in a torrent, with a web server in the test: a
//! download from web seeds alone, by the URLs BEP 19 gives; a seed that
//! lies is dropped at its first bad piece; one that keeps failing backs
//! off and is dropped; one that is down does not hold a peer's download.

use super::*;
use crate::webseed::{WebRequest, WebSeedError};

/// Each file's URL and its bytes in the torrent.
type Files = Vec<(&'static str, std::ops::Range<usize>)>;

/// A folder `d` of three files, one with a name to percent-encode.
fn folder() -> (TorrentInfo, Vec<u8>, Files) {
    let sizes = [70_000usize, 5_000, 200_000];
    let names = ["a b.bin", "c%.txt", "z.bin"];
    let mut b = TorrentBuilder::multi_file("d");
    b.add_file(vec!["sub".into(), names[0].into()], sizes[0] as u64);
    b.add_file(vec![names[1].into()], sizes[1] as u64);
    b.add_file(vec![names[2].into()], sizes[2] as u64);
    b.set_piece_length(32_768);
    b.add_web_seed("http://ws/pub".into());
    let data = content(sizes.iter().sum());
    let mut h = PieceHasher::new(32_768);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let info = TorrentInfo::from_metainfo(&crate::metainfo::Metainfo::from_bytes(&bytes).unwrap());
    let urls = [
        "http://ws/pub/d/sub/a%20b.bin",
        "http://ws/pub/d/c%25.txt",
        "http://ws/pub/d/z.bin",
    ];
    let mut files = Vec::new();
    let mut at = 0;
    for (url, size) in urls.into_iter().zip(sizes) {
        files.push((url, at..at + size));
        at += size;
    }
    (info, data, files)
}

/// The web server: what it answers for a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Honest,
    /// Flips a byte at this torrent offset.
    Corrupts(usize),
    Status(u16),
}

struct Web {
    t: Torrent,
    data: Vec<u8>,
    files: Files,
    server: Server,
    asked: Vec<WebRequest>,
    events: Vec<TorrentEvent>,
    written: Vec<u8>,
}

impl Web {
    fn new(
        info: TorrentInfo,
        data: Vec<u8>,
        files: Vec<(&'static str, std::ops::Range<usize>)>,
    ) -> Web {
        let t = Torrent::new(
            Instant::ZERO,
            info,
            TorrentConfig::default(),
            StartMode::Fresh,
            Seed::from_u64(5),
        );
        let written = vec![0; data.len()];
        Web {
            t,
            data,
            files,
            server: Server::Honest,
            asked: Vec::new(),
            events: Vec::new(),
            written,
        }
    }

    fn answer(&self, requests: &[WebRequest]) -> Result<Vec<Bytes>, WebSeedError> {
        if let Server::Status(s) = self.server {
            return Err(WebSeedError::Status(s));
        }
        let mut bodies = Vec::new();
        for r in requests {
            let (_, span) = self
                .files
                .iter()
                .find(|(u, _)| *u == r.url)
                .expect("a known URL");
            let start = span.start + r.range.start as usize;
            let end = span.start + r.range.end as usize;
            assert!(end <= span.end, "range beyond the file: {r:?}");
            let mut body = self.data[start..end].to_vec();
            if let Server::Corrupts(at) = self.server {
                if (start..end).contains(&at) {
                    body[at - start] ^= 1;
                }
            }
            bodies.push(Bytes::from(body));
        }
        Ok(bodies)
    }

    /// Runs until quiet at `now`, answering web seed runs after each pass
    /// (so several can be in flight).
    fn run(&mut self, now: Instant) {
        for _ in 0..10_000 {
            let mut runs = Vec::new();
            while let Some(o) = self.t.poll_output() {
                match o {
                    TorrentOutput::WebSeed { job, requests } => runs.push((job, requests)),
                    TorrentOutput::Verify {
                        first,
                        pieces,
                        blocks,
                        slices,
                    } => verify_on(
                        &mut self.t,
                        &mut self.written,
                        now,
                        first,
                        &pieces,
                        &blocks,
                        &slices,
                    ),
                    TorrentOutput::Event(e) => self.events.push(e),
                    _ => {}
                }
            }
            if runs.is_empty() {
                return;
            }
            for (job, requests) in runs {
                let answer = self.answer(&requests);
                self.asked.extend(requests);
                self.t.handle_web_seed(now, job, answer);
            }
        }
        panic!("no quiet");
    }

    fn dropped(&self) -> Option<&WebSeedError> {
        self.events.iter().find_map(|e| match e {
            TorrentEvent::WebSeedDropped { error, .. } => Some(error),
            _ => None,
        })
    }
}

#[test]
fn a_web_seed_alone_downloads_a_folder_by_bep_19_urls() {
    let (info, data, files) = folder();
    let mut w = Web::new(info, data.clone(), files);
    w.run(Instant::ZERO);
    assert_eq!(w.t.state(), TorrentState::Seeding);
    assert_eq!(w.written, data, "byte for byte");
    assert!(w.events.contains(&TorrentEvent::Finished));
    // A seed's first run is 256 KiB (three requests, one per file it
    // touches); the next, twice that at most, takes the rest of z.bin.
    let ranges: Vec<_> = w.asked.iter().map(|r| r.range.clone()).collect();
    assert_eq!(ranges, [0..70_000, 0..5_000, 0..187_144, 187_144..200_000]);
    let seeds = w.t.web_seeds();
    assert_eq!(seeds[0].downloaded, data.len() as u64);
    assert_eq!(seeds[0].state, WebSeedState::Idle);
}

#[test]
fn a_web_seed_that_sends_bad_data_is_dropped_and_asked_nothing_more() {
    let (info, data, files) = folder();
    let mut w = Web::new(info, data, files);
    w.server = Server::Corrupts(100_000);
    w.run(Instant::ZERO);
    assert_eq!(
        w.dropped(),
        Some(&WebSeedError::BadData { piece: 3 }),
        "{:?}",
        w.events
    );
    let asked = w.asked.len();
    w.t.handle_timeout(Instant::ZERO + Duration::from_secs(600));
    w.run(Instant::ZERO + Duration::from_secs(600));
    assert_eq!(w.asked.len(), asked, "a dropped seed is not asked again");
    assert_eq!(w.t.web_seeds()[0].state, WebSeedState::Dropped);
    // Every other piece is in; piece 3 waits for another source.
    assert_eq!(w.t.have().count(), w.t.info().layout.piece_count() - 1);
}

#[test]
fn a_failing_web_seed_backs_off_then_is_dropped() {
    let (info, data, files) = folder();
    let mut w = Web::new(info, data, files);
    w.server = Server::Status(503);
    let mut now = Instant::ZERO;
    let mut waits = Vec::new();
    w.run(now);
    while w.dropped().is_none() {
        let next = w.t.poll_timeout().expect("a retry is due");
        waits.push((next - now).as_secs());
        now = next;
        w.t.handle_timeout(now);
        w.run(now);
        assert!(waits.len() < 10);
    }
    assert_eq!(
        waits,
        [5, 10, 20, 40],
        "doubling back-off, dropped at the fifth failure"
    );
    assert_eq!(w.dropped(), Some(&WebSeedError::Status(503)));
    assert!(w.t.picker.check_invariants().is_ok());
    assert_eq!(w.t.outstanding_bytes(), 0, "the runs were given back");
}

#[test]
fn web_seeds_are_only_http_each_once_and_not_while_checking() {
    let (info, data, files) = folder();
    let mut w = Web::new(info, data, files);
    w.t.add_web_seeds(
        Instant::ZERO,
        [
            "ftp://x/".to_string(),
            "http://ws/pub".into(),
            "HTTPS://other/".into(),
        ],
    );
    let urls: Vec<String> = w.t.web_seeds().into_iter().map(|s| s.url).collect();
    assert_eq!(urls, ["http://ws/pub", "HTTPS://other/"]);
    let (info, _, _) = folder();
    let mut t = Torrent::new(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Check,
        Seed::from_u64(5),
    );
    while let Some(o) = t.poll_output() {
        assert!(
            !matches!(o, TorrentOutput::WebSeed { .. }),
            "asked while checking"
        );
    }
    let off = TorrentConfig {
        web_seeds: false,
        ..TorrentConfig::default()
    };
    let (info, _, _) = folder();
    let mut t = Torrent::new(
        Instant::ZERO,
        info,
        off,
        StartMode::Fresh,
        Seed::from_u64(5),
    );
    while let Some(o) = t.poll_output() {
        assert!(
            !matches!(o, TorrentOutput::WebSeed { .. }),
            "asked with web seeds off"
        );
    }
}

#[test]
fn a_retry_stays_due_whatever_the_torrent_hears_first() {
    let (info, data, files) = folder();
    let mut w = Web::new(info, data, files);
    w.server = Server::Status(503);
    w.run(Instant::ZERO);
    let retry = w.t.poll_timeout().expect("a retry");
    // The back-off is over, and the first the torrent hears of the time
    // is something else (a send reported on some connection).
    let later = retry + Duration::from_secs(1);
    w.t.handle_sent(later, ConnId::new(77), 10);
    assert!(
        w.t.poll_timeout().is_some_and(|t| t <= later),
        "the retry is still due"
    );
    w.server = Server::Honest;
    let asked = w.asked.len();
    w.t.handle_timeout(later);
    w.run(later);
    assert!(w.asked.len() > asked, "the seed was asked again");
    // Seen once, it is due no more (no busy loop).
    assert!(w.t.poll_timeout().is_none_or(|t| t > later));
}
