//! Session budgets under real transfers: engines back to back on a
//! virtual clock, one seeding several torrents to another whose
//! `SessionLimits` split its download rate and connections among them.

use std::collections::BTreeMap;

use super::*;
use crate::metainfo::FileSlice;
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::torrent::TorrentEvent;

/// An engine with several torrents and their disks, for transfers.
struct Peer {
    engine: Engine,
    addr: SocketAddr,
    /// Each torrent's bytes, files end to end.
    disks: BTreeMap<TorrentId, (crate::metainfo::FileLayout, Vec<u8>)>,
    /// When each torrent finished.
    finished: BTreeMap<TorrentId, Instant>,
}

fn content(n: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32 * 7 + n * 13) as u8).collect()
}

fn info_of(n: u32, data: &[u8]) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file(format!("y{n}"), data.len() as u64);
    b.set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(data);
    let bytes = b.build(&h.finish()).expect("builds");
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("parses"))
}

/// Where a slice lies in a torrent's disk.
fn span(layout: &crate::metainfo::FileLayout, s: &FileSlice) -> std::ops::Range<usize> {
    let at = (layout.file_range(s.file).map_or(0, |r| r.start) + s.offset) as usize;
    at..at + s.length as usize
}

fn disk_job(peer: &mut Peer, torrent: TorrentId, op: DiskOp) -> DiskResult {
    let (layout, disk) = peer.disks.get_mut(&torrent).expect("a disk");
    match op {
        DiskOp::Read {
            conn,
            block,
            slices,
        } => {
            let data = slices.iter().flat_map(|s| disk[span(layout, s)].to_vec());
            DiskResult::Read {
                conn,
                block,
                data: Some(data.collect()),
            }
        }
        DiskOp::Verify {
            first,
            pieces,
            blocks,
            slices,
        } => {
            let verdicts = run_verdicts(&pieces, &blocks);
            let ok = verdicts.iter().all(|&v| v);
            if ok {
                let all = blocks.concat();
                let mut at = 0;
                for s in &slices {
                    let r = span(layout, s);
                    let len = r.len();
                    disk[r].copy_from_slice(&all[at..at + len]);
                    at += len;
                }
            }
            DiskResult::Verified {
                first,
                verdicts,
                written: ok,
            }
        }
        DiskOp::Check { piece, .. } => DiskResult::Checked { piece, ok: false },
        DiskOp::CreateEmpty { .. } => DiskResult::Created { ok: true },
        DiskOp::Write { block, .. } => DiskResult::Written {
            block,
            ok: false,
            hash: None,
        },
    }
}

/// The peers and the connections between them, on one virtual clock.
struct Net {
    peers: Vec<Peer>,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    now: Instant,
    /// Source ports handed out to outgoing connections.
    ports: u16,
    /// The most connections each peer's engine counted after any output.
    most: Vec<usize>,
}

impl Net {
    /// Carries every output out until `until`; connections and the disk
    /// are instant.
    fn run_until(&mut self, until: Instant) {
        let (peers, links) = (&mut self.peers, &mut self.links);
        while self.now < until {
            let now = self.now;
            let mut wake = Instant::MAX;
            let mut busy = true;
            let mut rounds = 0;
            while busy && rounds < 10_000 {
                busy = false;
                rounds += 1;
                for i in 0..peers.len() {
                    loop {
                        let o = peers[i].engine.poll_output(now);
                        match o {
                            Output::Timeout(t) => {
                                wake = wake.min(t);
                                break;
                            }
                            Output::Tcp { conn, action } => match action {
                                TcpAction::Connect(addr) => {
                                    let Some(j) = peers.iter().position(|p| p.addr == addr) else {
                                        peers[i].engine.handle_tcp_failed(now, conn);
                                        continue;
                                    };
                                    self.ports = self.ports.wrapping_add(1);
                                    let from = SocketAddr::new(peers[i].addr.ip(), self.ports);
                                    match peers[j].engine.handle_tcp_incoming(now, from) {
                                        Some(remote) => {
                                            links.insert((i, conn), (j, remote));
                                            links.insert((j, remote), (i, conn));
                                            peers[i].engine.handle_tcp_connected(now, conn);
                                        }
                                        None => peers[i].engine.handle_tcp_failed(now, conn),
                                    }
                                }
                                TcpAction::Send(bytes) => {
                                    if let Some(&(j, rc)) = links.get(&(i, conn)) {
                                        peers[j].engine.handle_tcp_data(now, rc, &bytes);
                                    }
                                    peers[i].engine.handle_tcp_sent(now, conn, bytes.len());
                                }
                                TcpAction::Close => {
                                    if let Some((j, rc)) = links.remove(&(i, conn)) {
                                        links.remove(&(j, rc));
                                        peers[j].engine.handle_tcp_closed(now, rc);
                                    }
                                }
                            },
                            Output::Disk { torrent, op } => {
                                let result = disk_job(&mut peers[i], torrent, op);
                                peers[i].engine.handle_disk(now, torrent, result);
                            }
                            Output::Http { request, .. } => {
                                let err = Err(TrackerError::Unreachable("none".into()));
                                peers[i].engine.handle_http(now, request, err);
                            }
                            Output::Event(Event::Torrent(id, TorrentEvent::Finished)) => {
                                peers[i].finished.insert(id, now);
                            }
                            _ => {}
                        }
                        busy = true;
                        let count = peers[i].engine.connection_count();
                        self.most[i] = self.most[i].max(count);
                    }
                }
            }
            self.now = wake.max(now + Duration::from_millis(1)).min(until);
            for p in peers.iter_mut() {
                p.engine.handle_timeout(self.now);
            }
        }
    }
}

