//! What arrives: datagrams (queries answered, replies fed to lookups and
//! the routing table, BEP 42 id votes) and timeouts.

use super::*;

impl Dht {
    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.now = now;
        // BEP 32: a node answers on its own family's socket only.
        if !self.config.table.family.holds(&from) {
            return;
        }
        let Ok(msg) = Message::decode(bytes) else {
            return;
        };
        match msg.body {
            Body::Query(q) => {
                // BEP 43: a read-only node answers nothing.
                if self.config.read_only {
                    return;
                }
                // We must not be an amplifier: the query pays into the
                // byte budget, and a source over its rate is ignored (the
                // answer's bytes are checked once its size is known, in
                // `reply`).
                let key = budget::source_key(from, self.config.table.allow_local);
                if self.budget.admit(now, key, bytes.len()) {
                    self.on_query(now, from, msg.tx, msg.id, msg.read_only, q);
                }
            }
            Body::Response(r) => {
                let Some(ctx) = self.tx.complete(&msg.tx, from) else {
                    return;
                };
                if let Some(ip) = msg.ip {
                    self.vote(ip.ip());
                }
                let node = msg.id.map(|id| CompactNode { id, addr: from });
                if let Some(n) = node {
                    if !msg.read_only {
                        self.table_insert(now, n, true);
                    }
                }
                self.on_response(now, from, node, ctx, r);
            }
            Body::Error(code, _) => match self.tx.complete(&msg.tx, from) {
                Some(Context::CrawlSample) if code == code::METHOD_UNKNOWN => {
                    if let Some(c) = &mut self.crawler {
                        c.on_unsupported(from);
                    }
                }
                Some(ctx) => self.on_failed(now, from, ctx),
                None => {}
            },
        }
        self.crawl_step(now);
        self.send_queued(now);
    }

    pub(super) fn table_insert(&mut self, now: Instant, node: CompactNode, responded: bool) {
        if self.config.enforce_node_ids && !security::id_matches(&node.id, &node.addr.ip()) {
            return;
        }
        if let Insert::Full { ping: Some(old) } = self.table.insert(now, node, responded) {
            self.table_pings.retain(|_, until| *until > now);
            if self.table_pings.len() < MAX_TABLE_PINGS && !self.table_pings.contains_key(&old.addr)
            {
                let until = now + self.config.query_timeout;
                self.table_pings.insert(old.addr, until);
                self.query(now, old.addr, Query::Ping, Context::Ping);
            }
        }
    }

    pub(super) fn vote(&mut self, ip: IpAddr) {
        if self.votes.len() > 64 && !self.votes.contains_key(&ip) {
            return;
        }
        *self.votes.entry(ip).or_default() += 1;
        let total: u32 = self.votes.values().sum();
        let best = self
            .votes
            .iter()
            .max_by_key(|(_, v)| **v)
            .map(|(ip, v)| (*ip, *v));
        if let Some((ip, v)) = best {
            if total >= 3 && v * 2 > total && self.external != Some(ip) {
                self.external = Some(ip);
                self.events.push_back(DhtEvent::ExternalAddress(ip));
                if self.config.secure_id && !security::id_matches(&self.id, &ip) {
                    self.take_secure_id(ip);
                }
            }
        }
    }

    /// BEP 42: a new id derived from `ip`; the table is rebuilt around it
    /// and a lookup of the new id tells our new neighbours.
    pub(super) fn take_secure_id(&mut self, ip: IpAddr) {
        let now = self.now;
        let mut fill = [0u8; 17];
        self.rng.fill(&mut fill);
        let rand = self.rng.below(256) as u8;
        let id = security::secure_id(&ip, rand, fill);
        let old = std::mem::replace(
            &mut self.table,
            RoutingTable::new(id, self.config.table.clone()),
        );
        for e in old.nodes() {
            let state = e.state(now);
            if state != NodeState::Bad {
                let _ = self.table.insert(now, e.node, state == NodeState::Good);
            }
        }
        self.id = id;
        self.events.push_back(DhtEvent::IdChanged(id));
        let l = self.start_lookup(now, id, LookupKind::FindNode);
        self.step(now, l);
    }

    pub(super) fn on_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tx: Vec<u8>,
        id: Option<NodeId>,
        read_only: bool,
        q: Query,
    ) {
        if let (Some(id), false) = (id, read_only) {
            self.table_insert(now, CompactNode { id, addr: from }, false);
            if let Some(c) = &mut self.crawler {
                c.discover(from);
            }
        }
        if let (Some(id), Query::GetPeers { info_hash, .. }) = (id, &q) {
            self.harvest(
                now,
                *info_hash,
                CompactNode { id, addr: from },
                HarvestSource::GetPeers,
            );
        }
        let closest = |dht: &Dht, target: &NodeId| -> (Vec<CompactNode>, Vec<CompactNode>) {
            // Only nodes that answered us: one that only queried may
            // have a forged address (issue 12).
            let all = dht.table.closest_answered(target, K * 2);
            let (v6, v4): (Vec<CompactNode>, Vec<CompactNode>) =
                all.into_iter().partition(|n| n.addr.is_ipv6());
            (
                v4.into_iter().take(K).collect(),
                v6.into_iter().take(K).collect(),
            )
        };
        let nodes_for = |dht: &Dht, target: &NodeId, want: Want| -> Response {
            let (v4, v6) = closest(dht, target);
            let (w4, w6) = if want.v4 || want.v6 {
                (want.v4, want.v6)
            } else {
                (from.is_ipv4(), from.is_ipv6())
            };
            Response {
                nodes: if w4 { v4 } else { Vec::new() },
                nodes6: if w6 { v6 } else { Vec::new() },
                ..Response::default()
            }
        };
        let body = match q {
            Query::Ping => Body::Response(Response::default()),
            Query::FindNode { target, want } => Body::Response(nodes_for(self, &target, want)),
            Query::GetPeers {
                info_hash,
                want,
                scrape,
                noseed,
            } => {
                let values =
                    self.store
                        .get(now, &info_hash, MAX_VALUES_SENT, noseed, &mut self.rng);
                let mut r = if values.is_empty() {
                    nodes_for(self, &NodeId(info_hash.0), want)
                } else {
                    Response::default()
                };
                r.values = values;
                if scrape {
                    // BEP 33: 512 bytes more (the reply budget counts
                    // them like any answer).
                    let (seeds, peers) = self.store.blooms(now, &info_hash);
                    r.bf_seeds = Some(Box::new(seeds));
                    r.bf_peers = Some(Box::new(peers));
                }
                r.token = Some(self.tokens.issue(&from.ip()).to_vec());
                Body::Response(r)
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
                seed,
            } => {
                if !self.tokens.check(&from.ip(), &token) {
                    Body::Error(code::PROTOCOL, "bad token".into())
                } else {
                    let port = if implied_port { from.port() } else { port };
                    if let Some(id) = id {
                        let node = CompactNode { id, addr: from };
                        self.harvest(now, info_hash, node, HarvestSource::AnnouncePeer);
                    }
                    if port != 0 {
                        self.store
                            .add(now, info_hash, SocketAddr::new(from.ip(), port), seed);
                    }
                    Body::Response(Response::default())
                }
            }
            Query::SampleInfohashes { target, want } => {
                let mut r = nodes_for(self, &target, want);
                r.samples = self.store.sample(MAX_SAMPLES_SENT, &mut self.rng);
                r.num = Some(self.store.torrents() as u64);
                r.interval = Some(6 * 3600);
                Body::Response(r)
            }
            Query::Unknown { .. } => Body::Error(code::METHOD_UNKNOWN, "Method Unknown".into()),
        };
        self.reply(now, from, tx, body);
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        node: Option<CompactNode>,
        ctx: Context,
        r: Response,
    ) {
        match ctx {
            Context::Ping => {
                if let Some(n) = node {
                    self.events.push_back(DhtEvent::Pong { node: n });
                }
            }
            Context::Announce => {}
            Context::Sample => {
                if let Some(n) = node {
                    let nodes = r.nodes.iter().chain(&r.nodes6).copied().collect();
                    self.events.push_back(DhtEvent::Samples {
                        node: n,
                        hashes: r.samples,
                        num: r.num,
                        interval: r.interval,
                        nodes,
                    });
                }
            }
            Context::CrawlSample | Context::CrawlFindNode => {
                let nodes = self.acceptable_nodes(&r);
                let Some(c) = &mut self.crawler else {
                    return;
                };
                let new = c.on_answer(now, from, &r.samples, r.interval, &nodes);
                if let Some(n) = node {
                    for hash in new {
                        self.events.push_back(DhtEvent::Harvested {
                            info_hash: hash,
                            node: n,
                            source: HarvestSource::Sample,
                        });
                    }
                }
            }
            Context::Lookup {
                lookup,
                node: asked,
            } => {
                let acceptable = self.acceptable_nodes(&r);
                if let Some(c) = &mut self.crawler {
                    for n in &acceptable {
                        c.discover(n.addr);
                    }
                }
                let Some(l) = self.lookups.get_mut(&lookup) else {
                    return;
                };
                l.in_flight = l.in_flight.saturating_sub(1);
                let target = l.target;
                // The answering node (known id, or learned from a
                // bootstrap answer).
                let answered_id = asked.or(node.map(|n| n.id));
                let mut parent_hop = 0;
                if let Some(id) = answered_id {
                    let key = id.distance(&target);
                    let state = CandidateState::Answered {
                        token: r.token.clone(),
                    };
                    match l.candidates.get_mut(&key) {
                        Some(c) => {
                            c.state = state;
                            parent_hop = c.hop;
                        }
                        None if asked.is_none() => {
                            if let Some(n) = node {
                                l.candidates.insert(
                                    key,
                                    Candidate {
                                        node: n,
                                        state,
                                        hop: 1,
                                        attempts: 1,
                                    },
                                );
                                parent_hop = 1;
                            }
                        }
                        None => {}
                    }
                }
                for n in acceptable {
                    let key = n.id.distance(&target);
                    l.candidates.entry(key).or_insert(Candidate {
                        node: n,
                        state: CandidateState::Fresh,
                        hop: parent_hop + 1,
                        attempts: 0,
                    });
                }
                while l.candidates.len() > MAX_CANDIDATES {
                    l.candidates.pop_last();
                }
                if let (LookupKind::GetPeers { scrape: true }, Some(seeds), Some(peers)) =
                    (l.kind, &r.bf_seeds, &r.bf_peers)
                {
                    // One node's filters stand for what one node can store.
                    if seeds.is_plausible() && peers.is_plausible() {
                        let merged = l.blooms.get_or_insert_with(Default::default);
                        merged.0.merge(seeds);
                        merged.1.merge(peers);
                    }
                }
                if !r.values.is_empty()
                    && matches!(
                        l.kind,
                        LookupKind::GetPeers { .. } | LookupKind::Announce { .. }
                    )
                {
                    let fresh: Vec<SocketAddr> = r
                        .values
                        .iter()
                        .filter(|p| l.peers.insert(**p))
                        .copied()
                        .collect();
                    if !fresh.is_empty() {
                        self.events.push_back(DhtEvent::Peers {
                            lookup,
                            info_hash: InfoHash(target.0),
                            peers: fresh,
                        });
                    }
                }
                let _ = from;
                self.step(now, lookup);
            }
        }
    }

    /// The nodes of an answer we may contact: not us, not in an ignored
    /// network.
    pub(super) fn acceptable_nodes(&self, r: &Response) -> Vec<CompactNode> {
        r.nodes
            .iter()
            .chain(&r.nodes6)
            .filter(|n| n.id != self.id && self.table.acceptable(&n.addr).is_ok())
            .copied()
            .collect()
    }

    pub(super) fn on_failed(&mut self, now: Instant, to: SocketAddr, ctx: Context) {
        if matches!(ctx, Context::CrawlSample | Context::CrawlFindNode) {
            if let Some(c) = &mut self.crawler {
                c.on_failure(now, to);
            }
        }
        match ctx {
            Context::Ping
            | Context::Announce
            | Context::Sample
            | Context::CrawlSample
            | Context::CrawlFindNode => {
                let id = self
                    .table
                    .nodes()
                    .find(|e| e.node.addr == to)
                    .map(|e| e.node.id);
                if let Some(id) = id {
                    self.table.failed(now, &id);
                }
            }
            Context::Lookup { lookup, node } => {
                if let Some(id) = node {
                    self.table.failed(now, &id);
                }
                if let Some(l) = self.lookups.get_mut(&lookup) {
                    l.in_flight = l.in_flight.saturating_sub(1);
                    if let Some(id) = node {
                        if let Some(c) = l.candidates.get_mut(&id.distance(&l.target)) {
                            // One retry: on a lossy path a single timeout
                            // says little.
                            c.state = if c.attempts < 2 {
                                CandidateState::Fresh
                            } else {
                                CandidateState::Failed
                            };
                        }
                    }
                }
                self.step(now, lookup);
            }
        }
    }

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for (to, ctx) in self.tx.expire(now) {
            self.on_failed(now, to, ctx);
        }
        self.tokens.maintain(now, &mut self.rng);
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH_CHECK;
            self.store.expire(now);
            let stale_before = Instant::from_nanos(
                now.as_nanos()
                    .saturating_sub(BUCKET_STALE.as_nanos() as u64),
            );
            if !self.table.is_empty() && self.lookups.len() < 4 {
                for b in self.table.stale_buckets(stale_before).into_iter().take(2) {
                    let mut r = [0u8; 20];
                    self.rng.fill(&mut r);
                    let target = self.table.random_id_in_bucket(b, r);
                    self.find_node(now, target);
                }
            }
            // Questionable nodes get a ping so dead ones are found.
            let questionable: Vec<SocketAddr> = self
                .table
                .nodes()
                .filter(|e| e.state(now) == NodeState::Questionable)
                .take(8)
                .map(|e| e.node.addr)
                .collect();
            for addr in questionable {
                self.query(now, addr, Query::Ping, Context::Ping);
            }
        }
        self.crawl_step(now);
        self.send_queued(now);
    }
}
