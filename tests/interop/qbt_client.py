# The qbittorrent-api session of tests/tests/compat_qbittorrent.rs
# (qbittorrent_api_client_drives_downloads_to_completion): run with the
# compat virtualenv's python against a bittide daemon.
import json, sys, time
import qbittorrentapi, requests

args = json.loads(sys.argv[1])
base = args["base"]
out = {}

# Not logged in: 403, which is what makes the *arr apps log in again.
out["probe"] = requests.get(base + "/api/v2/app/webapiVersion", timeout=10).status_code

host, port = base.rsplit(":", 1)
bad = qbittorrentapi.Client(host=host, port=int(port), username=args["user"], password="wrong",
                            REQUESTS_ARGS={"timeout": 20})
try:
    bad.auth_log_in()
    out["bad_login"] = "accepted"
except qbittorrentapi.LoginFailed:
    out["bad_login"] = "refused"

c = qbittorrentapi.Client(host=host, port=int(port), username=args["user"], password=args["password"],
                          REQUESTS_ARGS={"timeout": 20})
c.auth_log_in()
out["version"] = c.app.version
out["webapi"] = c.app.web_api_version
prefs = c.app.preferences
out["save_path"] = prefs["save_path"]
c.app_set_preferences({"max_ratio_enabled": True, "max_ratio": 2.5,
                       "max_seeding_time_enabled": True, "max_seeding_time": 90,
                       "max_inactive_seeding_time_enabled": True,
                       "max_inactive_seeding_time": 600})
prefs = c.app.preferences
out["prefs_after"] = [prefs["max_ratio_enabled"], prefs["max_ratio"],
                      prefs["max_seeding_time_enabled"], prefs["max_seeding_time"],
                      prefs["max_inactive_seeding_time_enabled"],
                      prefs["max_inactive_seeding_time"]]

c.torrents_create_category(name="tv", save_path=args["tv_dir"])
r = c.torrents_add(torrent_files=args["file"], category="tv", tags=["one", "two"],
                   content_layout="Subfolder")
out["add_file"] = r
# Visible at once, as the *arr apps expect.
out["visible_at_once"] = [t.hash for t in c.torrents_info(category="tv")]
r = c.torrents_add(urls=args["magnet"], category="movies", is_stopped=True)
out["add_magnet"] = r
m = c.torrents_info(torrent_hashes=args["magnet_hash"])
out["magnet_added_state"] = m[0].state if m else None
time.sleep(1)
c.torrents_start(torrent_hashes=args["magnet_hash"])

# Poll sync/maindata with rid deltas until both are complete; a local copy
# is kept up to date from the deltas alone.
local = {}
rid = 0
seen = {args["file_hash"]: [], args["magnet_hash"]: []}
full_updates = 0
deltas = 0
removed_seen = []
pieces_during = set()
deadline = time.time() + 150
while time.time() < deadline:
    d = c.sync_maindata(rid=rid)
    if d.get("full_update"):
        full_updates += 1
        local = {h: dict(t) for h, t in d.get("torrents", {}).items()}
    else:
        deltas += 1
        for h, t in d.get("torrents", {}).items():
            local.setdefault(h, {}).update(t)
        for h in d.get("torrents_removed", []):
            local.pop(h, None)
            removed_seen.append(h)
    rid = d["rid"]
    for h in seen:
        s = local.get(h, {}).get("state")
        if s and (not seen[h] or seen[h][-1] != s):
            seen[h].append(s)
    # Mid-download, the piece map shows pieces in flight (1).
    if 0 < local.get(args["file_hash"], {}).get("progress", 0) < 1:
        pieces_during.update(c.torrents_piece_states(torrent_hash=args["file_hash"]))
    if all(local.get(h, {}).get("progress") == 1 and
           local.get(h, {}).get("state") in ("uploading", "stalledUP") for h in seen):
        break
    time.sleep(0.3)
out["states"] = seen
out["pieces_during"] = sorted(pieces_during)
out["full_updates"] = full_updates
out["deltas"] = deltas
# The copy built from deltas matches a fresh list.
fresh = {t["hash"]: t for t in c.torrents_info()}
out["sync_matches"] = all(
    local[h][k] == fresh[h][k] for h in seen for k in ("state", "progress", "category", "tags", "save_path", "size"))

t = c.torrents_info(torrent_hashes=args["file_hash"])[0]
out["file_info"] = {k: t[k] for k in ("name", "size", "total_size", "progress", "state",
                    "category", "tags", "save_path", "content_path", "amount_left", "eta",
                    "completion_on", "added_on", "ratio", "num_seeds", "downloaded")}
