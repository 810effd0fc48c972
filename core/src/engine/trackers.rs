//! The engine's side of trackers: every torrent's announces, multiplexed.
//!
//! HTTP announces become [`Output::Http`] requests. UDP trackers get one
//! [`UdpTrackerClient`] per tracker *address*, shared by every torrent
//! announcing there: one connection id, one retransmission ladder per
//! request, answers routed by transaction id inside the client and back to
//! their torrent by [`UdpJob`] here. A `udp://` host name is resolved once
//! ([`Output::Resolve`]); announces wait for it. URLs are parsed by
//! [`TrackerUrl`], the one parser the tools use too.
//!
//! An announce goes out once per address family we listen on
//! ([`EngineConfig::listen_families`](super::EngineConfig)): BEP 7 asks for
//! an announce from each address a client listens on, so a dual-stack
//! tracker hands out both of ours and never one we do not listen on. (The
//! BEP's older `&ipv4=`/`&ipv6=` parameters are not sent: it now
//! discourages them, since they let anyone announce a victim's address.)
//! An HTTP request names the family to connect over; a `udp://` host's
//! resolved addresses give one tracker address per family; a tracker whose
//! host is an IP literal is asked over its own family only. The torrent
//! hears one answer per announce, a [`Round`]: the first success, or a
//! failure once every family failed (or, when one family failed, the
//! others have had [`FAMILY_GRACE`] to do better: a family whose path
//! loses everything must not hold the torrent's tier for a UDP tracker's
//! whole retransmission ladder); a later success only adds its peers.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::{Output, RequestId, RequestIds};
use crate::handles::TorrentId;
use crate::metainfo::InfoHash;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::torrent::peers::PeerSource;
use crate::tracker::http::{announce_url, parse_announce_response};
use crate::tracker::udp::{UdpJob, UdpTrackerClient, UdpTrackerEvent};
use crate::tracker::{AnnounceRequest, AnnounceResponse, TrackerError, TrackerUrl};
use crate::IpFamily;

/// How long the other families may take once one family's announce
/// failed, before the torrent hears that failure.
pub(super) const FAMILY_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// An announce's outcome, for its torrent.
#[derive(Debug)]
pub(super) struct Announced {
    pub torrent: TorrentId,
    /// The name it was announced under: the torrent's info-hash, or a
    /// hybrid's v2 name (BEP 52), whose answers only bring peers.
    pub name: InfoHash,
    pub url: String,
    pub result: Result<AnnounceResponse, TrackerError>,
    /// The round was already answered: only the peers are news.
    pub late: bool,
}

/// One announce of a torrent to a tracker, over every family it goes out
/// on.
#[derive(Debug)]
struct Round {
    id: u64,
    /// Families not yet answered.
    waiting: usize,
    /// Whether the torrent has heard its answer.
    answered: bool,
    /// A family's failure, told when the other families have not done
    /// better by the instant beside it.
    failed: Option<(Instant, TrackerError)>,
}

/// A torrent under one of its names (a hybrid announces under both,
/// BEP 52; each name has its own rounds).
type Swarm = (TorrentId, InfoHash);

/// Who an announce in flight is for: a torrent's swarm, its tracker URL,
/// the family it goes over.
type Asker = (Swarm, String, Option<IpFamily>);

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
    /// Every address the name resolved to.
    At(Vec<SocketAddr>),
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Trackers {
    rng: Rng,
    now: Instant,
    /// The families announces go out on (empty: the tracker's first).
    families: Vec<IpFamily>,
    /// Requests and datagrams for the driver, in order.
    out: VecDeque<Output>,
    /// HTTP announces in flight, with their round.
    http: BTreeMap<RequestId, (Asker, u64)>,
    /// The round of each torrent and URL: a new announce replaces it.
    rounds: BTreeMap<(Swarm, String), Round>,
    next_round: u64,
    /// Name lookups in flight, by the `host:port` they resolve.
    resolving: BTreeMap<RequestId, String>,
    hosts: BTreeMap<String, Host>,
    clients: BTreeMap<SocketAddr, UdpTrackerClient>,
    /// Whose each UDP request is.
    jobs: BTreeMap<UdpJob, Asker>,
    /// The request of each torrent, URL and family: a new announce
    /// replaces it.
    current: BTreeMap<Asker, UdpJob>,
    next_job: u64,
    results: VecDeque<Announced>,
}

impl Trackers {
    pub(super) fn new(seed: Seed, families: Vec<IpFamily>) -> Trackers {
        Trackers {
            rng: Rng::new(seed),
            now: Instant::ZERO,
            families,
            out: VecDeque::new(),
            http: BTreeMap::new(),
            rounds: BTreeMap::new(),
            next_round: 0,
            resolving: BTreeMap::new(),
            hosts: BTreeMap::new(),
            clients: BTreeMap::new(),
            jobs: BTreeMap::new(),
            current: BTreeMap::new(),
            next_job: 0,
            results: VecDeque::new(),
        }
    }

