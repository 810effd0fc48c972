//! Announces over each address family we listen on (BEP 7): one request
//! per family, the torrent hearing one answer per announce and every
//! family's peers.

use super::trackers::tests::drain;
use super::*;
use crate::torrent::TorrentEvent;
use crate::tracker::TrackerError;

fn info(tracker: &str) -> TorrentInfo {
    super::trackers::tests::info(3, tracker)
}

fn dual_stack() -> Engine {
    let config = EngineConfig {
        listen_families: IpFamily::ALL.to_vec(),
        ..EngineConfig::default()
    };
    Engine::new(config, Seed::from_u64(11))
}

fn http(outs: &[Output]) -> Vec<(RequestId, Option<IpFamily>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Http {
                request, family, ..
            } => Some((*request, *family)),
            _ => None,
        })
        .collect()
}

fn tracker_events(outs: &[Output]) -> Vec<&TorrentEvent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Torrent(_, e @ TorrentEvent::TrackerReply { .. }))
            | Output::Event(Event::Torrent(_, e @ TorrentEvent::TrackerError { .. })) => Some(e),
            _ => None,
        })
        .collect()
}

fn connects(outs: &[Output]) -> Vec<SocketAddr> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Tcp {
                action: TcpAction::Connect(a),
                ..
            } => Some(*a),
            _ => None,
        })
        .collect()
}

/// The one name lookup among `outs`.
fn lookup(outs: &[Output]) -> RequestId {
    outs.iter()
        .find_map(|o| match o {
            Output::Resolve { request, .. } => Some(*request),
            _ => None,
        })
        .expect("one lookup")
}

const TRACKER: &str = "http://tracker.example/announce";

/// A dual-stack engine with a torrent announcing to `url`, and the HTTP
/// requests of its first announce.
fn announcing(url: &str) -> (Engine, TorrentId, Vec<(RequestId, Option<IpFamily>)>) {
    let mut e = dual_stack();
    let now = Instant::ZERO;
    let id = e
        .add_torrent(now, info(url), StartMode::Fresh)
        .expect("added");
    let asked = http(&drain(&mut e, now));
    (e, id, asked)
}

/// A compact answer holding `peer` (`peers` or `peers6` by its family).
fn answer(peer: SocketAddr) -> Vec<u8> {
    let (key, mut packed): (&[u8], Vec<u8>) = match peer {
        SocketAddr::V4(a) => (b"5:peers6:", a.ip().octets().to_vec()),
        SocketAddr::V6(a) => (b"6:peers618:", a.ip().octets().to_vec()),
    };
    packed.extend_from_slice(&peer.port().to_be_bytes());
    [b"d8:intervali1800e".as_slice(), key, &packed, b"e"].concat()
}

#[test]
fn an_http_announce_goes_out_once_per_family_and_is_answered_once() {
    let (mut e, id, asked) = announcing(TRACKER);
    let now = Instant::ZERO;
    let families: Vec<_> = asked.iter().map(|(_, f)| *f).collect();
    assert_eq!(families, [Some(IpFamily::V4), Some(IpFamily::V6)]);

    // IPv4 fails, IPv6 answers: the tracker worked.
    e.handle_http(
        now,
        asked[0].0,
        Err(TrackerError::Unreachable("refused".into())),
    );
    assert_eq!(
        tracker_events(&drain(&mut e, now)),
        Vec::<&TorrentEvent>::new()
    );
    let v6: SocketAddr = "[::2]:6881".parse().expect("addr");
    e.handle_http(now, asked[1].0, Ok(answer(v6)));
    let outs = drain(&mut e, now);
    assert_eq!(
        tracker_events(&outs),
        [&TorrentEvent::TrackerReply {
            url: TRACKER.into(),
            peers: 1
        }]
    );
    assert_eq!(connects(&outs), [v6]);
    let status = e.torrent(id).expect("running").trackers();
    assert_eq!((status[0].error.clone(), status[0].peers), (None, 1));
}

#[test]
fn a_second_familys_answer_adds_its_peers_only() {
    let (mut e, id, asked) = announcing(TRACKER);
    let now = Instant::ZERO;
    let (v4, v6): (SocketAddr, SocketAddr) = (
        "127.0.0.2:6881".parse().expect("addr"),
        "[::2]:6881".parse().expect("addr"),
    );
    e.handle_http(now, asked[0].0, Ok(answer(v4)));
    let first = drain(&mut e, now);
    assert_eq!(tracker_events(&first).len(), 1);
    e.handle_http(now, asked[1].0, Ok(answer(v6)));
    let second = drain(&mut e, now);
    assert_eq!(tracker_events(&second), Vec::<&TorrentEvent>::new());
    assert_eq!([connects(&first), connects(&second)].concat(), [v4, v6]);
    let status = e.torrent(id).expect("running").trackers();
    assert_eq!(status[0].peers, 2, "both families' peers counted");
}

