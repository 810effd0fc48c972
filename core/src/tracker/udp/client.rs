//! The UDP tracker client's state machine (BEP 15): one per tracker
//! address, shared by every torrent that announces there.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::{
    UdpRequest, UdpResponse, CONNECTION_ID_LIFETIME, MAX_RETRIES, MAX_SCRAPE, MAX_URL_DATA,
};
use crate::metainfo::InfoHash;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::tracker::{clean_message, AnnounceRequest, AnnounceResponse, ScrapeEntry, TrackerError};

/// Names one request of a [`UdpTrackerClient`]; the caller picks it
/// (the engine: one per torrent and URL) and results carry it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpJob(pub u64);

/// What a [`UdpTrackerClient`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpTrackerEvent {
    /// The announce succeeded.
    Announced(UdpJob, AnnounceResponse),
    /// The scrape succeeded.
    Scraped(UdpJob, Vec<ScrapeEntry>),
    /// The request failed (refused, or no answer after every retry).
    Failed(UdpJob, TrackerError),
}

#[derive(Clone, Debug)]
enum Job {
    Announce(AnnounceRequest),
    Scrape(Vec<InfoHash>),
}

/// One transmission and its retransmission schedule.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    tx: u32,
    /// Retransmissions so far (the n of 15·2ⁿ).
    retries: u32,
    deadline: Instant,
}

#[derive(Clone, Debug)]
struct Pending {
    job: Job,
    /// BEP 41: the path and query of the job's `udp://` URL.
    url_data: Vec<u8>,
    /// `None` while waiting for a connection id.
    sent: Option<Attempt>,
    /// Retransmissions of the request itself.
    retries: u32,
}

/// The client for one tracker address, shared by every torrent announcing
/// there; see the module documentation.
///
/// One connection id serves every request (BEP 15: it proves our address,
/// not a torrent), and answers are routed to their request by transaction
/// id, so 100 torrents on one tracker make one connect, not 100.
///
/// Inputs: [`announce`](UdpTrackerClient::announce) /
/// [`scrape`](UdpTrackerClient::scrape) / [`cancel`](UdpTrackerClient::cancel)
/// (commands), [`handle_datagram`](UdpTrackerClient::handle_datagram),
/// [`handle_timeout`](UdpTrackerClient::handle_timeout). Outputs:
/// [`poll_transmit`](UdpTrackerClient::poll_transmit) (datagrams with the
/// tracker's address), [`poll_event`](UdpTrackerClient::poll_event),
/// [`poll_timeout`](UdpTrackerClient::poll_timeout).
#[derive(Debug)]
pub struct UdpTrackerClient {
    addr: SocketAddr,
    connection: Option<(u64, Instant)>,
    /// The connect request in flight (one for every job waiting).
    connecting: Option<Attempt>,
    jobs: BTreeMap<UdpJob, Pending>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<UdpTrackerEvent>,
    rng: Rng,
    ignored: u64,
}

/// The first retransmission delay (BEP 15: 15·2ⁿ seconds).
const BASE_TIMEOUT: Duration = Duration::from_secs(15);

impl UdpTrackerClient {
    /// A client for the tracker at `addr`.
    pub fn new(addr: SocketAddr, seed: Seed) -> UdpTrackerClient {
        UdpTrackerClient {
            addr,
            connection: None,
            connecting: None,
            jobs: BTreeMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            rng: Rng::new(seed),
            ignored: 0,
        }
    }

    /// The tracker's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams that matched no outstanding transaction (forged, late or
    /// duplicated).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Whether any request is in flight.
    pub fn is_busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Whether `job` is in flight.
    pub fn is_pending(&self, job: UdpJob) -> bool {
        self.jobs.contains_key(&job)
    }

    /// Starts an announce as `job` (replacing that job if in flight);
    /// `url_data` is the path and query of its URL (BEP 41).
    pub fn announce(
        &mut self,
        now: Instant,
        job: UdpJob,
        request: AnnounceRequest,
        url_data: &[u8],
    ) {
        let mut url_data = url_data.to_vec();
        url_data.truncate(MAX_URL_DATA);
        self.start(now, job, Job::Announce(request), url_data);
    }

    /// Starts a scrape of up to [`MAX_SCRAPE`] torrents as `job`.
    pub fn scrape(&mut self, now: Instant, job: UdpJob, mut hashes: Vec<InfoHash>) {
        hashes.truncate(MAX_SCRAPE);
        self.start(now, job, Job::Scrape(hashes), Vec::new());
    }

    /// Forgets `job`: a late answer to it is ignored.
    pub fn cancel(&mut self, job: UdpJob) {
        self.jobs.remove(&job);
        if !self.jobs.values().any(|p| p.sent.is_none()) {
            self.connecting = None;
        }
    }

