//! The HTTP tracker protocol as a codec: request URLs out, bencoded bodies
//! in (client side); query strings in, bodies out (server side).
//!
//! BEP 3 defines the announce; BEP 23 compact peers, BEP 7 `peers6`,
//! BEP 24 `external ip`, BEP 48 scrape.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    clean_message, AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeEntry, TrackerError,
};
use crate::bencode::{self, Value};
use crate::compact;
use crate::metainfo::InfoHash;
use crate::wire::PeerId;

/// Most info-hashes in one scrape request (URLs stay well under common
/// server limits).
pub const MAX_SCRAPE_HASHES: usize = 64;

/// Appends `bytes` percent-encoded byte by byte (RFC 3986 unreserved
/// characters stay as they are), as trackers expect for `info_hash` and
/// `peer_id`.
pub fn percent_encode(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn push_param(url: &mut String, first: &mut bool, key: &str) {
    url.push(if *first { '?' } else { '&' });
    *first = false;
    url.push_str(key);
    url.push('=');
}

/// The full announce URL: `announce` plus the parameters, keeping any
/// query string the announce URL already has (private trackers put passkeys
/// there).
pub fn announce_url(announce: &str, req: &AnnounceRequest) -> String {
    let (base, fragment) = announce
        .split_once('#')
        .map_or((announce, None), |(b, f)| (b, Some(f)));
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    let mut first = !base.contains('?');
    if !first && !base.ends_with('?') && !base.ends_with('&') {
        // Existing parameters: continue after them.
    } else if !first {
        // "…?" or "…&": the next separator is already there.
        url.pop();
        first = !url.contains('?');
    }
    push_param(&mut url, &mut first, "info_hash");
    percent_encode(&mut url, &req.info_hash.0);
    push_param(&mut url, &mut first, "peer_id");
    percent_encode(&mut url, &req.peer_id.0);
    for (k, v) in [
        ("port", u64::from(req.port)),
        ("uploaded", req.uploaded),
        ("downloaded", req.downloaded),
        ("left", req.left),
    ] {
        push_param(&mut url, &mut first, k);
        url.push_str(&v.to_string());
    }
    push_param(&mut url, &mut first, "compact");
    url.push('1');
    if let Some(e) = req.event.as_http() {
        push_param(&mut url, &mut first, "event");
        url.push_str(e);
    }
    if let Some(n) = req.numwant {
        push_param(&mut url, &mut first, "numwant");
        url.push_str(&n.to_string());
    }
    if let Some(k) = req.key {
        push_param(&mut url, &mut first, "key");
        url.push_str(&format!("{k:08x}"));
    }
    if let Some(id) = &req.tracker_id {
        push_param(&mut url, &mut first, "trackerid");
        percent_encode(&mut url, id);
    }
    match req.ip {
        Some(IpAddr::V6(ip)) => {
            push_param(&mut url, &mut first, "ipv6");
            percent_encode(&mut url, ip.to_string().as_bytes());
        }
        Some(IpAddr::V4(ip)) => {
            push_param(&mut url, &mut first, "ipv4");
            url.push_str(&ip.to_string());
        }
        None => {}
    }
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

/// BEP 48: the scrape URL for an announce URL, if the tracker supports the
/// convention: the last path component must start with `announce`, which
/// is replaced by `scrape`.
pub fn scrape_url(announce: &str) -> Option<String> {
    let path_end = announce.find(['?', '#']).unwrap_or(announce.len());
    let (path, rest) = announce.split_at(path_end);
    let slash = path.rfind('/')?;
    let last = &path[slash + 1..];
    let tail = last.strip_prefix("announce")?;
    Some(format!("{}scrape{tail}{rest}", &path[..=slash]))
}

/// The scrape request URL for several torrents (at most
/// [`MAX_SCRAPE_HASHES`]).
pub fn scrape_request_url(scrape: &str, hashes: &[InfoHash]) -> String {
    let mut url = scrape.to_owned();
    let mut first = !url.contains('?');
    for h in hashes.iter().take(MAX_SCRAPE_HASHES) {
        push_param(&mut url, &mut first, "info_hash");
        percent_encode(&mut url, &h.0);
    }
    url
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body[start..].first() == Some(&b'<')
}

fn decode_body(body: &[u8]) -> Result<Value<'_>, TrackerError> {
    if looks_like_html(body) {
        return Err(TrackerError::Html);
    }
    let root = bencode::decode(body).map_err(TrackerError::Malformed)?;
    if root.as_dict().is_none() {
        return Err(TrackerError::MissingField("dictionary"));
    }
    if let Some(reason) = root
        .as_dict()
        .and_then(|d| d.get(b"failure reason"))
        .and_then(Value::as_bytes)
    {
        return Err(TrackerError::Refused(clean_message(reason)));
    }
    Ok(root)
}

fn u32_field(v: Option<&Value<'_>>) -> Option<u32> {
    v.and_then(Value::as_int)
        .and_then(|n| u32::try_from(n.max(0)).ok())
}

/// Parses an announce response body.
pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let root = decode_body(body)?;
    let Some(d) = root.as_dict() else {
        return Err(TrackerError::MissingField("dictionary"));
    };
    let interval = u32_field(d.get(b"interval")).ok_or(TrackerError::MissingField("interval"))?;
    let mut peers = Vec::new();
    match d.get(b"peers") {
        Some(v) => match (v.as_bytes(), v.as_list()) {
            (Some(b), _) => peers.extend(compact::decode_v4(b)),
            (_, Some(list)) => {
                for p in list {
                    let Some(pd) = p.as_dict() else { continue };
                    let ip = pd
                        .get(b"ip")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<IpAddr>().ok());
                    let port = pd
                        .get(b"port")
                        .and_then(Value::as_int)
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|&p| p != 0);
                    if let (Some(ip), Some(port)) = (ip, port) {
                        peers.push(SocketAddr::new(ip, port));
                    }
                }
            }
            _ => return Err(TrackerError::MissingField("peers")),
        },
        None if d.get(b"peers6").is_none() => return Err(TrackerError::MissingField("peers")),
        None => {}
    }
    if let Some(b) = d.get(b"peers6").and_then(Value::as_bytes) {
        peers.extend(compact::decode_v6(b));
    }
    let external_ip = d
        .get(b"external ip")
        .and_then(Value::as_bytes)
        .and_then(|b| match b.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => None,
        });
    Ok(AnnounceResponse {
        interval,
        min_interval: u32_field(d.get(b"min interval")),
        tracker_id: d
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
        complete: u32_field(d.get(b"complete")),
        incomplete: u32_field(d.get(b"incomplete")),
        peers,
        warning: d
            .get(b"warning message")
            .and_then(Value::as_bytes)
            .map(clean_message),
        external_ip,
    })
}

