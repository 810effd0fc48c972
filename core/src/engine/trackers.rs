//! The engine's side of trackers: every torrent's announces, multiplexed.
//!
//! HTTP announces become [`Output::Http`] requests. UDP trackers get one
//! [`UdpTrackerClient`] per tracker *address*, shared by every torrent
//! announcing there: one connection id, one retransmission ladder per
//! request, answers routed by transaction id inside the client and back to
//! their torrent by [`UdpJob`] here. A `udp://` host name is resolved once
//! ([`Output::Resolve`]); announces wait for it. URLs are parsed by
//! [`TrackerUrl`], the one parser the tools use too.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::{Output, RequestId, RequestIds};
use crate::handles::TorrentId;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::tracker::http::{announce_url, parse_announce_response};
use crate::tracker::udp::{UdpJob, UdpTrackerClient, UdpTrackerEvent};
use crate::tracker::{AnnounceRequest, AnnounceResponse, TrackerError, TrackerUrl};

/// An announce's outcome, for its torrent.
#[derive(Debug)]
pub(super) struct Announced {
    pub torrent: TorrentId,
    pub url: String,
    pub result: Result<AnnounceResponse, TrackerError>,
}

/// An announce waiting for its tracker's address.
#[derive(Debug)]
struct Queued {
    job: UdpJob,
    request: AnnounceRequest,
    url_data: Vec<u8>,
}

#[derive(Debug)]
enum Host {
    Resolving(Vec<Queued>),
    At(SocketAddr),
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Trackers {
    rng: Rng,
    /// Requests and datagrams for the driver, in order.
    out: VecDeque<Output>,
    /// HTTP announces in flight.
    http: BTreeMap<RequestId, (TorrentId, String)>,
    /// Name lookups in flight, by the `host:port` they resolve.
    resolving: BTreeMap<RequestId, String>,
    hosts: BTreeMap<String, Host>,
    clients: BTreeMap<SocketAddr, UdpTrackerClient>,
    /// Whose each UDP request is.
    jobs: BTreeMap<UdpJob, (TorrentId, String)>,
    /// The request of each torrent and URL: a new announce replaces it.
    current: BTreeMap<(TorrentId, String), UdpJob>,
    next_job: u64,
    results: VecDeque<Announced>,
}

impl Trackers {
    pub(super) fn new(seed: Seed) -> Trackers {
        Trackers {
            rng: Rng::new(seed),
            out: VecDeque::new(),
            http: BTreeMap::new(),
            resolving: BTreeMap::new(),
            hosts: BTreeMap::new(),
            clients: BTreeMap::new(),
            jobs: BTreeMap::new(),
            current: BTreeMap::new(),
            next_job: 0,
            results: VecDeque::new(),
        }
    }

    /// Announces `request` for `torrent` to `url`.
    pub(super) fn announce(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        url: String,
        request: AnnounceRequest,
        ids: &mut RequestIds,
    ) {
        let (host, url_data) = match TrackerUrl::parse(&url) {
            Err(e) => {
                self.results.push_back(Announced {
                    torrent,
                    url,
                    result: Err(e),
                });
                return;
            }
            Ok(TrackerUrl::Http(base)) => {
                let id = ids.next_id();
                self.out.push_back(Output::Http {
                    request: id,
                    url: announce_url(&base, &request),
                });
                self.http.insert(id, (torrent, url));
                return;
            }
            Ok(TrackerUrl::Udp { host, url_data, .. }) => (host, url_data),
        };
        let key = (torrent, url);
        let job = match self.current.get(&key) {
            Some(job) => *job,
            None => {
                self.next_job += 1;
                let job = UdpJob(self.next_job);
                self.current.insert(key.clone(), job);
                self.jobs.insert(job, key);
                job
            }
        };
        let queued = Queued {
            job,
            request,
            url_data,
        };
        if !self.hosts.contains_key(&host) {
            if let Ok(addr) = host.parse::<SocketAddr>() {
                self.hosts.insert(host.clone(), Host::At(addr));
            }
        }
        match self.hosts.get_mut(&host) {
            Some(Host::At(addr)) => {
                let addr = *addr;
                self.client(addr)
                    .announce(now, job, queued.request, &queued.url_data);
                self.collect();
            }
            Some(Host::Resolving(waiting)) => {
                waiting.retain(|q| q.job != job);
                waiting.push(queued);
            }
            None => {
                let id = ids.next_id();
                self.out.push_back(Output::Resolve {
                    request: id,
                    host: host.clone(),
                });
                self.resolving.insert(id, host.clone());
                self.hosts.insert(host, Host::Resolving(vec![queued]));
            }
        }
    }

