//! bittide's Transmission RPC (`/transmission/rpc`, issue 16) driven by
//! what really speaks it: the PyPI client `transmission-rpc` (the
//! virtualenv of `./scripts/test`, see `compat_python`), and a replay of
//! the calls Sonarr's `TransmissionProxy` makes, against a `bittide
//! daemon` downloading from libtorrent seeders on loopback: statuses
//! move to seeding, the data is byte-identical, unwanted files are absent,
//! verify/move/queue/remove do what they say. Then bad
//! input: wrong credentials, a missing or stale session id, malformed
//! JSON, unknown methods and ids, a huge body — each gets Transmission's
//! own answer and changes nothing.
//!
//! Needs python3-libtorrent and opentracker (installed by
//! `./scripts/test`). Every process is bounded and killed on the way out.

use std::time::Duration;

use bittide_tests::compat::{
    daemon_with_credentials, make, run_python, same_files, seed, small_torrent, PASS, USER,
};
use bittide_tests::daemon::Daemon;
use bittide_tests::TempDir;
use serde_json::Value;

/// Runs a `transmission-rpc` (or `requests`) script against `d`: its
/// `sys.argv[1:4]` are the port and credentials, then `args`.
fn python(d: &Daemon, script: &str, args: &[&str], limit: Duration) -> Value {
    let port = d.port.to_string();
    let mut all = vec![port.as_str(), USER, PASS];
    all.extend_from_slice(args);
    run_python(script, &all, limit, &format!("daemon log:\n{}", d.log()))
}