/// Parses a scrape response body (`files`: info-hash → counts).
pub fn parse_scrape_response(body: &[u8]) -> Result<Vec<ScrapeEntry>, TrackerError> {
    let root = decode_body(body)?;
    let files = root
        .as_dict()
        .and_then(|d| d.get(b"files"))
        .and_then(Value::as_dict)
        .ok_or(TrackerError::MissingField("files"))?;
    let mut out = Vec::new();
    for (k, v) in files.iter() {
        let (Ok(hash), Some(counts)) = (<[u8; 20]>::try_from(k), v.as_dict()) else {
            continue;
        };
        out.push(ScrapeEntry {
            info_hash: InfoHash(hash),
            complete: u32_field(counts.get(b"complete")).unwrap_or(0),
            downloaded: u32_field(counts.get(b"downloaded")).unwrap_or(0),
            incomplete: u32_field(counts.get(b"incomplete")).unwrap_or(0),
        });
    }
    Ok(out)
}

// --- server side ------------------------------------------------------------

/// Longest query string the server parses.
pub const MAX_QUERY_LEN: usize = 8 * 1024;
/// Longest `trackerid` accepted from a client.
pub const MAX_TRACKER_ID: usize = 256;

/// Why a client's HTTP request was refused; its `Display` is the
/// `failure reason` sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The query string is too long.
    TooLong,
    /// A required parameter is missing or malformed.
    Missing(&'static str),
    /// Bad percent-encoding.
    BadEncoding,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::TooLong => f.write_str("request too long"),
            RequestError::Missing(p) => write!(f, "missing or invalid parameter `{p}`"),
            RequestError::BadEncoding => f.write_str("bad percent-encoding"),
        }
    }
}