/// A seeder of `count` torrents of `len` bytes each and a leecher of the
/// same under `limits`, connected.
fn seeder_and_leecher_of(count: u32, len: usize, limits: SessionLimits) -> (Net, Vec<TorrentId>) {
    let datas: Vec<Vec<u8>> = (0..count).map(|n| content(n, len)).collect();
    let infos: Vec<TorrentInfo> = datas
        .iter()
        .enumerate()
        .map(|(n, d)| info_of(n as u32, d))
        .collect();
    let mut peers: Vec<Peer> = (0..2u8)
        .map(|i| {
            let config = EngineConfig {
                peer_id: crate::wire::PeerId([i + 1; 20]),
                listen_port: 7000 + u16::from(i),
                limits: if i == 1 {
                    limits.clone()
                } else {
                    SessionLimits::default()
                },
                ..EngineConfig::default()
            };
            Peer {
                engine: Engine::new(config, Seed::from_u64(u64::from(i) + 10)),
                addr: SocketAddr::from(([127, 0, 0, 1 + i], 7000 + u16::from(i))),
                disks: BTreeMap::new(),
                finished: BTreeMap::new(),
            }
        })
        .collect();
    let mut leeched = Vec::new();
    for (info, data) in infos.iter().zip(&datas) {
        for (i, p) in peers.iter_mut().enumerate() {
            let start = if i == 0 {
                StartMode::Trusted(crate::Bitfield::full(info.layout.piece_count()))
            } else {
                StartMode::Fresh
            };
            let id = p
                .engine
                .add_torrent(Instant::ZERO, info.clone(), start)
                .expect("added");
            let disk = if i == 0 {
                data.clone()
            } else {
                vec![0; data.len()]
            };
            p.disks.insert(id, (info.layout.clone(), disk));
            if i == 1 {
                leeched.push(id);
            }
        }
    }
    let seeder = peers[0].addr;
    for id in &leeched {
        peers[1].engine.add_peers(Instant::ZERO, *id, vec![seeder]);
    }
    let net = Net {
        peers,
        links: BTreeMap::new(),
        now: Instant::ZERO,
        ports: 40_000,
        most: vec![0; 2],
    };
    (net, leeched)
}

/// Two busy downloads under a global 100 kB/s: each gets about half, in
/// the shares the engine sets and in the bytes that arrive; with one of
/// them limited to 10 kB/s by the user, the other takes the rest.
#[test]
fn two_busy_downloads_share_the_global_rate() {
    let limits = SessionLimits {
        download_rate: 100_000,
        ..SessionLimits::default()
    };
    let (mut net, ids) = seeder_and_leecher_of(2, 2_000_000, limits);
    let ten = Instant::ZERO + Duration::from_secs(10);
    net.run_until(ten);
    let leecher = &net.peers[1].engine;
    let got: Vec<u64> = ids
        .iter()
        .map(|id| leecher.torrent(*id).expect("listed").counters().1)
        .collect();
    let shares: Vec<u64> = ids
        .iter()
        .map(|id| {
            leecher
                .torrent(*id)
                .expect("listed")
                .effective_rate_limits()
                .1
        })
        .collect();
    assert!(
        shares.iter().all(|s| (40_000..=60_000).contains(s)),
        "shares {shares:?}"
    );
    assert_eq!(shares.iter().sum::<u64>(), 100_000);
    // Ten seconds at 100 kB/s, plus the buckets' first bursts.
    let total: u64 = got.iter().sum();
    assert!(
        (800_000..=1_200_000).contains(&total),
        "{total} bytes in 10 s: {got:?}"
    );
    assert!(got.iter().all(|g| *g * 10 >= total * 4), "uneven: {got:?}");

    // The first limited to 10 kB/s by its user: the second gets the rest.
    let (mut net, ids) = seeder_and_leecher_of(
        2,
        2_000_000,
        SessionLimits {
            download_rate: 100_000,
            ..SessionLimits::default()
        },
    );
    net.peers[1]
        .engine
        .set_rate_limits(Instant::ZERO, ids[0], 0, 10_000);
    net.run_until(ten);
    let leecher = &net.peers[1].engine;
    let got: Vec<u64> = ids
        .iter()
        .map(|id| leecher.torrent(*id).expect("listed").counters().1)
        .collect();
    let shares: Vec<u64> = ids
        .iter()
        .map(|id| {
            leecher
                .torrent(*id)
                .expect("listed")
                .effective_rate_limits()
                .1
        })
        .collect();
    assert_eq!(shares[0], 10_000, "{shares:?}");
    assert!(shares[1] >= 85_000, "{shares:?}");
    assert!(got[0] <= 10 * 10_000 + 100_000, "{got:?}");
    assert!(got[1] >= 700_000, "the rest goes to the other: {got:?}");
}

/// Four downloads from one seeder with `max_connections` 3 and 100 kB/s
/// between them: the connections the engine counts never pass 3 after
/// any output, and every download finishes, the budget going round.
#[test]
fn downloads_finish_within_a_small_connection_budget() {
    let limits = SessionLimits {
        max_connections: 3,
        download_rate: 100_000,
        ..SessionLimits::default()
    };
    let (mut net, ids) = seeder_and_leecher_of(4, 100_000, limits);
    net.run_until(Instant::ZERO + Duration::from_secs(60));
    assert!(net.most[1] <= 3, "{} connections", net.most[1]);
    assert!(net.most[1] >= 1);
    let finished = &net.peers[1].finished;
    assert_eq!(finished.len(), ids.len(), "finished: {finished:?}");
    let last = finished.values().max().copied().unwrap_or(Instant::MAX);
    assert!(
        last <= Instant::ZERO + Duration::from_secs(10),
        "{finished:?}"
    );
}