    fn connection_id(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|(_, at)| now < *at + CONNECTION_ID_LIFETIME)
            .map(|(id, _)| id)
    }

    fn start(&mut self, now: Instant, id: UdpJob, job: Job, url_data: Vec<u8>) {
        self.jobs.insert(
            id,
            Pending {
                job,
                url_data,
                sent: None,
                retries: 0,
            },
        );
        self.send(now, id);
    }

    /// A transaction id no request in flight uses.
    fn fresh_tx(&mut self) -> u32 {
        loop {
            let tx = self.rng.next_u32();
            let used = self.connecting.is_some_and(|c| c.tx == tx)
                || self
                    .jobs
                    .values()
                    .any(|p| p.sent.is_some_and(|s| s.tx == tx));
            if !used {
                return tx;
            }
        }
    }

    fn deadline(now: Instant, retries: u32) -> Instant {
        now + BASE_TIMEOUT * (1u32 << retries.min(MAX_RETRIES))
    }

    /// (Re)sends `id` with a fresh transaction id, or waits for a
    /// connection id (asking for one if nobody has yet).
    fn send(&mut self, now: Instant, id: UdpJob) {
        let Some(conn_id) = self.connection_id(now) else {
            if let Some(p) = self.jobs.get_mut(&id) {
                p.sent = None;
            }
            if self.connecting.is_none() {
                self.connect(now, 0);
            }
            return;
        };
        let tx = self.fresh_tx();
        let Some(p) = self.jobs.get_mut(&id) else {
            return;
        };
        p.sent = Some(Attempt {
            tx,
            retries: p.retries,
            deadline: Self::deadline(now, p.retries),
        });
        let packet = match &p.job {
            Job::Announce(r) => UdpRequest::Announce {
                conn_id,
                tx,
                request: r.clone(),
                url_data: p.url_data.clone(),
            },
            Job::Scrape(h) => UdpRequest::Scrape {
                conn_id,
                tx,
                hashes: h.clone(),
            },
        };
        self.transmit(&packet);
    }

    fn connect(&mut self, now: Instant, retries: u32) {
        let tx = self.fresh_tx();
        self.connecting = Some(Attempt {
            tx,
            retries,
            deadline: Self::deadline(now, retries),
        });
        self.transmit(&UdpRequest::Connect { tx });
    }

    fn transmit(&mut self, packet: &UdpRequest) {
        let mut buf = Vec::new();
        packet.encode(&mut buf);
        self.out.push_back((self.addr, buf));
    }

    fn fail(&mut self, id: UdpJob, error: TrackerError) {
        self.jobs.remove(&id);
        self.events.push_back(UdpTrackerEvent::Failed(id, error));
    }

    fn waiting(&self) -> Vec<UdpJob> {
        self.jobs
            .iter()
            .filter(|(_, p)| p.sent.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// A datagram from the tracker's address.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(resp) = UdpResponse::decode(bytes, self.addr.is_ipv6()) else {
            self.ignored += 1;
            return;
        };
        let tx = resp.tx();
        if self.connecting.is_some_and(|c| c.tx == tx) {
            match resp {
                UdpResponse::Connect { conn_id, .. } => {
                    self.connecting = None;
                    self.connection = Some((conn_id, now));
                    for id in self.waiting() {
                        self.send(now, id);
                    }
                }
                UdpResponse::Error { message, .. } => {
                    self.connecting = None;
                    for id in self.waiting() {
                        self.fail(id, TrackerError::Refused(clean_message(&message)));
                    }
                }
                _ => self.ignored += 1,
            }
            return;
        }
        let found = self
            .jobs
            .iter()
            .find(|(_, p)| p.sent.is_some_and(|s| s.tx == tx))
            .map(|(id, p)| (*id, matches!(p.job, Job::Announce(_))));
        let Some((id, announce)) = found else {
            self.ignored += 1;
            return;
        };
        match resp {
            UdpResponse::Error { message, .. } => {
                self.fail(id, TrackerError::Refused(clean_message(&message)));
            }
            UdpResponse::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } if announce => {
                self.jobs.remove(&id);
                let response = AnnounceResponse {
                    interval,
                    complete: Some(seeders),
                    incomplete: Some(leechers),
                    peers,
                    ..AnnounceResponse::default()
                };
                self.events
                    .push_back(UdpTrackerEvent::Announced(id, response));
            }
            UdpResponse::Scrape { counts, .. } if !announce => {
                let Some(Pending {
                    job: Job::Scrape(hashes),
                    ..
                }) = self.jobs.remove(&id)
                else {
                    return;
                };
                let entries = hashes
                    .iter()
                    .zip(counts)
                    .map(|(h, (complete, downloaded, incomplete))| ScrapeEntry {
                        info_hash: *h,
                        complete,
                        downloaded,
                        incomplete,
                    })
                    .collect();
                self.events.push_back(UdpTrackerEvent::Scraped(id, entries));
            }
            _ => self.ignored += 1,
        }
    }

    /// A deadline may have passed: retransmit, or give up after the last
    /// retry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(c) = self.connecting.filter(|c| c.deadline <= now) {
            if c.retries >= MAX_RETRIES {
                self.connecting = None;
                for id in self.waiting() {
                    self.fail(id, TrackerError::TimedOut);
                }
            } else {
                self.connect(now, c.retries + 1);
            }
        }
        let due: Vec<(UdpJob, u32)> = self
            .jobs
            .iter()
            .filter_map(|(id, p)| {
                p.sent
                    .filter(|s| s.deadline <= now)
                    .map(|s| (*id, s.retries))
            })
            .collect();
        for (id, retries) in due {
            if retries >= MAX_RETRIES {
                self.fail(id, TrackerError::TimedOut);
            } else if let Some(p) = self.jobs.get_mut(&id) {
                p.retries = retries + 1;
                self.send(now, id);
            }
        }
    }

    /// The next datagram to send, with the tracker's address.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next result.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<UdpTrackerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](UdpTrackerClient::handle_timeout) wants to
    /// run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let jobs = self
            .jobs
            .values()
            .filter_map(|p| p.sent.map(|s| s.deadline));
        jobs.chain(self.connecting.map(|c| c.deadline)).min()
    }
}
