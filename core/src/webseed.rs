//! BEP 19 web seeds ("GetRight style"): plain HTTP(S) servers holding the
//! torrent's files, listed in the .torrent's `url-list` or a magnet's
//! `ws=`.
//!
//! This module is the codec side: where each file lives under a seed's
//! URL ([`WebPaths`]), which HTTP range requests fetch a run of the
//! torrent's bytes ([`plan`]), and how their bodies become that run again
//! ([`assemble`]). The torrent decides what to fetch (`torrent/web_seeds.rs`);
//! the driver makes the requests.
//!
//! URLs (BEP 19, "The url-list key"): for a single-file torrent the URL
//! names the file itself, unless it ends in `/`, when the torrent's name
//! is appended; for a multi-file torrent the URL names a folder holding
//! the torrent's top folder: `url/name/path/to/file`, each component
//! percent-encoded. Padding files (BEP 47) are never asked for: they are
//! zeros by definition and mirrors do not hold them.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::metainfo::{FileLayout, Info};
use crate::tracker::http::percent_encode;

/// Each file's place under a web seed's URL, percent-encoded once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebPaths {
    single_file: bool,
    /// Per file: `name` (single-file) or `name/path/…` (multi-file),
    /// every component percent-encoded.
    paths: Vec<String>,
}

impl WebPaths {
    /// The paths of `info`'s files.
    pub fn new(info: &Info<'_>) -> WebPaths {
        let mut name = String::new();
        percent_encode(&mut name, info.name());
        if info.is_single_file() {
            return WebPaths {
                single_file: true,
                paths: vec![name],
            };
        }
        let paths = info
            .files()
            .iter()
            .map(|f| {
                let mut p = name.clone();
                for c in &f.path {
                    p.push('/');
                    percent_encode(&mut p, c);
                }
                p
            })
            .collect();
        WebPaths {
            single_file: false,
            paths,
        }
    }

    /// The URL of `file` on the web seed at `base` (BEP 19).
    pub fn url(&self, base: &str, file: usize) -> Option<String> {
        let path = self.paths.get(file)?;
        if self.single_file && !base.ends_with('/') {
            return Some(base.to_owned());
        }
        let mut url = String::with_capacity(base.len() + 1 + path.len());
        url.push_str(base);
        if !url.ends_with('/') {
            url.push('/');
        }
        url.push_str(path);
        Some(url)
    }
}

/// One HTTP GET with `Range: bytes=start-(end-1)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRequest {
    /// The file's URL.
    pub url: String,
    /// The bytes of the file wanted.
    pub range: Range<u64>,
}

/// One part of a run of the torrent's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunPart {
    /// Bytes a request fetches.
    Fetch(WebRequest),
    /// Padding (BEP 47): this many zero bytes, not fetched.
    Zeros(u64),
}

/// The requests that fetch the torrent bytes `run` from the web seed at
/// `base`: one per file the run touches, padding left out. `None` if the
/// run is outside the torrent or a file has no path.
pub fn plan(
    layout: &FileLayout,
    paths: &WebPaths,
    base: &str,
    run: Range<u64>,
) -> Option<Vec<RunPart>> {
    if run.start >= run.end || run.end > layout.total_length() {
        return None;
    }
    let mut parts = Vec::new();
    for file in 0..layout.file_count() {
        let span = layout.file_range(file)?;
        let start = span.start.max(run.start);
        let end = span.end.min(run.end);
        if start >= end {
            continue;
        }
        if layout.is_padding(file) {
            parts.push(RunPart::Zeros(end - start));
        } else {
            parts.push(RunPart::Fetch(WebRequest {
                url: paths.url(base, file)?,
                range: start - span.start..end - span.start,
            }));
        }
    }
    Some(parts)
}

/// Why a web seed's answer was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebSeedError {
    /// The server answered with this HTTP status (not 206, nor 200 for a
    /// request from the file's first byte).
    Status(u16),
    /// No answer: connection refused, reset, timed out (the text says).
    Unreachable(String),
    /// The server answered a range request with the whole file from
    /// another offset (it ignores `Range`).
    IgnoresRange,
    /// The body was shorter than the range asked for.
    ShortBody {
        /// Bytes asked for.
        expected: u64,
        /// Bytes that came.
        got: u64,
    },
    /// Fewer bodies than requests came back.
    MissingBody,
    /// The data failed a piece's hash check.
    BadData {
        /// The piece.
        piece: u32,
    },
}

impl fmt::Display for WebSeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebSeedError::Status(s) => write!(f, "HTTP status {s}"),
            WebSeedError::Unreachable(why) => write!(f, "unreachable: {why}"),
            WebSeedError::IgnoresRange => f.write_str("the server ignores range requests"),
            WebSeedError::ShortBody { expected, got } => {
                write!(f, "short answer: {got} of {expected} bytes")
            }
            WebSeedError::MissingBody => f.write_str("an answer is missing"),
            WebSeedError::BadData { piece } => {
                write!(f, "sent data that failed the hash check of piece {piece}")
            }
        }
    }
}

impl std::error::Error for WebSeedError {}

