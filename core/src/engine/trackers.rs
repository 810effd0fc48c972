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

#[cfg(test)]
mod tests {
    use super::super::{Engine, EngineConfig, Event};
    use super::*;
    use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
    use crate::rng::Seed;
    use crate::torrent::{StartMode, TorrentEvent, TorrentInfo};
    use crate::tracker::server::{ServerConfig, TrackerServer};

    fn info(salt: u8, tracker: &str) -> TorrentInfo {
        let data = vec![salt; 16384];
        let mut b = TorrentBuilder::single_file(format!("f{salt}"), data.len() as u64);
        b.set_piece_length(16384);
        b.add_tracker_tier(vec![tracker.to_owned()]);
        let mut h = PieceHasher::new(16384);
        h.update(&data);
        let bytes = b.build(&h.finish()).expect("builds");
        TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("parses"))
    }

    fn drain(e: &mut Engine, now: Instant) -> Vec<Output> {
        let mut outs = Vec::new();
        loop {
            match e.poll_output(now) {
                Output::Timeout(_) => return outs,
                o => outs.push(o),
            }
        }
    }

    fn datagrams(outs: &[Output]) -> Vec<(SocketAddr, Vec<u8>)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Udp { to, payload } => Some((*to, payload.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn torrents_on_one_udp_tracker_share_its_client() {
        let tracker: SocketAddr = "127.0.0.1:6969".parse().expect("addr");
        let mut server = TrackerServer::new(ServerConfig::default(), Seed::from_u64(3));
        let mut e = Engine::new(EngineConfig::default(), Seed::from_u64(4));
        let now = Instant::ZERO;
        let ids: Vec<_> = (1..=3u8)
            .map(|i| {
                let url = format!("udp://127.0.0.1:6969/announce?t={i}");
                e.add_torrent(now, info(i, &url), StartMode::Fresh)
                    .expect("added")
            })
            .collect();
        let outs = drain(&mut e, now);
        let first = datagrams(&outs);
        assert_eq!(first.len(), 1, "one connect for three torrents: {outs:?}");
        assert_eq!(first[0].0, tracker);
        let me: SocketAddr = "127.0.0.1:6881".parse().expect("addr");
        let mut pending = first;
        let mut replies = Vec::new();
        for _ in 0..4 {
            for (_, packet) in std::mem::take(&mut pending) {
                if let Some(answer) = server.handle_udp(now, me, &packet) {
                    e.handle_udp(now, tracker, &answer);
                }
            }
            let outs = drain(&mut e, now);
            replies.extend(outs.iter().filter_map(|o| match o {
                Output::Event(Event::Torrent(id, TorrentEvent::TrackerReply { url, .. })) => {
                    Some((*id, url.clone()))
                }
                _ => None,
            }));
            pending = datagrams(&outs);
        }
        replies.sort();
        let want: Vec<_> = ids
            .iter()
            .zip(1..=3u8)
            .map(|(id, i)| (*id, format!("udp://127.0.0.1:6969/announce?t={i}")))
            .collect();
        assert_eq!(replies, want, "each torrent hears its own answer");
        assert_eq!(e.trackers.clients.len(), 1);
        for (id, url) in &want {
            let status = e.torrent(*id).expect("running").trackers();
            assert_eq!(status.len(), 1);
            assert_eq!((&status[0].url, status[0].tier), (url, 0));
            assert_eq!((status[0].last, &status[0].error), (Some(now), &None));
        }
    }

    #[test]
    fn a_tracker_host_name_is_resolved_once_for_every_torrent() {
        let mut e = Engine::new(EngineConfig::default(), Seed::from_u64(5));
        let now = Instant::ZERO;
        for i in 1..=2u8 {
            e.add_torrent(now, info(i, "udp://tracker.invalid:6969"), StartMode::Fresh)
                .expect("added");
        }
        let outs = drain(&mut e, now);
        let asks: Vec<_> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Resolve { request, host } => Some((*request, host.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(asks.len(), 1, "{outs:?}");
        assert_eq!(asks[0].1, "tracker.invalid:6969");
        let at: SocketAddr = "127.0.0.7:6969".parse().expect("addr");
        e.handle_resolved(now, asks[0].0, vec![at]);
        let sent = datagrams(&drain(&mut e, now));
        assert_eq!(sent.len(), 1, "one connect to the resolved address");
        assert_eq!(sent[0].0, at);
    }

    #[test]
    fn a_bad_tracker_url_is_reported_to_its_torrent() {
        let mut e = Engine::new(EngineConfig::default(), Seed::from_u64(6));
        let now = Instant::ZERO;
        let id = e
            .add_torrent(
                now,
                info(1, "udp://no-port.invalid/announce"),
                StartMode::Fresh,
            )
            .expect("added");
        let outs = drain(&mut e, now);
        assert!(
            outs.iter().any(|o| matches!(
                o,
                Output::Event(Event::Torrent(t, TorrentEvent::TrackerError { error, .. }))
                    if *t == id && *error == TrackerError::BadUrl("udp tracker URL without a port")
            )),
            "{outs:?}"
        );
        let status = e.torrent(id).expect("added").trackers();
        assert_eq!(status[0].url, "udp://no-port.invalid/announce");
        assert_eq!(
            status[0].error,
            Some(TrackerError::BadUrl("udp tracker URL without a port"))
        );
    }
}