impl std::error::Error for RequestError {}

fn unescape(s: &[u8]) -> Result<Vec<u8>, RequestError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                let (Some(h), Some(l)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(RequestError::BadEncoding);
                };
                out.push((h << 4) | l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// One `key=value` of a query string, unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParam {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// The parameters of a query string (the part after `?`), unescaped.
pub fn query_pairs(query: &[u8]) -> Result<Vec<QueryParam>, RequestError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(RequestError::TooLong);
    }
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[p.len()..]),
            };
            Ok(QueryParam {
                key: unescape(k)?,
                value: unescape(v)?,
            })
        })
        .collect()
}

/// An announce as a server receives it: the request, whether the client
/// asked for compact peers, and whether it asked for no peer ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAnnounce {
    /// The request.
    pub request: AnnounceRequest,
    /// `compact=1` (BEP 23).
    pub compact: bool,
}

/// Parses the query string of `GET /announce?…`.
pub fn parse_announce_query(query: &[u8]) -> Result<ServerAnnounce, RequestError> {
    let pairs = query_pairs(query)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|p| p.key == k.as_bytes())
            .map(|p| p.value.as_slice())
    };
    let num = |k: &'static str| -> Result<u64, RequestError> {
        std::str::from_utf8(get(k).ok_or(RequestError::Missing(k))?)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RequestError::Missing(k))
    };
    let hash: [u8; 20] = get("info_hash")
        .and_then(|v| v.try_into().ok())
        .ok_or(RequestError::Missing("info_hash"))?;
    let peer_id: [u8; 20] = get("peer_id")
        .and_then(|v| v.try_into().ok())
        .ok_or(RequestError::Missing("peer_id"))?;
    let port = u16::try_from(num("port")?).map_err(|_| RequestError::Missing("port"))?;
    let event = match get("event") {
        Some(v) => AnnounceEvent::from_http(v).ok_or(RequestError::Missing("event"))?,
        None => AnnounceEvent::None,
    };
    let opt_num = |k: &'static str| {
        get(k)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
    };
    let ip = get("ipv6")
        .or_else(|| get("ipv4"))
        .or_else(|| get("ip"))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse().ok());
    let request = AnnounceRequest {
        info_hash: InfoHash(hash),
        peer_id: PeerId(peer_id),
        port,
        uploaded: opt_num("uploaded").unwrap_or(0),
        downloaded: opt_num("downloaded").unwrap_or(0),
        left: opt_num("left").unwrap_or(0),
        event,
        numwant: opt_num("numwant").map(|n| n.min(u64::from(u32::MAX)) as u32),
        key: get("key")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| u32::from_str_radix(s, 16).ok()),
        // Tracker ids are short tokens the tracker handed out; a long one
        // is not ours and is ignored.
        tracker_id: get("trackerid")
            .filter(|v| v.len() <= MAX_TRACKER_ID)
            .map(<[u8]>::to_vec),
        ip,
    };
    Ok(ServerAnnounce {
        request,
        compact: get("compact") != Some(b"0"),
    })
}

/// Parses the info-hashes of `GET /scrape?info_hash=…&info_hash=…`.
pub fn parse_scrape_query(query: &[u8]) -> Result<Vec<InfoHash>, RequestError> {
    Ok(query_pairs(query)?
        .into_iter()
        .filter(|p| p.key == b"info_hash")
        .filter_map(|p| <[u8; 20]>::try_from(p.value.as_slice()).ok().map(InfoHash))
        .take(MAX_SCRAPE_HASHES)
        .collect())
}