/// Statuses in the order seen, repeats dropped.
fn statuses(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("a status list")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

/// Status numbers never go back once a download started: stopped (0),
/// then checking (2) / waiting (3) / downloading (4), then seeding (6).
fn assert_moves_to_seeding(seen: &[u64], what: &str) {
    assert_eq!(
        seen.last(),
        Some(&6),
        "{what} did not end seeding: {seen:?}"
    );
    assert!(
        seen.contains(&4),
        "{what} was never seen downloading: {seen:?}"
    );
    let rank = |s: u64| match s {
        0 => 0,
        1..=3 => 1,
        4 => 2,
        _ => 3,
    };
    let after_start: Vec<u64> = seen.iter().copied().skip_while(|s| *s == 0).collect();
    assert!(
        after_start.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "{what} went backwards: {seen:?}"
    );
}

const CLIENT_SCRIPT: &str = r#"
import json, pathlib, sys, time
from transmission_rpc import Client
from transmission_rpc.error import TransmissionAuthError, TransmissionError

port, user, password, torrent, magnet, dl2, dl3 = sys.argv[1:8]
port = int(port)

try:
    Client(host="127.0.0.1", port=port, username=user, password="wrong", timeout=20)
    raise SystemExit("a wrong password was accepted")
except TransmissionAuthError:
    pass

c = Client(host="127.0.0.1", port=port, username=user, password=password, timeout=20)
s = c.get_session()
assert s.rpc_version >= 15 and s.rpc_version_minimum <= s.rpc_version, s.fields
assert s.version.split(" ")[0] >= "4.0", s.version
for key in ["download-dir", "seedRatioLimit", "seedRatioLimited", "idle-seeding-limit",
            "idle-seeding-limit-enabled", "rpc-version-semver", "peer-port", "speed-limit-down"]:
    assert key in s.fields, key

c.set_session(seed_ratio_limit=4.5, seed_ratio_limited=False, idle_seeding_limit=90,
              idle_seeding_limit_enabled=True, speed_limit_down=5000, speed_limit_down_enabled=False)
s = c.get_session()
assert s.seed_ratio_limit == 4.5 and not s.seed_ratio_limited, s.fields
assert s.idle_seeding_limit == 90 and s.idle_seeding_limit_enabled, s.fields
assert s.fields["speed-limit-down-enabled"] is False, s.fields
c.set_session(idle_seeding_limit_enabled=False)
assert not c.get_session().idle_seeding_limit_enabled

FIELDS = ["id", "hashString", "name", "downloadDir", "totalSize", "sizeWhenDone", "leftUntilDone",
          "isFinished", "eta", "status", "rateDownload", "rateUpload", "percentDone",
          "secondsDownloading", "secondsSeeding", "errorString", "uploadedEver", "downloadedEver",
          "seedRatioLimit", "seedRatioMode", "seedIdleLimit", "seedIdleMode", "files", "fileStats",
          "priorities", "wanted", "peers", "trackers", "labels", "addedDate", "doneDate"]

# By metainfo, paused, one file unwanted from the start.
t = c.add_torrent(pathlib.Path(torrent), paused=True, files_unwanted=[2], labels=["tv", "sonarr"])
tid = t.id
again = c.add_torrent(pathlib.Path(torrent))
assert again.id == tid, "a duplicate got another id"
g = c.get_torrent(tid, arguments=FIELDS)
for f in FIELDS:
    assert f in g.fields, f
assert g.status == "stopped", g.status
assert sorted(g.labels) == ["sonarr", "tv"], g.labels
assert len(g.fields["files"]) == 3 and g.fields["wanted"] == [1, 1, 0], g.fields
assert g.seed_ratio_mode.value == 0 and g.fields["seedIdleMode"] == 0
# A second file left out while paused (torrent-set files-unwanted).
c.change_torrent(tid, files_unwanted=[1])
g = c.get_torrent(tid, arguments=FIELDS)
assert [f.selected for f in g.get_files()] == [True, False, False], g.fields["fileStats"]
assert g.fields["sizeWhenDone"] == g.fields["files"][0]["length"], g.fields

def follow(ident, until, limit=90.0):
    seen, last = [], None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        g = c.get_torrent(ident, arguments=FIELDS)
        st = g.fields["status"]
        if st != last:
            seen.append(st)
            last = st
        if until(g):
            return seen, g
        time.sleep(0.05)
    raise SystemExit("timed out: %r %r" % (seen, g.fields))

c.start_torrent(tid)
seen_a, g = follow(tid, lambda g: g.fields["status"] == 6 and g.fields["percentDone"] == 1)
seen_a = [0] + seen_a
assert g.fields["leftUntilDone"] == 0 and g.fields["doneDate"] > 0 and g.fields["eta"] == -1, g.fields
assert g.fields["downloadedEver"] >= g.fields["sizeWhenDone"], g.fields
assert g.fields["isFinished"] is False

# By magnet (metadata from the peer in x.pe), into another folder.
m = c.add_torrent(magnet, download_dir=dl2)
mid = m.id
assert mid != tid
seen_m, g = follow(mid, lambda g: g.fields["status"] == 6 and g.fields["percentDone"] == 1)
assert g.fields["downloadDir"] == dl2, g.fields

# Stop and start again, by hash.
h = g.hashString
c.stop_torrent(h)
assert c.get_torrent(mid, arguments=["status"]).fields["status"] == 0
c.start_torrent([h])
follow(mid, lambda g: g.fields["status"] == 6, limit=30.0)

# ids: numbers, hashes, recently-active.
both = c.get_torrents([tid, h], arguments=["id"])
assert sorted(x.id for x in both) == sorted([tid, mid])
active, removed = c.get_recently_active_torrents(arguments=["id"])
assert {x.id for x in active} == {tid, mid} and removed == []
stats = c.session_stats()
assert stats.torrent_count == 2, stats.fields

# Verify (back to seeding, nothing fetched again), reannounce, move the
# data while seeding, and the queue.
before = c.get_torrent(mid, arguments=FIELDS).fields["downloadedEver"]
c.verify_torrent(mid)
follow(mid, lambda g: g.fields["status"] == 6 and g.fields["percentDone"] == 1, limit=60.0)
c.reannounce_torrent(tid)
c.move_torrent_data(mid, dl3)
g = c.get_torrent(mid, arguments=FIELDS)
assert g.fields["downloadDir"] == dl3, g.fields
assert g.fields["downloadedEver"] == before, (before, g.fields)
c.queue_top(mid)
pos = lambda: {t.id: t.fields["queuePosition"] for t in c.get_torrents(arguments=["queuePosition"])}
assert pos() == {mid: 0, tid: 1}, pos()
c.queue_bottom(mid)
assert pos() == {tid: 0, mid: 1}, pos()
print(json.dumps({"a": {"id": tid, "hash": t.hashString, "seen": seen_a},
                  "m": {"id": mid, "hash": h, "seen": seen_m}}))
"#;

const REMOVE_SCRIPT: &str = r#"
import json, sys
from transmission_rpc import Client
port, user, password, keep, drop = sys.argv[1:6]
c = Client(host="127.0.0.1", port=int(port), username=user, password=password, timeout=20)
c.remove_torrent([drop], delete_data=True)
c.remove_torrent(int(keep))
left = c.get_torrents(arguments=["id"])
active, removed = c.get_recently_active_torrents(arguments=["id"])
print(json.dumps({"left": len(left), "removed": sorted(removed)}))
"#;

#[test]
fn transmission_rpc_client_adds_follows_and_removes_downloads_from_libtorrent() {
    let dir = TempDir::new("compat-tr");
    let show = make(
        dir.path(),
        "show",
        &[
            ("a-e01.mkv", 900_000),
            ("b-e02.mkv", 300_000),
            ("c-extra.nfo", 70_000),
        ],
        7,
        true,
    );
    let show = seed(show, 600_000);
    let movie = seed(
        make(dir.path(), "movie.bin", &[("", 700_000)], 50, false),
        600_000,
    );
    let (daemon, download) = daemon_with_credentials(dir.path(), &[]);
    let dl2 = dir.path().join("dl2");
    let dl3 = dir.path().join("dl3");
    std::fs::create_dir_all(&dl2).unwrap();
    std::fs::create_dir_all(&dl3).unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=movie.bin&x.pe=127.0.0.1:{}",
        movie.hash, movie.port
    );
    let out = python(
        &daemon,
        CLIENT_SCRIPT,
        &[
            show.torrent.to_str().unwrap(),
            &magnet,
            dl2.to_str().unwrap(),
            dl3.to_str().unwrap(),
        ],
        Duration::from_secs(240),
    );
    eprintln!("transmission-rpc run: {out}");
    assert_eq!(out["a"]["hash"], show.hash.as_str());
    assert_eq!(out["m"]["hash"], movie.hash.as_str());
    assert_moves_to_seeding(&statuses(&out["a"]["seen"]), "the metainfo torrent");
    assert_moves_to_seeding(&statuses(&out["m"]["seen"]), "the magnet");
    same_files(&show, &download, &[1, 2]);
    // Moved by torrent-set-location: in dl3, no longer in dl2.
    same_files(&movie, &dl3, &[]);
    assert!(!dl2.join("movie.bin").exists(), "the move left a copy");

    let a_id = out["a"]["id"].to_string();
    let gone = python(
        &daemon,
        REMOVE_SCRIPT,
        &[&a_id, &movie.hash],
        Duration::from_secs(60),
    );
    assert_eq!(gone["left"], 0);
    let mut removed_ids: Vec<i64> = [&out["a"]["id"], &out["m"]["id"]]
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    removed_ids.sort_unstable();
    assert_eq!(gone["removed"], serde_json::json!(removed_ids));
    assert!(
        !dl3.join("movie.bin").exists(),
        "delete-local-data left the data"
    );
    // Removed without its data: the file stays.
    same_files(&show, &download, &[1, 2]);
}

