//! Lookups (BEP 5's iterative search, used by `find_node`, `get_peers`,
//! announces and the crawler): starting, stepping and finishing them.

use super::*;

impl Dht {
    pub(super) fn crawl_step(&mut self, now: Instant) {
        if self.backed_up() {
            return;
        }
        let Some(c) = &mut self.crawler else {
            return;
        };
        for q in c.next_queries(now) {
            let mut r = [0u8; 20];
            self.rng.fill(&mut r);
            // A random target: the answer's nodes come from anywhere.
            let target = NodeId(r);
            match q {
                CrawlQuery::Sample(addr) => self.query(
                    now,
                    addr,
                    Query::SampleInfohashes {
                        target,
                        want: Want::default(),
                    },
                    Context::CrawlSample,
                ),
                CrawlQuery::FindNode(addr) => self.query(
                    now,
                    addr,
                    Query::FindNode {
                        target,
                        want: Want::default(),
                    },
                    Context::CrawlFindNode,
                ),
            }
        }
    }

    /// While crawling, reports `hash` (met at `now`) if it is new.
    pub(super) fn harvest(
        &mut self,
        now: Instant,
        hash: InfoHash,
        node: CompactNode,
        source: HarvestSource,
    ) {
        if let Some(c) = &mut self.crawler {
            if c.remember(now, hash) {
                self.events.push_back(DhtEvent::Harvested {
                    info_hash: hash,
                    node,
                    source,
                });
            }
        }
    }

    pub(super) fn start_lookup(
        &mut self,
        now: Instant,
        target: NodeId,
        kind: LookupKind,
    ) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let mut l = Lookup {
            target,
            kind,
            candidates: BTreeMap::new(),
            in_flight: 0,
            peers: BTreeSet::new(),
            queries: 0,
            blooms: None,
        };
        for node in self.table.closest(now, &target, K * 2) {
            l.candidates.insert(
                node.id.distance(&target),
                Candidate {
                    node,
                    state: CandidateState::Fresh,
                    hop: 1,
                    attempts: 0,
                },
            );
        }
        self.lookups.insert(id, l);
        id
    }

    /// Sends queries for a lookup, or ends it.
    pub(super) fn step(&mut self, now: Instant, id: LookupId) {
        let Some(l) = self.lookups.get_mut(&id) else {
            return;
        };
        let alpha = self.config.alpha.max(1);
        let mut to_ask = Vec::new();
        let mut unfinished = false;
        let mut seen = 0;
        let mut in_flight = l.in_flight;
        for c in l.candidates.values_mut() {
            if c.state == CandidateState::Failed {
                continue;
            }
            seen += 1;
            if seen > K {
                break;
            }
            match c.state {
                CandidateState::Fresh => {
                    unfinished = true;
                    if in_flight < alpha {
                        c.state = CandidateState::Asked;
                        c.attempts += 1;
                        in_flight += 1;
                        to_ask.push(c.node);
                    }
                }
                CandidateState::Asked => unfinished = true,
                _ => {}
            }
        }
        l.in_flight = in_flight;
        l.queries += to_ask.len();
        let (target, kind) = (l.target, l.kind);
        for node in to_ask {
            let q = match kind {
                LookupKind::FindNode | LookupKind::Bootstrap => Query::FindNode {
                    target,
                    want: Want::default(),
                },
                LookupKind::GetPeers { scrape } => Query::GetPeers {
                    info_hash: InfoHash(target.0),
                    want: Want::default(),
                    scrape,
                    noseed: false,
                },
                // A seed does not need other seeds (BEP 33 `noseed`).
                LookupKind::Announce { seed, .. } => Query::GetPeers {
                    info_hash: InfoHash(target.0),
                    want: Want::default(),
                    scrape: false,
                    noseed: seed,
                },
            };
            self.query(
                now,
                node.addr,
                q,
                Context::Lookup {
                    lookup: id,
                    node: Some(node.id),
                },
            );
        }
        let in_flight = self.lookups.get(&id).map_or(0, |l| l.in_flight);
        if !unfinished && in_flight == 0 {
            self.finish(now, id);
        }
    }

    pub(super) fn finish(&mut self, now: Instant, id: LookupId) {
        let Some(l) = self.lookups.remove(&id) else {
            return;
        };
        let answered: Vec<&Candidate> = l
            .candidates
            .values()
            .filter(|c| matches!(c.state, CandidateState::Answered { .. }))
            .take(K)
            .collect();
        if let LookupKind::Announce {
            port,
            implied_port,
            seed,
        } = l.kind
        {
            let mut sent = 0;
            for c in &answered {
                if let CandidateState::Answered { token: Some(token) } = &c.state {
                    let q = Query::AnnouncePeer {
                        info_hash: InfoHash(l.target.0),
                        port,
                        token: token.clone(),
                        implied_port,
                        seed,
                    };
                    self.query(now, c.node.addr, q, Context::Announce);
                    sent += 1;
                }
            }
            self.events.push_back(DhtEvent::Announced {
                lookup: id,
                nodes: sent,
            });
        }
        if let Some((seeds, peers)) = &l.blooms {
            self.events.push_back(DhtEvent::Scraped {
                lookup: id,
                info_hash: InfoHash(l.target.0),
                seeders: seeds.count(),
                leechers: peers.count(),
            });
        }
        let rounds = answered.iter().map(|c| c.hop).max().unwrap_or(0);
        self.events.push_back(DhtEvent::LookupDone {
            lookup: id,
            closest: answered.iter().map(|c| c.node).collect(),
            queries: l.queries,
            rounds,
        });
        if l.kind == LookupKind::Bootstrap {
            // BEP 5's join finds our neighbours; a lookup into every bucket's
            // range then fills the far buckets too (as libtorrent does after
            // bootstrapping), so lookups from here converge anywhere.
            for b in 0..self.table.bucket_count() {
                let mut r = [0u8; 20];
                self.rng.fill(&mut r);
                let target = self.table.random_id_in_bucket(b, r);
                let l = self.start_lookup(now, target, LookupKind::FindNode);
                self.step(now, l);
            }
        }
    }
}