/// Encodes an announce response body; peers compact (`peers` and
/// `peers6`) or as dictionaries.
pub fn encode_announce_response(resp: &AnnounceResponse, compact_peers: bool) -> Vec<u8> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    let mut dicts = Vec::new();
    let ip_strings: Vec<String> = resp.peers.iter().map(|p| p.ip().to_string()).collect();
    for (p, ip) in resp.peers.iter().zip(&ip_strings) {
        if compact_peers {
            match p {
                SocketAddr::V4(_) => compact::encode(&mut v4, p),
                SocketAddr::V6(_) => compact::encode(&mut v6, p),
            }
        } else {
            dicts.push(Value::dict(vec![
                (b"ip", Value::bytes(ip.as_bytes())),
                (b"port", Value::int(i64::from(p.port()))),
            ]));
        }
    }
    let mut entries = vec![(&b"interval"[..], Value::int(i64::from(resp.interval)))];
    if let Some(m) = resp.min_interval {
        entries.push((b"min interval", Value::int(i64::from(m))));
    }
    if let Some(c) = resp.complete {
        entries.push((b"complete", Value::int(i64::from(c))));
    }
    if let Some(c) = resp.incomplete {
        entries.push((b"incomplete", Value::int(i64::from(c))));
    }
    if compact_peers {
        entries.push((b"peers", Value::bytes(&v4)));
        if !v6.is_empty() {
            entries.push((b"peers6", Value::bytes(&v6)));
        }
    } else {
        entries.push((b"peers", Value::list(dicts)));
    }
    if let Some(w) = &resp.warning {
        entries.push((b"warning message", Value::bytes(w.as_bytes())));
    }
    Value::dict(entries).to_vec()
}

/// Encodes a `failure reason` body.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    Value::dict(vec![(b"failure reason", Value::bytes(reason.as_bytes()))]).to_vec()
}