const SONARR_SCRIPT: &str = r#"
import base64, json, sys, time
import requests
port, user, password, torrent, dl = sys.argv[1:6]
url = "http://127.0.0.1:%s/transmission/rpc" % port
http = requests.Session()
http.trust_env = False
auth = (user, password)
sid = None

def get_session_id():
    # TransmissionProxy.GetSessionId: a bare request, expecting 409.
    r = http.get(url, auth=auth, timeout=20)
    assert r.status_code == 409, (r.status_code, r.text)
    return r.headers["X-Transmission-Session-Id"]

def call(method, arguments=None):
    # TransmissionProxy.ProcessRequest: one retry after a 409.
    global sid
    if not sid:
        sid = get_session_id()
    body = {"method": method}
    if arguments is not None:
        body["arguments"] = arguments
    r = http.post(url, json=body, auth=auth, headers={"X-Transmission-Session-Id": sid}, timeout=20)
    if r.status_code == 409:
        sid = get_session_id()
        r = http.post(url, json=body, auth=auth, headers={"X-Transmission-Session-Id": sid}, timeout=20)
    assert r.status_code == 200, (r.status_code, r.text)
    data = r.json()
    assert data["result"] == "success", (method, data)
    return data["arguments"]

# A stale id (Transmission restarted) is answered 409 and replaced.
sid = "0123456789stale"
config = call("session-get")
assert config["version"].startswith("4."), config
assert config["rpc-version"] >= 14
for key in ["download-dir", "seedRatioLimit", "seedRatioLimited", "idle-seeding-limit",
            "idle-seeding-limit-enabled"]:
    assert key in config, key

