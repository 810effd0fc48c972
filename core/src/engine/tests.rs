//! Two engines back to back: a seeder and a leecher find each other through
//! an in-test tracker (HTTP through `Output::Http`) and the leecher
//! downloads everything, with every output carried out by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::*;
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::tracker::http::{encode_announce_response, parse_announce_query};
use crate::tracker::server::{ServerConfig, TrackerServer};

struct Node {
    engine: Engine,
    addr: SocketAddr,
    disk: Vec<u8>,
    torrent: TorrentId,
}

fn info(data: &[u8], tracker: &str) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("e.bin", data.len() as u64);
    b.set_piece_length(16384);
    b.add_tracker_tier(vec![tracker.to_owned()]);
    let mut h = PieceHasher::new(16384);
    h.update(data);
    let bytes = b.build(&h.finish()).unwrap();
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap())
}

#[test]
fn two_engines_and_a_tracker() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let url = "http://127.0.0.1:9/announce";
    let info = info(&data, url);
    let mut tracker = TrackerServer::new(ServerConfig::default(), Seed::from_u64(3));
    let mut nodes: Vec<Node> = (0..2u16)
        .map(|i| {
            let mut config = EngineConfig {
                listen_port: 7000 + i,
                ..EngineConfig::default()
            };
            config.peer_id = PeerId([i as u8 + 1; 20]);
            let mut engine = Engine::new(config, Seed::from_u64(u64::from(i)));
            let start = if i == 0 {
                StartMode::Check
            } else {
                StartMode::Fresh
            };
            let torrent = engine
                .add_torrent(Instant::ZERO, info.clone(), start)
                .unwrap();
            assert!(engine
                .add_torrent(Instant::ZERO, info.clone(), StartMode::Fresh)
                .is_none());
            Node {
                engine,
                addr: SocketAddr::from(([127, 0, 0, 1], 7000 + i)),
                disk: if i == 0 {
                    data.clone()
                } else {
                    vec![0; data.len()]
                },
                torrent,
            }
        })
        .collect();
    // (node, conn) -> (node, conn)
    let mut links: BTreeMap<(usize, ConnId), (usize, ConnId)> = BTreeMap::new();
    let mut now = Instant::ZERO;
    let mut finished = false;
    for _round in 0..10_000 {
        let mut wakes = Vec::new();
        for i in 0..nodes.len() {
            loop {
                let o = nodes[i].engine.poll_output(now);
                match o {
                    Output::Timeout(t) => {
                        wakes.push(t);
                        break;
                    }
                    Output::Tcp { conn, action } => match action {
                        TcpAction::Connect(addr) => {
                            let j = nodes.iter().position(|n| n.addr == addr).unwrap();
                            let from = SocketAddr::from(([127, 0, 0, 1], 40000 + i as u16));
                            let remote = nodes[j].engine.handle_tcp_incoming(now, from).unwrap();
                            links.insert((i, conn), (j, remote));
                            links.insert((j, remote), (i, conn));
                            nodes[i].engine.handle_tcp_connected(now, conn);
                        }
                        TcpAction::Send(bytes) => {
                            if let Some(&(j, rc)) = links.get(&(i, conn)) {
                                nodes[j].engine.handle_tcp_data(now, rc, &bytes);
                            }
                        }
                        TcpAction::Close => {
                            if let Some((j, rc)) = links.remove(&(i, conn)) {
                                links.remove(&(j, rc));
                                nodes[j].engine.handle_tcp_closed(now, rc);
                            }
                        }
                    },
                    Output::Http { request, url } => {
                        let query = url.split_once('?').unwrap().1;
                        let a = parse_announce_query(query.as_bytes()).unwrap();
                        let peer = SocketAddr::new(nodes[i].addr.ip(), a.request.port);
                        let r = tracker.announce(now, peer, &a.request).unwrap();
                        let body = encode_announce_response(&r, true);
                        nodes[i].engine.handle_http(now, request, Ok(body));
                    }
                    Output::Disk { torrent, op } => {
                        let result = match op {
                            DiskOp::Check {
                                piece,
                                slices,
                                hash,
                            } => {
                                let mut h = Sha1::new();
                                for s in slices {
                                    h.update(
                                        &nodes[i].disk
                                            [s.offset as usize..(s.offset + s.length) as usize],
                                    );
                                }
                                DiskResult::Checked {
                                    piece,
                                    ok: <[u8; 20]>::from(h.finalize()) == hash,
                                }
                            }
                            DiskOp::Verify {
                                piece,
                                blocks,
                                hash,
                            } => {
                                let mut h = Sha1::new();
                                for b in blocks {
                                    h.update(&b);
                                }
                                DiskResult::Verified {
                                    piece,
                                    ok: <[u8; 20]>::from(h.finalize()) == hash,
                                }
                            }
                            DiskOp::Write {
                                piece,
                                blocks,
                                slices,
                            } => {
                                let all: Vec<u8> = blocks.concat();
                                let mut at = 0;
                                for s in slices {
                                    let (o, l) = (s.offset as usize, s.length as usize);
                                    nodes[i].disk[o..o + l].copy_from_slice(&all[at..at + l]);
                                    at += l;
                                }
                                DiskResult::Written { piece, ok: true }
                            }
                            DiskOp::Read {
                                conn,
                                block,
                                slices,
                            } => {
                                let mut d = Vec::new();
                                for s in slices {
                                    d.extend_from_slice(
                                        &nodes[i].disk
                                            [s.offset as usize..(s.offset + s.length) as usize],
                                    );
                                }
                                DiskResult::Read {
                                    conn,
                                    block,
                                    data: Some(d),
                                }
                            }
                        };
                        nodes[i].engine.handle_disk(now, torrent, result);
                    }
                    Output::Event(Event::Torrent(_, TorrentEvent::Finished)) if i == 1 => {
                        finished = true
                    }
                    Output::Event(_) | Output::Udp { .. } | Output::Resolve { .. } => {}
                }
            }
        }
        if finished {
            break;
        }
        let next = wakes.into_iter().min().unwrap();
        if next > now {
            now = next;
            for n in nodes.iter_mut() {
                n.engine.handle_timeout(now);
            }
        } else {
            now += Duration::from_millis(1);
        }
    }
    assert!(finished, "the leecher never finished");
    assert_eq!(nodes[1].disk, data);
    assert!(nodes[1]
        .engine
        .torrent(nodes[1].torrent)
        .unwrap()
        .is_finished());
    assert_eq!(tracker.scrape(&[info.info_hash])[0].downloaded, 1);
}