/// Encodes a scrape response body.
pub fn encode_scrape_response(entries: &[ScrapeEntry]) -> Vec<u8> {
    let files = entries
        .iter()
        .map(|e| {
            (
                &e.info_hash.0[..],
                Value::dict(vec![
                    (b"complete", Value::int(i64::from(e.complete))),
                    (b"downloaded", Value::int(i64::from(e.downloaded))),
                    (b"incomplete", Value::int(i64::from(e.incomplete))),
                ]),
            )
        })
        .collect();
    Value::dict(vec![(b"files", Value::dict(files))]).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> AnnounceRequest {
        let mut r = AnnounceRequest::new(InfoHash(*b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a"), PeerId(*b"-BT0001-abcdefghijkl"), 6881);
        r.left = 1000;
        r.event = AnnounceEvent::Started;
        r.numwant = Some(50);
        r.key = Some(0xdead_beef);
        r
    }

    #[test]
    fn announce_urls_keep_existing_queries() {
        let url = announce_url("http://t.example/announce", &req());
        assert!(url.starts_with(
            "http://t.example/announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-BT0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=1000&compact=1&event=started&numwant=50&key=deadbeef"
        ), "{url}");
        let url = announce_url("http://t.example/announce.php?passkey=abc", &req());
        assert!(
            url.starts_with("http://t.example/announce.php?passkey=abc&info_hash="),
            "{url}"
        );
        let url = announce_url("http://t.example/a?", &req());
        assert!(url.starts_with("http://t.example/a?info_hash="), "{url}");
        let mut r = req();
        r.tracker_id = Some(b"id 1".to_vec());
        r.ip = Some("2001:db8::1".parse().unwrap());
        let url = announce_url("http://t/announce", &r);
        assert!(
            url.ends_with("&trackerid=id%201&ipv6=2001%3Adb8%3A%3A1"),
            "{url}"
        );
        // The server side reads back what the client wrote.
        let q = url.split_once('?').unwrap().1;
        let parsed = parse_announce_query(q.as_bytes()).unwrap();
        assert_eq!(parsed.request, r);
        assert!(parsed.compact);
    }

    #[test]
    fn scrape_url_convention() {
        assert_eq!(
            scrape_url("http://t/announce").as_deref(),
            Some("http://t/scrape")
        );
        assert_eq!(
            scrape_url("http://t/x/announce.php?pk=1").as_deref(),
            Some("http://t/x/scrape.php?pk=1")
        );
        assert_eq!(
            scrape_url("http://t/announce?x=1").as_deref(),
            Some("http://t/scrape?x=1")
        );
        assert_eq!(scrape_url("http://t/a"), None);
        assert_eq!(scrape_url("http://t/announce/x"), None);
        let url = scrape_request_url("http://t/scrape", &[InfoHash([1; 20]), InfoHash([2; 20])]);
        assert_eq!(
            parse_scrape_query(url.split_once('?').unwrap().1.as_bytes())
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn compact_dictionary_and_ipv6_peers() {
        let body = b"d8:completei5e10:incompletei3e8:intervali1800e12:min intervali900e5:peers12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe26:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe311:external ip4:\x01\x02\x03\x0410:tracker id3:xyze";
        let r = parse_announce_response(body).unwrap();
        assert_eq!(r.interval, 1800);
        assert_eq!(r.min_interval, Some(900));
        assert_eq!((r.complete, r.incomplete), (Some(5), Some(3)));
        assert_eq!(r.peers.len(), 3);
        assert_eq!(r.peers[2], "[2001:db8::1]:6883".parse().unwrap());
        assert_eq!(r.external_ip, Some("1.2.3.4".parse().unwrap()));
        assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
        let dict = b"d8:intervali60e5:peersld2:ip9:10.0.0.254:porti6881eed2:ip3:::14:porti1eed2:ip3:bad4:porti1eeee";
        let r = parse_announce_response(dict).unwrap();
        assert_eq!(
            r.peers,
            vec![
                "10.0.0.25:6881".parse().unwrap(),
                "[::1]:1".parse().unwrap()
            ]
        );
        for compact_form in [true, false] {
            let again =
                parse_announce_response(&encode_announce_response(&r, compact_form)).unwrap();
            assert_eq!(again.peers, r.peers);
        }
    }

    #[test]
    fn failures_garbage_and_html_are_clear_errors() {
        assert_eq!(
            parse_announce_response(b"d14:failure reason17:torrent not founde"),
            Err(TrackerError::Refused("torrent not found".into()))
        );
        assert_eq!(
            parse_announce_response(b"  <html><body>502 Bad Gateway</body></html>"),
            Err(TrackerError::Html)
        );
        assert!(matches!(
            parse_announce_response(b"d8:intervali18"),
            Err(TrackerError::Malformed(_))
        ));
        assert_eq!(
            parse_announce_response(b"le"),
            Err(TrackerError::MissingField("dictionary"))
        );
        assert_eq!(
            parse_announce_response(b"d5:peers0:e"),
            Err(TrackerError::MissingField("interval"))
        );
        assert_eq!(
            parse_announce_response(b"d8:intervali5ee"),
            Err(TrackerError::MissingField("peers"))
        );
        let nasty = b"d14:failure reason9:a\x1b[2Jb\n\x07ce";
        assert_eq!(
            parse_announce_response(nasty),
            Err(TrackerError::Refused("a [2Jb  c".into()))
        );
        assert!(parse_announce_response(b"d8:intervali-5e5:peers0:e").is_ok());
    }

    #[test]
    fn scrape_responses() {
        let entries = vec![ScrapeEntry {
            info_hash: InfoHash([9; 20]),
            complete: 4,
            downloaded: 10,
            incomplete: 2,
        }];
        assert_eq!(
            parse_scrape_response(&encode_scrape_response(&entries)).unwrap(),
            entries
        );
        assert_eq!(
            parse_scrape_response(b"de"),
            Err(TrackerError::MissingField("files"))
        );
    }

    #[test]
    fn server_queries_are_checked() {
        assert_eq!(
            parse_announce_query(b"port=1"),
            Err(RequestError::Missing("info_hash"))
        );
        assert_eq!(
            parse_announce_query(b"info_hash=%zz"),
            Err(RequestError::BadEncoding)
        );
        assert_eq!(
            parse_announce_query(&vec![b'a'; MAX_QUERY_LEN + 1]),
            Err(RequestError::TooLong)
        );
        let q = format!(
            "info_hash={}&peer_id={}&port=99999",
            "%01".repeat(20),
            "a".repeat(20)
        );
        assert_eq!(
            parse_announce_query(q.as_bytes()),
            Err(RequestError::Missing("port"))
        );
    }
}