with open(torrent, "rb") as f:
    data = f.read()
added = call("torrent-add", {"metainfo": base64.b64encode(data).decode(), "download-dir": dl,
                             "labels": ["tv-sonarr"]})
info = added["torrent-added"]
h = info["hashString"]
call("torrent-set", {"ids": [h], "seedRatioLimit": 1.0, "seedRatioMode": 1, "seedIdleLimit": 20,
                     "seedIdleMode": 1})
call("queue-move-top", {"ids": [h]})

FIELDS = ["id", "hashString", "name", "downloadDir", "totalSize", "leftUntilDone", "isFinished",
          "eta", "status", "secondsDownloading", "secondsSeeding", "errorString", "uploadedEver",
          "downloadedEver", "seedRatioLimit", "seedRatioMode", "seedIdleLimit", "seedIdleMode",
          "fileCount", "file-count", "labels"]
seen = []
started = time.monotonic()
deadline = started + 90
while True:
    torrents = call("torrent-get", {"fields": FIELDS, "ids": [h]})["torrents"]
    assert len(torrents) == 1, torrents
    t = torrents[0]
    if not seen or seen[-1] != t["status"]:
        seen.append(t["status"])
    if t["leftUntilDone"] == 0 and t["status"] == 6:
        break
    assert time.monotonic() < deadline, (seen, t)
    time.sleep(0.1)
assert t["downloadDir"] == dl and t["labels"] == ["tv-sonarr"] and t["errorString"] == "", t
# The torrent's own seeding goals, as torrent-set gave them.
assert (t["seedRatioMode"], t["seedRatioLimit"], t["seedIdleMode"], t["seedIdleLimit"]) == \
    (1, 1.0, 1, 20), t
assert t["name"] == info["name"] and t["id"] == info["id"], (t, info)
# The whole list as Sonarr polls it (no ids).
everything = call("torrent-get", {"fields": FIELDS})["torrents"]
assert [x["hashString"] for x in everything] == [h]
call("torrent-remove", {"ids": [h], "delete-local-data": True})
assert call("torrent-get", {"fields": FIELDS, "ids": [h]})["torrents"] == []
print(json.dumps({"seen": seen, "hash": h, "name": t["name"],
                  "seconds": round(time.monotonic() - started, 1)}))
"#;

#[test]
fn sonarr_transmission_proxy_sequence() {
    let dir = TempDir::new("compat-tr-sonarr");
    let ep = make(dir.path(), "Show.S01E01.mkv", &[("", 800_000)], 20, true);
    let ep = seed(ep, 600_000);
    let (daemon, _download) = daemon_with_credentials(dir.path(), &[]);
    let tv = dir.path().join("tv");
    std::fs::create_dir_all(&tv).unwrap();
    let out = python(
        &daemon,
        SONARR_SCRIPT,
        &[ep.torrent.to_str().unwrap(), tv.to_str().unwrap()],
        Duration::from_secs(180),
    );
    eprintln!("sonarr replay: {out}");
    assert_eq!(out["hash"], ep.hash.as_str());
    assert_eq!(out["name"], "Show.S01E01.mkv");
    assert_moves_to_seeding(&statuses(&out["seen"]), "Sonarr's torrent");
    assert!(
        !tv.join("Show.S01E01.mkv").exists(),
        "torrent-remove with delete-local-data left the file"
    );
}

