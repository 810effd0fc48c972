//! Web seeds (BEP 19) through the daemon: a torrent whose only sources
//! are an nginx web seed and a second URL that answers 404 downloads to
//! completion, and the three APIs show its web seeds — the real
//! `qbittorrent-api` client (`torrents/webseeds`), the real
//! `transmission-rpc` client (`webseeds`, `webseedsSendingToUs`) and
//! bittide's own API (`web_seeds`, with each seed's state, bytes and
//! error).

use std::time::Duration;

use bittide_tests::compat::{daemon_with_credentials, run_python, PASS, USER};
use bittide_tests::nginx::Nginx;
use bittide_tests::{assert_same_file, content_bytes, run_bittide, TempDir};

const SCRIPT: &str = r#"
import json, sys, time
import qbittorrentapi, requests
from transmission_rpc import Client
base, user, password, torrent = sys.argv[1:5]
host, port = base.rsplit(":", 1)
q = qbittorrentapi.Client(host=host, port=int(port), username=user, password=password,
                          REQUESTS_ARGS={"timeout": 20})
q.auth_log_in()
q.torrents_add(torrent_files=torrent)
deadline = time.time() + 60
while True:
    info = q.torrents_info()
    if info and info[0].progress == 1:
        break
    if time.time() > deadline:
        raise SystemExit("not complete: %s" % info)
    time.sleep(0.2)
h = info[0].hash
out = {"qbt": [w.url for w in q.torrents_webseeds(torrent_hash=h)]}
t = Client(host="127.0.0.1", port=int(port), username=user, password=password, timeout=20)
tr = t.get_torrent(h, arguments=["id", "webseeds", "webseedsSendingToUs"])
out["transmission"] = {"webseeds": tr.fields["webseeds"],
                       "sending": tr.fields["webseedsSendingToUs"]}
native = requests.get(base + "/api/v1/torrents/" + h, auth=(user, password), timeout=20).json()
out["native"] = native["web_seeds"]
out["save_path"] = info[0].save_path
print(json.dumps(out))
"#;

#[test]
fn the_daemon_downloads_from_web_seeds_and_every_api_shows_them() {
    let dir = TempDir::new("daemon-ws");
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("files")).unwrap();
    let data = root.join("files/web.bin");
    std::fs::write(&data, content_bytes(3 << 20, 5)).unwrap();
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    let good = nginx.url("/files/web.bin");
    let missing = nginx.url("/nothing/web.bin");
    let torrent = dir.path().join("web.torrent");
    run_bittide(&[
        "create",
        data.to_str().unwrap(),
        "--piece-size",
        "64K",
        "--web-seed",
        &good,
        "--web-seed",
        &missing,
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let (d, download) = daemon_with_credentials(dir.path(), &[]);
    let r = run_python(
        SCRIPT,
        &[&d.api, USER, PASS, torrent.to_str().unwrap()],
        Duration::from_secs(120),
        &format!("daemon log:\n{}", d.log()),
    );
    eprintln!("{r:#}");
    assert_same_file(&data, &download.join("web.bin"));
    assert_eq!(r["qbt"], serde_json::json!([good, missing]));
    assert_eq!(
        r["transmission"]["webseeds"],
        serde_json::json!([good, missing])
    );
    assert_eq!(
        r["transmission"]["sending"], 0,
        "complete: nothing in flight"
    );
    let native = r["native"].as_array().expect("web_seeds");
    assert_eq!(native[0]["url"], good);
    assert_eq!(native[0]["downloaded"], 3 << 20);
    assert_eq!(native[0]["error"], serde_json::Value::Null);
    assert_eq!(native[1]["url"], missing);
    assert_eq!(native[1]["downloaded"], 0);
    assert_eq!(native[1]["error"], "HTTP status 404");
}