#[test]
fn every_family_failing_is_one_error() {
    let (mut e, _, asked) = announcing(TRACKER);
    let now = Instant::ZERO;
    for (n, (request, _)) in asked.iter().enumerate() {
        let why = TrackerError::Unreachable(format!("attempt {n}"));
        e.handle_http(now, *request, Err(why));
    }
    let outs = drain(&mut e, now);
    assert_eq!(
        tracker_events(&outs),
        [&TorrentEvent::TrackerError {
            url: TRACKER.into(),
            error: TrackerError::Unreachable("attempt 1".into())
        }]
    );
}

#[test]
fn a_literal_address_is_asked_over_its_family_and_no_families_over_any() {
    let now = Instant::ZERO;
    let (_, _, asked) = announcing("http://127.0.0.1:9/announce");
    let families: Vec<_> = asked.iter().map(|(_, f)| *f).collect();
    assert_eq!(families, [Some(IpFamily::V4)]);

    let mut e = Engine::new(EngineConfig::default(), Seed::from_u64(12));
    e.add_torrent(now, info(TRACKER), StartMode::Fresh)
        .expect("added");
    let families: Vec<_> = http(&drain(&mut e, now)).iter().map(|(_, f)| *f).collect();
    assert_eq!(families, [None]);
}

#[test]
fn a_udp_tracker_name_gives_one_address_per_family() {
    let now = Instant::ZERO;
    let mut e = dual_stack();
    e.add_torrent(now, info("udp://tracker.example:6969"), StartMode::Fresh)
        .expect("added");
    let resolve = lookup(&drain(&mut e, now));
    let (v4, v6): (SocketAddr, SocketAddr) = (
        "127.0.0.9:6969".parse().expect("addr"),
        "[::9]:6969".parse().expect("addr"),
    );
    e.handle_resolved(
        now,
        resolve,
        vec![v6, v4, "127.0.0.10:6969".parse().expect("a")],
    );
    let mut to: Vec<SocketAddr> = drain(&mut e, now)
        .iter()
        .filter_map(|o| match o {
            Output::Udp { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        [v4, v6],
        "a connect to the first address of each family"
    );

    // A name without an IPv6 address: that family fails alone, silently.
    let mut e = Engine::new(
        EngineConfig {
            listen_families: vec![IpFamily::V6],
            ..EngineConfig::default()
        },
        Seed::from_u64(13),
    );
    let id = e
        .add_torrent(now, info("udp://tracker.example:6969"), StartMode::Fresh)
        .expect("added");
    let resolve = lookup(&drain(&mut e, now));
    e.handle_resolved(now, resolve, vec![v4]);
    let outs = drain(&mut e, now);
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Udp { .. })),
        "{outs:?}"
    );
    let status = e.torrent(id).expect("running").trackers();
    let why = "the tracker has no IPv6 address".to_owned();
    assert_eq!(status[0].error, Some(TrackerError::Unreachable(why)));
}

#[test]
fn a_family_that_never_answers_holds_a_failure_back_for_its_grace_only() {
    let (mut e, _, asked) = announcing(TRACKER);
    let now = Instant::ZERO;
    e.handle_http(
        now,
        asked[0].0,
        Err(TrackerError::Unreachable("refused".into())),
    );
    assert_eq!(
        tracker_events(&drain(&mut e, now)),
        Vec::<&TorrentEvent>::new()
    );
    let almost = now + (super::trackers::FAMILY_GRACE - std::time::Duration::from_millis(1));
    e.handle_timeout(almost);
    assert_eq!(
        tracker_events(&drain(&mut e, almost)),
        Vec::<&TorrentEvent>::new()
    );
    let later = now + super::trackers::FAMILY_GRACE;
    e.handle_timeout(later);
    assert_eq!(
        tracker_events(&drain(&mut e, later)),
        [&TorrentEvent::TrackerError {
            url: TRACKER.into(),
            error: TrackerError::Unreachable("refused".into())
        }],
        "IPv6 still silent: the torrent hears IPv4's failure"
    );
    // IPv6 answers at last: its peers still count.
    let v6: SocketAddr = "[::2]:6881".parse().expect("addr");
    e.handle_http(later, asked[1].0, Ok(answer(v6)));
    let outs = drain(&mut e, later);
    assert_eq!(tracker_events(&outs), Vec::<&TorrentEvent>::new());
    assert_eq!(connects(&outs), [v6]);
}