const BAD_INPUT_SCRIPT: &str = r#"
import json, sys
import requests
port, user, password, torrent = sys.argv[1:5]
url = "http://127.0.0.1:%s/transmission/rpc" % port
http = requests.Session()
http.trust_env = False
auth = (user, password)
out = {}

# No credentials, wrong ones: 401 before anything else (even the 409).
for name, a in [("none", None), ("wrong", (user, "nope"))]:
    r = http.post(url, json={"method": "session-get"}, auth=a, timeout=20)
    out["auth_" + name] = [r.status_code, r.headers.get("WWW-Authenticate", "")]
# No session id, then a stale one: 409 with the header.
r = http.post(url, json={"method": "torrent-remove", "arguments": {}}, auth=auth, timeout=20)
sid = r.headers.get("X-Transmission-Session-Id")
out["no_sid"] = [r.status_code, bool(sid)]
r = http.post(url, json={"method": "torrent-remove"}, auth=auth,
              headers={"X-Transmission-Session-Id": "stale"}, timeout=20)
out["stale_sid"] = [r.status_code, r.headers.get("X-Transmission-Session-Id") == sid]
h = {"X-Transmission-Session-Id": sid}

def raw(body, **kw):
    r = http.post(url, data=body, auth=auth, headers=h, timeout=20, **kw)
    try:
        return [r.status_code, r.json()]
    except ValueError:
        return [r.status_code, None]

def call(method, arguments=None, tag=None):
    body = {"method": method}
    if arguments is not None:
        body["arguments"] = arguments
    if tag is not None:
        body["tag"] = tag
    return raw(json.dumps(body))

out["malformed"] = raw('{"method": "torrent-get", "argu')
out["not_object"] = raw('[1, 2, 3]')
out["unknown_method"] = call("torrent-explode", {}, tag=42)
out["no_method"] = call("", {})
out["args_not_object"] = raw('{"method": "torrent-get", "arguments": [1]}')
out["get_no_fields"] = call("torrent-get", {})
out["get_unknown_ids"] = call("torrent-get", {"fields": ["id"], "ids": [999, "ab" * 20]})
out["get_bad_ids"] = call("torrent-get", {"fields": ["id"], "ids": {"x": 1}})
out["stop_unknown"] = call("torrent-stop", {"ids": [999]})
out["remove_unknown"] = call("torrent-remove", {"ids": ["cd" * 20], "delete-local-data": True})
out["add_nothing"] = call("torrent-add", {})
out["add_garbage"] = call("torrent-add", {"metainfo": "bm90IGEgdG9ycmVudA=="})
out["add_not_base64"] = call("torrent-add", {"metainfo": "***"})
out["add_relative_dir"] = call("torrent-add", {"metainfo": "bm90", "download-dir": "rel/dir"})
out["add_local_path"] = call("torrent-add", {"filename": "/etc/passwd"})
out["add_bad_magnet"] = call("torrent-add", {"filename": "magnet:?dn=nohash"})
out["add_bad_labels"] = call("torrent-add", {"filename": "magnet:?xt=urn:btih:" + "ef" * 20,
                                             "labels": ["a,b"]})
out["set_location_relative"] = call("torrent-set-location", {"ids": [1], "location": "x", "move": True})
out["set_bad_type"] = call("torrent-set", {"ids": [1], "downloadLimit": "fast"})
out["session_set_relative"] = call("session-set", {"download-dir": "relative"})
out["session_set_bad_ratio"] = call("session-set", {"seedRatioLimit": -1})
# A body far over the cap: refused by its Content-Length before any of it
# is read (a raw socket, so the client is not still sending when refused).
import base64, socket
with socket.create_connection(("127.0.0.1", int(port)), timeout=20) as sock:
    basic = base64.b64encode(("%s:%s" % auth).encode()).decode()
    sock.sendall(("POST /transmission/rpc HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
                  "Authorization: Basic %s\r\nX-Transmission-Session-Id: %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  '{"method": "session-get", "arguments": {"x": "aaaa'
                  % (port, basic, sid, 1 << 30)).encode())
    out["huge"] = int(sock.recv(64).split(b" ")[1])
