//! What the application lists about a torrent's transfers: its rates
//! (the sum of its peers' rate meters) and one line per connected peer.

use super::*;

/// Longest client name kept for display.
const MAX_CLIENT: usize = 64;

/// The four choke and interest flags of a peer session (BEP 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerFlags {
    /// We choke the peer.
    pub am_choking: bool,
    /// We want something the peer has.
    pub am_interested: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// The peer wants something we have.
    pub peer_interested: bool,
}

/// One connected peer, for the application's peer list.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// The connection.
    pub conn: ConnId,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The client it names in its extension handshake (BEP 10 `v`),
    /// control characters removed and cut to 64 characters: text from a
    /// stranger, shown in terminals and web pages.
    pub client: Option<String>,
    /// Bytes/s from it.
    pub download_rate: u64,
    /// Bytes/s to it.
    pub upload_rate: u64,
    /// Payload bytes received from it.
    pub downloaded: u64,
    /// Payload bytes sent to it.
    pub uploaded: u64,
    /// The share of the pieces it has, 0 to 1.
    pub progress: f64,
    /// Choke and interest, both ways.
    pub flags: PeerFlags,
    /// Who opened the connection.
    pub direction: Direction,
    /// Where its address came from.
    pub source: PeerSource,
    /// Whether the connection runs over uTP (BEP 29) rather than TCP.
    pub utp: bool,
}

/// A torrent's transfers over its whole life, across sessions: what the
/// application saves with the resume data and gives back
/// ([`Torrent::restore_history`]) so share ratios and seeding time
/// survive a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferHistory {
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Time spent seeding.
    pub seeding_time: Duration,
}

/// A client name fit to show: no control characters (terminal escapes,
/// line breaks), no surrounding blanks, at most [`MAX_CLIENT`] characters.
fn sanitise(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

impl Torrent {
    /// Transfers over the torrent's whole life: what earlier sessions
    /// did ([`restore_history`](Torrent::restore_history)) plus this one.
    /// Share ratios count these; tracker announces count this session's
    /// ([`counters`](Torrent::counters)).
    pub fn history(&self, now: Instant) -> TransferHistory {
        TransferHistory {
            uploaded: self.prior.uploaded + self.uploaded,
            downloaded: self.prior.downloaded + self.downloaded,
            seeding_time: self.seeding_time(now),
        }
    }

    /// What earlier sessions did (saved from [`history`](Torrent::history)),
    /// given back right after the torrent is added.
    pub fn restore_history(&mut self, history: TransferHistory) {
        self.prior = TransferHistory {
            seeding_time: Duration::ZERO,
            ..history
        };
        self.seeded = history.seeding_time;
    }

    /// Download and upload rates in bytes/s, summed over the peers' rate
    /// meters (a few seconds' window).
    pub fn rates(&self, now: Instant) -> (u64, u64) {
        self.peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .map(|s| s.rates_at(now))
            .fold((0, 0), |(d, u), (pd, pu)| (d + pd, u + pu))
    }

    /// Every peer with an established session.
    pub fn peers_info(&self, now: Instant) -> Vec<PeerInfo> {
        let count = self.info.layout.piece_count();
        self.peers
            .iter()
            .filter_map(|(conn, p)| {
                let s = p.session.as_ref().filter(|s| s.is_active())?;
                let (download_rate, upload_rate) = s.rates_at(now);
                let (downloaded, uploaded) = s.totals();
                let have = match s.remote_pieces() {
                    RemotePieces::All => count,
                    RemotePieces::Some(b) => b.count(),
                    RemotePieces::None => 0,
                };
                let progress = if count == 0 {
                    0.0
                } else {
                    f64::from(have.min(count)) / f64::from(count)
                };
                let source = self.list.source(&p.addr).unwrap_or(match s.direction() {
                    Direction::Incoming => PeerSource::Incoming,
                    Direction::Outgoing => PeerSource::User,
                });
                Some(PeerInfo {
                    conn: *conn,
                    addr: p.addr,
                    client: s
                        .remote_extensions()
                        .and_then(|e| e.client.as_deref())
                        .and_then(sanitise),
                    download_rate,
                    upload_rate,
                    downloaded,
                    uploaded,
                    progress,
                    flags: PeerFlags {
                        am_choking: s.am_choking(),
                        am_interested: s.am_interested(),
                        peer_choking: s.peer_choking(),
                        peer_interested: s.peer_interested(),
                    },
                    direction: s.direction(),
                    source,
                    utp: p.utp,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise;

    #[test]
    fn client_names_lose_control_characters_and_length() {
        assert_eq!(
            sanitise("qBit\u{1b}[31mtorrent\n 4.6").as_deref(),
            Some("qBit[31mtorrent 4.6")
        );
        assert_eq!(sanitise(" \t\r\n"), None);
        assert_eq!(sanitise(&"x".repeat(200)).map(|s| s.len()), Some(64));
    }
}