    fn client(&mut self, addr: SocketAddr) -> &mut UdpTrackerClient {
        let rng = &mut self.rng;
        self.clients
            .entry(addr)
            .or_insert_with(|| UdpTrackerClient::new(addr, rng.child_seed()))
    }

    /// An HTTP answer; false if `request` is not an announce.
    pub(super) fn handle_http(
        &mut self,
        request: RequestId,
        result: Result<Vec<u8>, TrackerError>,
    ) -> bool {
        let Some((torrent, url)) = self.http.remove(&request) else {
            return false;
        };
        let result = result.and_then(|body| parse_announce_response(&body));
        self.results.push_back(Announced {
            torrent,
            url,
            result,
        });
        true
    }

    /// A name resolved; false if `request` is not a tracker's.
    pub(super) fn handle_resolved(
        &mut self,
        now: Instant,
        request: RequestId,
        addrs: &[SocketAddr],
    ) -> bool {
        let Some(host) = self.resolving.remove(&request) else {
            return false;
        };
        let Some(Host::Resolving(waiting)) = self.hosts.remove(&host) else {
            return true;
        };
        let Some(&addr) = addrs.first() else {
            // Forgotten, so a later announce asks again.
            for q in waiting {
                self.finish(q.job, Err(TrackerError::BadUrl("host did not resolve")));
            }
            return true;
        };
        self.hosts.insert(host, Host::At(addr));
        for q in waiting {
            self.client(addr)
                .announce(now, q.job, q.request, &q.url_data);
        }
        self.collect();
        true
    }

    /// A datagram; false if no tracker client lives at `from`.
    pub(super) fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        payload: &[u8],
    ) -> bool {
        let Some(client) = self.clients.get_mut(&from) else {
            return false;
        };
        client.handle_datagram(now, payload);
        self.collect();
        true
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for client in self.clients.values_mut() {
            if client.poll_timeout().is_some_and(|t| t <= now) {
                client.handle_timeout(now);
            }
        }
        self.collect();
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.clients.values().filter_map(|c| c.poll_timeout()).min()
    }

    /// The next request or datagram for the driver.
    pub(super) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next announce outcome.
    pub(super) fn poll_result(&mut self) -> Option<Announced> {
        self.results.pop_front()
    }

    /// No announce in flight.
    pub(super) fn is_quiet(&self) -> bool {
        self.http.is_empty()
            && self.resolving.is_empty()
            && self.clients.values().all(|c| !c.is_busy())
    }

    /// Drops everything of a removed torrent.
    pub(super) fn forget(&mut self, torrent: TorrentId) {
        self.http.retain(|_, (t, _)| *t != torrent);
        let jobs: Vec<UdpJob> = self
            .jobs
            .iter()
            .filter(|(_, (t, _))| *t == torrent)
            .map(|(j, _)| *j)
            .collect();
        for job in jobs {
            for c in self.clients.values_mut() {
                c.cancel(job);
            }
            for h in self.hosts.values_mut() {
                if let Host::Resolving(waiting) = h {
                    waiting.retain(|q| q.job != job);
                }
            }
            if let Some(key) = self.jobs.remove(&job) {
                self.current.remove(&key);
            }
        }
    }

    fn finish(&mut self, job: UdpJob, result: Result<AnnounceResponse, TrackerError>) {
        if let Some((torrent, url)) = self.jobs.remove(&job) {
            self.current.remove(&(torrent, url.clone()));
            self.results.push_back(Announced {
                torrent,
                url,
                result,
            });
        }
    }

    /// Moves the clients' datagrams out and their results here.
    fn collect(&mut self) {
        let mut done = Vec::new();
        for client in self.clients.values_mut() {
            while let Some((to, payload)) = client.poll_transmit() {
                self.out.push_back(Output::Udp { to, payload });
            }
            while let Some(e) = client.poll_event() {
                done.push(e);
            }
        }
        for e in done {
            match e {
                UdpTrackerEvent::Announced(job, r) => self.finish(job, Ok(r)),
                UdpTrackerEvent::Failed(job, err) => self.finish(job, Err(err)),
                UdpTrackerEvent::Scraped(..) => {}
            }
        }
    }
}