out["filters"] = {
    f: sorted(x.hash for x in c.torrents_info(status_filter=f))
    for f in ("all", "completed", "downloading", "seeding", "stopped", "active", "inactive")
}
out["tag_one"] = [x.hash for x in c.torrents_info(tag="one")]
out["cat_movies"] = [x.hash for x in c.torrents_info(category="movies")]
out["sorted_by_size"] = [x.hash for x in c.torrents_info(sort="size", reverse=True)]
out["limit_1"] = len(c.torrents_info(limit=1))

files = c.torrents_files(torrent_hash=args["magnet_hash"])
out["files"] = [[f.index, f.name, f.size, f.progress, f.priority] for f in files]
p = c.torrents_properties(torrent_hash=args["file_hash"])
out["properties"] = {k: p[k] for k in ("save_path", "total_size", "pieces_num", "pieces_have", "piece_size")}
out["trackers"] = [[x.url, x.status] for x in c.torrents_trackers(torrent_hash=args["file_hash"])]
out["pieces"] = sorted(set(c.torrents_piece_states(torrent_hash=args["file_hash"])))

# Stop and start again.
c.torrents_stop(torrent_hashes=args["file_hash"])
out["stopped_state"] = c.torrents_info(torrent_hashes=args["file_hash"])[0].state
c.torrents_start(torrent_hashes=args["file_hash"])
out["started_state"] = c.torrents_info(torrent_hashes=args["file_hash"])[0].state

# Force start: qBittorrent's forced state, ended by a plain start.
c.torrents_set_force_start(enable=True, torrent_hashes=args["file_hash"])
until = time.time() + 10
while True:
    t = c.torrents_info(torrent_hashes=args["file_hash"])[0]
    if t.state == "forcedUP" or time.time() > until:
        break
    time.sleep(0.2)
out["forced"] = [t.state, t.force_start]
out["forced_filter"] = [x.hash for x in c.torrents_info(status_filter="seeding")]
c.torrents_start(torrent_hashes=args["file_hash"])
t = c.torrents_info(torrent_hashes=args["file_hash"])[0]
out["unforced"] = [t.state, t.force_start]

# Tags and categories.
c.torrents_add_tags(tags="three", torrent_hashes=args["file_hash"])
c.torrents_remove_tags(tags="one", torrent_hashes=args["file_hash"])
out["tags_after"] = c.torrents_info(torrent_hashes=args["file_hash"])[0].tags
out["all_tags"] = sorted(c.torrents_tags())
cats = c.torrents_categories()
out["categories"] = {k: v["savePath"] for k, v in cats.items()}
c.torrents_create_category(name="done")
c.torrents_set_category(category="done", torrent_hashes=args["magnet_hash"])
c.torrents_remove_categories(categories="movies")
out["categories_after"] = sorted(c.torrents_categories().keys())
out["magnet_category"] = c.torrents_info(torrent_hashes=args["magnet_hash"])[0].category
try:
    c.torrents_set_category(category="nonexistent", torrent_hashes=args["magnet_hash"])
    out["bad_category"] = "accepted"
except qbittorrentapi.Conflict409Error:
    out["bad_category"] = 409

# Share limits on one torrent.
c.torrents_set_share_limits(ratio_limit=1.5, seeding_time_limit=120,
                            inactive_seeding_time_limit=45, torrent_hashes=args["file_hash"])
t = c.torrents_info(torrent_hashes=args["file_hash"])[0]
out["share_limits"] = [t.ratio_limit, t.seeding_time_limit, t.inactive_seeding_time_limit]
out["transfer"] = sorted(c.transfer_info().keys())

try:
    c.torrents_properties(torrent_hash="00" * 20)
    out["unknown_hash"] = "found"
except qbittorrentapi.NotFound404Error:
    out["unknown_hash"] = 404

# A share limit already reached stops the torrent.
c.torrents_set_share_limits(ratio_limit=0, seeding_time_limit=-1,
                            inactive_seeding_time_limit=-2, torrent_hashes=args["magnet_hash"])
for _ in range(50):
    out["goal_state"] = c.torrents_info(torrent_hashes=args["magnet_hash"])[0].state
    if out["goal_state"] == "stoppedUP":
        break
    time.sleep(0.2)

# Delete the magnet's torrent with its files; the next delta says so.
c.torrents_delete(delete_files=True, torrent_hashes=args["magnet_hash"])
d = c.sync_maindata(rid=rid)
out["removed_delta"] = d.get("torrents_removed", [])
out["after_delete"] = [x.hash for x in c.torrents_info()]
c.auth_log_out()
try:
    c.torrents_info()
    out["after_logout"] = "relogged"
except Exception as e:
    out["after_logout"] = type(e).__name__
print(json.dumps(out))