/// The run's bytes from the bodies of its [`RunPart::Fetch`] parts, in
/// order, padding put back as zeros. One body for the whole run is used
/// as it is (no copy).
pub fn assemble(parts: &[RunPart], bodies: Vec<Bytes>) -> Result<Bytes, WebSeedError> {
    let fetches = parts
        .iter()
        .filter(|p| matches!(p, RunPart::Fetch(_)))
        .count();
    if bodies.len() < fetches {
        return Err(WebSeedError::MissingBody);
    }
    let mut bodies = bodies.into_iter();
    let mut out = BytesMut::new();
    for part in parts {
        match part {
            RunPart::Zeros(n) => out.resize(out.len() + *n as usize, 0),
            RunPart::Fetch(r) => {
                let body = bodies.next().ok_or(WebSeedError::MissingBody)?;
                let expected = r.range.end - r.range.start;
                if (body.len() as u64) < expected {
                    return Err(WebSeedError::ShortBody {
                        expected,
                        got: body.len() as u64,
                    });
                }
                let body = body.slice(..expected as usize);
                if parts.len() == 1 {
                    return Ok(body);
                }
                out.extend_from_slice(&body);
            }
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Value;
    use crate::metainfo::Metainfo;

    /// A .torrent of `files` (path components, length, padding) named
    /// `name`; single-file when `files` is one entry with no path.
    fn torrent(name: &[u8], files: &[(&[&[u8]], i64, bool)]) -> Vec<u8> {
        let total: i64 = files.iter().map(|f| f.1).sum();
        let pieces = vec![0u8; 20 * (total as usize).div_ceil(16384)];
        let mut info = vec![
            (&b"name"[..], Value::bytes(name)),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&pieces)),
        ];
        if files.len() == 1 && files[0].0.is_empty() {
            info.push((b"length", Value::int(files[0].1)));
        } else {
            let list = files
                .iter()
                .map(|(path, length, pad)| {
                    let mut d = vec![
                        (&b"length"[..], Value::int(*length)),
                        (
                            b"path",
                            Value::list(path.iter().map(|c| Value::bytes(c)).collect()),
                        ),
                    ];
                    if *pad {
                        d.push((b"attr", Value::bytes(b"p")));
                    }
                    Value::dict(d)
                })
                .collect();
            info.push((b"files", Value::list(list)));
        }
        Value::dict(vec![(b"info", Value::dict(info))]).to_vec()
    }

    fn multi() -> Vec<u8> {
        torrent(
            b"My Files",
            &[
                (&[b"a b", b"x%y.txt"], 10_000, false),
                (&[b"\xc3\xa9t\xc3\xa9.bin"], 30_000, false),
            ],
        )
    }

    #[test]
    fn multi_file_urls_append_name_and_path_percent_encoded() {
        let bytes = multi();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let paths = WebPaths::new(&m.info);
        assert_eq!(
            paths.url("http://127.0.0.1:8/pub", 0).unwrap(),
            "http://127.0.0.1:8/pub/My%20Files/a%20b/x%25y.txt"
        );
        assert_eq!(
            paths.url("http://127.0.0.1:8/pub/", 1).unwrap(),
            "http://127.0.0.1:8/pub/My%20Files/%C3%A9t%C3%A9.bin"
        );
        assert_eq!(paths.url("http://h/", 2), None);
    }

    #[test]
    fn a_single_file_url_is_the_file_unless_it_ends_in_a_slash() {
        let bytes = torrent(b"one file.iso", &[(&[], 100, false)]);
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let paths = WebPaths::new(&m.info);
        assert_eq!(paths.url("http://h/x.iso", 0).unwrap(), "http://h/x.iso");
        assert_eq!(
            paths.url("http://h/d/", 0).unwrap(),
            "http://h/d/one%20file.iso"
        );
    }

    #[test]
    fn a_run_across_files_is_one_request_per_file_and_reassembles() {
        let bytes = multi();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let layout = m.info.layout().clone();
        let paths = WebPaths::new(&m.info);
        let parts = plan(&layout, &paths, "http://h/", 9_000..12_000).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            RunPart::Fetch(WebRequest {
                url: "http://h/My%20Files/a%20b/x%25y.txt".into(),
                range: 9_000..10_000,
            })
        );
        match &parts[1] {
            RunPart::Fetch(r) => assert_eq!(r.range, 0..2_000),
            other => panic!("{other:?}"),
        }
        let run = assemble(
            &parts,
            vec![Bytes::from(vec![1; 1_000]), Bytes::from(vec![2; 2_000])],
        )
        .unwrap();
        assert_eq!(run.len(), 3_000);
        assert!(run[..1_000].iter().all(|&b| b == 1) && run[1_000..].iter().all(|&b| b == 2));
        assert_eq!(
            assemble(
                &parts,
                vec![Bytes::from(vec![1; 1_000]), Bytes::from(vec![2; 10])]
            ),
            Err(WebSeedError::ShortBody {
                expected: 2_000,
                got: 10
            })
        );
        assert_eq!(
            assemble(&parts, vec![Bytes::from(vec![1; 1_000])]),
            Err(WebSeedError::MissingBody)
        );
        assert!(plan(&layout, &paths, "http://h/", 0..40_001).is_none());
        assert!(plan(&layout, &paths, "http://h/", 5..5).is_none());
    }

    #[test]
    fn padding_is_zeros_not_a_request() {
        let bytes = torrent(
            b"t",
            &[
                (&[b"a"], 100, false),
                (&[b".pad", b"16284"], 16284, true),
                (&[b"b"], 100, false),
            ],
        );
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let layout = m.info.layout().clone();
        let paths = WebPaths::new(&m.info);
        let total = layout.total_length();
        let parts = plan(&layout, &paths, "http://h", 0..total).unwrap();
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[1], RunPart::Zeros(16284));
        let run = assemble(
            &parts,
            vec![Bytes::from(vec![7; 100]), Bytes::from(vec![8; 100])],
        )
        .unwrap();
        assert_eq!(run.len() as u64, total);
        assert_eq!(run[16384], 8);
        assert_eq!(run[200], 0);
    }
}
