//! Tracker URLs, parsed once for the engine and the tools alike: which
//! protocol, and for `udp://` the `host:port` to resolve and the BEP 41
//! URL data (path and query) sent with each announce.

use std::net::IpAddr;

use super::TrackerError;
use crate::IpFamily;

/// A tracker URL the client can announce to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerUrl {
    /// `http://` or `https://`: the URL as given (announce parameters are
    /// appended to it).
    Http(String),
    /// `udp://host:port/path?query` (BEP 15, BEP 41).
    Udp {
        /// `host:port`, an IPv6 literal in brackets: ready for a resolver.
        host: String,
        /// The port (also inside `host`).
        port: u16,
        /// Path and query, passed to the tracker as BEP 41 URL data.
        url_data: Vec<u8>,
    },
}

impl TrackerUrl {
    /// Parses `url`; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<TrackerUrl, TrackerError> {
        let scheme_end = url.find("://").ok_or(TrackerError::BadUrl("no scheme"))?;
        let scheme = url[..scheme_end].to_ascii_lowercase();
        let rest = &url[scheme_end + 3..];
        match scheme.as_str() {
            "http" | "https" => {
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(TrackerError::BadUrl("no host"));
                }
                Ok(TrackerUrl::Http(url.to_owned()))
            }
            "udp" => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(end);
                let port_at = match authority.strip_prefix('[') {
                    Some(v6) => v6.find("]:").map(|i| i + 2),
                    None => authority.rfind(':'),
                }
                .ok_or(TrackerError::BadUrl("udp tracker URL without a port"))?;
                let host_part = &authority[..port_at];
                if host_part.is_empty() || host_part == "[]" {
                    return Err(TrackerError::BadUrl("no host"));
                }
                let port: u16 = authority[port_at + 1..]
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or(TrackerError::BadUrl("bad port"))?;
                Ok(TrackerUrl::Udp {
                    host: authority.to_owned(),
                    port,
                    url_data: tail.as_bytes().to_vec(),
                })
            }
            _ => Err(TrackerError::BadUrl("scheme must be http, https or udp")),
        }
    }

    /// The family of the tracker's host when it is an IP literal: the only
    /// family it can be reached over.
    pub fn literal_family(&self) -> Option<IpFamily> {
        let authority = match self {
            TrackerUrl::Http(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let authority = &rest[..end];
                authority.rsplit_once('@').map_or(authority, |(_, h)| h)
            }
            TrackerUrl::Udp { host, .. } => host,
        };
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => authority.split(':').next().unwrap_or(authority),
        };
        host.parse::<IpAddr>().ok().map(|ip| IpFamily::of_ip(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(host: &str, port: u16, data: &str) -> TrackerUrl {
        TrackerUrl::Udp {
            host: host.into(),
            port,
            url_data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn udp_urls_split_into_host_and_url_data() {
        let cases = [
            ("udp://t.example:6969", udp("t.example:6969", 6969, "")),
            (
                "udp://t.example:6969/announce",
                udp("t.example:6969", 6969, "/announce"),
            ),
            (
                "UDP://1.2.3.4:80?passkey=x",
                udp("1.2.3.4:80", 80, "?passkey=x"),
            ),
            ("udp://[::1]:6969/a?b", udp("[::1]:6969", 6969, "/a?b")),
        ];
        for (url, want) in cases {
            assert_eq!(TrackerUrl::parse(url), Ok(want), "{url}");
        }
    }

    #[test]
    fn ip_literal_hosts_name_their_family() {
        let cases = [
            ("http://127.0.0.1:80/announce", Some(IpFamily::V4)),
            ("https://u:p@[::1]:443/a?b", Some(IpFamily::V6)),
            ("http://[2001:db8::1]/announce", Some(IpFamily::V6)),
            ("http://tracker.example:80/announce", None),
            ("http://1.2.3.4.example/announce", None),
            ("udp://10.0.0.1:6969/announce", Some(IpFamily::V4)),
            ("udp://[::1]:6969", Some(IpFamily::V6)),
            ("udp://t.example:6969", None),
        ];
        for (url, want) in cases {
            let parsed = TrackerUrl::parse(url).expect("valid");
            assert_eq!(parsed.literal_family(), want, "{url}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        let cases = [
            ("udp://t.example/announce", "udp tracker URL without a port"),
            ("udp://:6969", "no host"),
            ("udp://[::1]/x", "udp tracker URL without a port"),
            ("udp://h:0", "bad port"),
            ("udp://h:99999", "bad port"),
            ("wss://h/x", "scheme must be http, https or udp"),
            ("h:80/announce", "no scheme"),
            ("http:///x", "no host"),
        ];
        for (url, why) in cases {
            assert_eq!(
                TrackerUrl::parse(url),
                Err(TrackerError::BadUrl(why)),
                "{url}"
            );
        }
        assert_eq!(
            TrackerUrl::parse("https://t.example/a?b=1"),
            Ok(TrackerUrl::Http("https://t.example/a?b=1".into()))
        );
    }
}
