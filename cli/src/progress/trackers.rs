//! Tracker failures as the user hears of them: named by scheme, host and
//! port only (the rest of an announce URL can hold a private tracker's
//! passkey, a request's query the info-hash and peer id), and said once
//! per tracker and message, since a tracker that keeps failing the same
//! way fails again at every retry.

use std::collections::BTreeMap;

use bittide_driver::client::tracker_name;

/// Each tracker's last failure that was said.
#[derive(Debug, Default)]
pub(super) struct TrackerErrors {
    /// By [`tracker_name`]: the message said last.
    said: BTreeMap<String, String>,
}

impl TrackerErrors {
    /// The tracker's name and the message to say, if this failure is news:
    /// the first from this tracker, or a different one.
    pub(super) fn failed(&mut self, url: &str, error: &str) -> Option<(String, String)> {
        let name = tracker_name(url);
        // HTTP errors quote the URL, which the name already says.
        let message = scrub(error).replace(&format!("{name}: "), "");
        if self.said.get(&name) == Some(&message) {
            return None;
        }
        self.said.insert(name.clone(), message.clone());
        Some((name, message))
    }

    /// The tracker answered: if it fails again later, even the same way,
    /// that is news again.
    pub(super) fn answered(&mut self, url: &str) {
        self.said.remove(&tracker_name(url));
    }
}

/// A message with every URL in it cut to scheme, host and port: HTTP
/// clients quote the request URL in their errors, and an announce URL's
/// path and query can hold a passkey, the info-hash and the peer id.
pub(crate) fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters just before `://`.
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .map_or(rest.len(), |i| at + i);
        let url = &rest[start..end];
        // A URL quoted as `URL: why` keeps its colon.
        let (url, tail) = match url.strip_suffix(':') {
            Some(u) => (u, ":"),
            None => (url, ""),
        };
        out.push_str(&rest[..start]);
        out.push_str(&tracker_name(url));
        out.push_str(tail);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_is_said_once_until_it_changes_or_the_tracker_answers() {
        let mut t = TrackerErrors::default();
        let url = "http://t.example:6969/announce/PASSKEY?info_hash=%AB";
        let refused = "tracker unreachable: http://t.example:6969/announce/PASSKEY?info_hash=%AB: \
                       Connection refused";
        assert_eq!(
            t.failed(url, refused),
            Some((
                "http://t.example:6969".into(),
                "tracker unreachable: Connection refused".into()
            ))
        );
        assert_eq!(t.failed(url, refused), None, "a retry failing the same way");
        assert_eq!(
            t.failed("udp://u.example:1337/announce", "tracker did not answer"),
            Some((
                "udp://u.example:1337".into(),
                "tracker did not answer".into()
            )),
            "another tracker"
        );
        assert!(
            t.failed(url, "tracker refused: banned").is_some(),
            "a new failure"
        );
        assert!(t.failed(url, refused).is_some(), "and back");
        t.answered(url);
        assert!(t.failed(url, refused).is_some(), "after an answer");
    }

    #[test]
    fn urls_in_messages_lose_path_and_query() {
        assert_eq!(
            scrub(
                "tracker unreachable: http://user:pw@t.example:6969/ann/KEY?info_hash=%AB&x=1: \
                 Connection Failed: refused"
            ),
            "tracker unreachable: http://t.example:6969: Connection Failed: refused"
        );
        assert_eq!(
            scrub("udp://t.example:1337/announce did not answer"),
            "udp://t.example:1337 did not answer"
        );
        assert_eq!(scrub("no url here"), "no url here");
    }
}