# What is there afterwards: the one torrent, as it was.
out["after"] = call("torrent-get", {"fields": ["id", "hashString", "status", "labels"]})[1]
out["session_after"] = call("session-get", {"fields": ["download-dir", "seedRatioLimit"]})[1]
print(json.dumps(out))
"#;

#[test]
fn bad_input_gets_transmissions_answers_and_changes_nothing() {
    let dir = TempDir::new("compat-tr-bad");
    // One torrent in the session (added paused through the RPC), so that
    // "nothing changes" is checked against something.
    let (torrent, _) = small_torrent(dir.path(), "f.bin", 100_000, 3);
    let (daemon, download) = daemon_with_credentials(dir.path(), &[]);
    let added = python(
        &daemon,
        r#"
import json, pathlib, sys
from transmission_rpc import Client
c = Client(host="127.0.0.1", port=int(sys.argv[1]), username=sys.argv[2], password=sys.argv[3])
t = c.add_torrent(pathlib.Path(sys.argv[4]), paused=True, labels=["keep"])
print(json.dumps({"id": t.id, "hash": t.hashString}))
"#,
        &[torrent.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let out = python(
        &daemon,
        BAD_INPUT_SCRIPT,
        &[torrent.to_str().unwrap()],
        Duration::from_secs(120),
    );
    let result = |key: &str| out[key][1]["result"].as_str().unwrap_or("").to_owned();
    assert_eq!(out["auth_none"][0], 401, "{out:#}");
    assert!(out["auth_none"][1].as_str().unwrap().starts_with("Basic"));
    assert_eq!(out["auth_wrong"][0], 401);
    assert_eq!(out["no_sid"], serde_json::json!([409, true]));
    assert_eq!(out["stale_sid"], serde_json::json!([409, true]));
    for key in ["malformed", "not_object", "unknown_method", "no_method"] {
        assert_eq!(out[key][0], 200, "{key}: {out:#}");
        assert_eq!(result(key), "no method name", "{key}: {out:#}");
    }
    assert_eq!(out["unknown_method"][1]["tag"], 42, "the tag comes back");
    assert_eq!(result("get_no_fields"), "no fields specified");
    assert_eq!(result("get_unknown_ids"), "success");
    assert_eq!(
        out["get_unknown_ids"][1]["arguments"]["torrents"],
        serde_json::json!([])
    );
    assert_ne!(result("get_bad_ids"), "success");
    assert_eq!(result("stop_unknown"), "success");
    assert_eq!(result("remove_unknown"), "success");
    assert_eq!(result("add_nothing"), "no filename or metainfo specified");
    assert_eq!(result("add_garbage"), "invalid or corrupt torrent file");
    assert_eq!(result("add_not_base64"), "invalid or corrupt torrent file");
    assert_eq!(
        result("add_relative_dir"),
        "download directory path is not absolute"
    );
    for key in [
        "add_local_path",
        "add_bad_magnet",
        "set_bad_type",
        "session_set_bad_ratio",
    ] {
        assert_ne!(result(key), "success", "{key}: {out:#}");
    }
    assert_eq!(
        result("add_bad_labels"),
        "labels cannot contain comma (,) character"
    );
    assert_eq!(
        result("set_location_relative"),
        "new location path is not absolute"
    );
    assert_eq!(
        result("session_set_relative"),
        "download directory path is not absolute"
    );
    assert_eq!(out["huge"], 413);
    let after = &out["after"]["arguments"]["torrents"];
    assert_eq!(
        *after,
        serde_json::json!([{"id": added["id"], "hashString": added["hash"], "status": 0, "labels": ["keep"]}]),
        "{out:#}"
    );
    let session = &out["session_after"]["arguments"];
    assert_eq!(session["download-dir"], download.to_str().unwrap());
    assert_eq!(session["seedRatioLimit"], 2.0);
}