    /// The families announces go out on from now on.
    pub(super) fn set_families(&mut self, families: Vec<IpFamily>) {
        self.families = families;
    }

    /// Announces `request` for `torrent` to `url`, over each family.
    pub(super) fn announce(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        url: String,
        request: AnnounceRequest,
        ids: &mut RequestIds,
    ) {
        self.now = now;
        let swarm = (torrent, request.info_hash);
        let parsed = match TrackerUrl::parse(&url) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.results.push_back(Announced {
                    torrent,
                    name: request.info_hash,
                    url,
                    result: Err(e),
                    late: false,
                });
                return;
            }
        };
        let families: Vec<Option<IpFamily>> = match parsed.literal_family() {
            Some(f) => vec![Some(f)],
            None if self.families.is_empty() => vec![None],
            None => self.families.iter().copied().map(Some).collect(),
        };
        self.next_round += 1;
        let round = self.next_round;
        self.rounds.insert(
            (swarm, url.clone()),
            Round {
                id: round,
                waiting: families.len(),
                answered: false,
                failed: None,
            },
        );
        for family in families {
            let asker = (swarm, url.clone(), family);
            match &parsed {
                TrackerUrl::Http(base) => {
                    let id = ids.next_id();
                    self.out.push_back(Output::Http {
                        request: id,
                        url: announce_url(base, &request),
                        family,
                    });
                    self.http.insert(id, (asker, round));
                }
                TrackerUrl::Udp { host, url_data, .. } => {
                    let queued = Queued {
                        job: self.job(asker),
                        request: request.clone(),
                        url_data: url_data.clone(),
                    };
                    self.announce_udp(now, host, queued, ids);
                }
            }
        }
    }

    /// The UDP job of `asker`, made if it has none.
    fn job(&mut self, asker: Asker) -> UdpJob {
        if let Some(job) = self.current.get(&asker) {
            return *job;
        }
        self.next_job += 1;
        let job = UdpJob(self.next_job);
        self.current.insert(asker.clone(), job);
        self.jobs.insert(job, asker);
        job
    }

    fn announce_udp(&mut self, now: Instant, host: &str, queued: Queued, ids: &mut RequestIds) {
        if !self.hosts.contains_key(host) {
            if let Ok(addr) = host.parse::<SocketAddr>() {
                self.hosts.insert(host.to_owned(), Host::At(vec![addr]));
            }
        }
        match self.hosts.get_mut(host) {
            Some(Host::At(addrs)) => {
                let addrs = addrs.clone();
                self.send_udp(now, &addrs, queued);
                self.collect();
            }
            Some(Host::Resolving(waiting)) => {
                waiting.retain(|q| q.job != queued.job);
                waiting.push(queued);
            }
            None => {
                let id = ids.next_id();
                self.out.push_back(Output::Resolve {
                    request: id,
                    host: host.to_owned(),
                });
                self.resolving.insert(id, host.to_owned());
                self.hosts
                    .insert(host.to_owned(), Host::Resolving(vec![queued]));
            }
        }
    }

    /// Hands `queued` to the client at the tracker's address of its
    /// family (any address when it has none).
    fn send_udp(&mut self, now: Instant, addrs: &[SocketAddr], queued: Queued) {
        let family = self.jobs.get(&queued.job).and_then(|(_, _, f)| *f);
        let addr = addrs
            .iter()
            .find(|a| family.is_none_or(|f| f.holds(a)))
            .copied();
        match (addr, family) {
            (Some(addr), _) => {
                self.client(addr)
                    .announce(now, queued.job, queued.request, &queued.url_data);
            }
            (None, Some(f)) => {
                let why = format!("the tracker has no {f} address");
                self.finish(queued.job, Err(TrackerError::Unreachable(why)));
            }
            (None, None) => {
                let why = TrackerError::BadUrl("host did not resolve");
                self.finish(queued.job, Err(why));
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
        now: Instant,
        request: RequestId,
        result: Result<Vec<u8>, TrackerError>,
    ) -> bool {
        self.now = now;
        let Some(((swarm, url, _), round)) = self.http.remove(&request) else {
            return false;
        };
        let result = result.and_then(|body| parse_announce_response(&body));
        self.answer(swarm, url, Some(round), result);
        true
    }

    /// A name resolved; false if `request` is not a tracker's.
    pub(super) fn handle_resolved(
        &mut self,
        now: Instant,
        request: RequestId,
        addrs: &[SocketAddr],
    ) -> bool {
        self.now = now;
        let Some(host) = self.resolving.remove(&request) else {
            return false;
        };
        let Some(Host::Resolving(waiting)) = self.hosts.remove(&host) else {
            return true;
        };
        if !addrs.is_empty() {
            // Else forgotten, so a later announce asks again.
            self.hosts.insert(host, Host::At(addrs.to_vec()));
        }
        for q in waiting {
            self.send_udp(now, addrs, q);
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
        self.now = now;
        let Some(client) = self.clients.get_mut(&from) else {
            return false;
        };
        client.handle_datagram(now, payload);
        self.collect();
        true
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for client in self.clients.values_mut() {
            if client.poll_timeout().is_some_and(|t| t <= now) {
                client.handle_timeout(now);
            }
        }
        self.collect();
        // Failures whose other families had their grace.
        for (((torrent, name), url), r) in self.rounds.iter_mut() {
            if let Some((_, error)) = r.failed.take_if(|(at, _)| *at <= now) {
                r.answered = true;
                self.results.push_back(Announced {
                    torrent: *torrent,
                    name: *name,
                    url: url.clone(),
                    result: Err(error),
                    late: false,
                });
            }
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let rounds = self.rounds.values().filter_map(|r| r.failed.as_ref());
        let clients = self.clients.values().filter_map(|c| c.poll_timeout());
        rounds.map(|(at, _)| *at).chain(clients).min()
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
        self.http.retain(|_, (((t, _), _, _), _)| *t != torrent);
        self.rounds.retain(|((t, _), _), _| *t != torrent);
        let jobs: Vec<UdpJob> = self
            .jobs
            .iter()
            .filter(|(_, ((t, _), _, _))| *t == torrent)
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
        if let Some(asker) = self.jobs.remove(&job) {
            self.current.remove(&asker);
            let (swarm, url, _) = asker;
            self.answer(swarm, url, None, result);
        }
    }

    /// One family's answer to the round `round` (`None`: the current one,
    /// for UDP, whose newer request replaces an older one in its client).
    fn answer(
        &mut self,
        swarm: Swarm,
        url: String,
        round: Option<u64>,
        result: Result<AnnounceResponse, TrackerError>,
    ) {
        let key = (swarm, url);
        let current = self
            .rounds
            .get_mut(&key)
            .filter(|r| round.is_none_or(|id| id == r.id));
        let (tell, late) = match current {
            // An answer to a round already over: its peers are still news.
            None => (result.is_ok(), true),
            Some(r) => {
                r.waiting = r.waiting.saturating_sub(1);
                let late = r.answered;
                let tell = match &result {
                    Ok(_) => true,
                    Err(_) => r.waiting == 0 && !r.answered,
                };
                r.answered |= tell;
                if r.answered {
                    r.failed = None;
                } else if let Err(e) = &result {
                    // Told at the grace's end unless another family does
                    // better first.
                    let at = r
                        .failed
                        .as_ref()
                        .map_or(self.now + FAMILY_GRACE, |(at, _)| *at);
                    r.failed = Some((at, e.clone()));
                }
                if r.waiting == 0 {
                    self.rounds.remove(&key);
                }
                (tell, late)
            }
        };
        if tell {
            let ((torrent, name), url) = key;
            self.results.push_back(Announced {
                torrent,
                name,
                url,
                result,
                late,
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

impl super::Engine {
    /// The address families we accept peers on, once the driver knows
    /// which it could bind ([`EngineConfig::listen_families`]); announces
    /// made from now on go out over each.
    pub fn set_listen_families(&mut self, families: Vec<IpFamily>) {
        self.trackers.set_families(families.clone());
        self.config.listen_families = families;
    }

    /// Hands the trackers' requests to the driver and their answers to
    /// the torrents.
    pub(super) fn collect_trackers(&mut self, now: Instant) {
        while let Some(o) = self.trackers.poll_output() {
            self.out.push_back(o);
        }
        while let Some(a) = self.trackers.poll_result() {
            let Some(t) = self.torrents.get_mut(&a.torrent) else {
                continue;
            };
            match a.result {
                // A hybrid's v2 announce (BEP 52): its peers, dialled
                // with that name; the v1 announce drives the tracker's
                // state.
                Ok(r) if a.name != t.info_hash() => {
                    t.add_peers_named(now, r.peers, PeerSource::Tracker, a.name);
                }
                _ if a.name != t.info_hash() => {}
                Ok(r) if a.late => t.handle_announce_peers(now, &a.url, r.peers),
                result => t.handle_announce(now, &a.url, result),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{Engine, EngineConfig, Event};
    use super::*;
    use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
    use crate::rng::Seed;
    use crate::torrent::{StartMode, TorrentEvent, TorrentInfo};
    use crate::tracker::server::{ServerConfig, TrackerServer};

    /// A one-piece torrent (its bytes from `salt`) announcing to `tracker`.
    pub(in crate::engine) fn info(salt: u8, tracker: &str) -> TorrentInfo {
        let data = vec![salt; 16384];
        let mut b = TorrentBuilder::single_file(format!("f{salt}"), data.len() as u64);
        b.set_piece_length(16384);
        b.add_tracker_tier(vec![tracker.to_owned()]);
        let mut h = PieceHasher::new(16384);
        h.update(&data);
        let bytes = b.build(&h.finish()).expect("builds");
        TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("parses"))
    }

    /// Every output up to the next timeout.
    pub(in crate::engine) fn drain(e: &mut Engine, now: Instant) -> Vec<Output> {
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
