#!/usr/bin/python3
"""libtorrent (python3-libtorrent, Debian) as an independent reference for
bittide's interop tests. Run with Debian's /usr/bin/python3.

  lt_tool.py hash TORRENT                 -> v1 info-hash, 40 hex digits
  lt_tool.py create PATH OUT PIECE MODE   -> MODE is v1 or hybrid
  lt_tool.py verify TORRENT SAVE_PATH     -> "ok" once libtorrent has checked
                                             every piece of the data on disk
  lt_tool.py seed TORRENT SAVE_PATH PORT [RATE [LIMIT_S]]
                                          -> prints "ready" once seeding on
                                             127.0.0.1:PORT, then serves until
                                             killed (at most LIMIT_S, 300 s by default)
  lt_tool.py seed-to TORRENT SAVE_PATH PEER v1|v2 RATE STATS
                                          -> seeds TORRENT (a hybrid) to PEER
                                             only, connecting out under its v1
                                             hash (offering the v2 upgrade,
                                             which the peer may decline) or
                                             its v2 name; prints "ready"
                                             once connecting and keeps writing
                                             "uploaded N" to the file STATS
  lt_tool.py seed-utp TORRENT SAVE_PATH PORT [LIMIT_S]
                                          -> like seed, over uTP only (TCP off)
  lt_tool.py leech-utp TORRENT SAVE_PATH PEER [LIMIT_S]
                                          -> like leech, over uTP only
  lt_tool.py seed-corrupt TORRENT SAVE_PATH PORT
                                          -> like seed, but once libtorrent has
                                             checked the data and seeds it, every
                                             byte of its files is inverted in
                                             place: it serves pieces that fail
                                             their hash (libtorrent does not check
                                             what it uploads; its seed_mode flag
                                             would check each piece on first
                                             request and stop seeding)
  lt_tool.py leech TORRENT SAVE_PATH PEER [BIND_IP [LIMIT]]
                                          -> downloads from PEER (host:port,
                                             or several joined by commas),
                                             prints "done" (at most LIMIT s,
                                             default 120), or "timeout
                                             PROGRESS"; with BIND_IP (e.g.
                                             127.0.0.2) it listens on and
                                             connects from that address only,
                                             so it is a peer of its own IP
  lt_tool.py leech-many N TORRENT SAVE_BASE PEER
                                          -> N leechers at once (one session
                                             each, SAVE_BASE/0 .. N-1, no peer
                                             exchange) fetching from PEER;
                                             "done SECONDS" once all have it
                                             (at most 600 s)
  lt_tool.py dht-swarm N BASE_PORT HASH [TORRENT SAVE_PATH]
                                          -> N libtorrent DHT nodes on 127.0.0.1
                                             (or --ip ADDR, e.g. ::1)
                                             BASE_PORT.., node 0 announcing HASH
                                             (and seeding TORRENT from SAVE_PATH
                                             when given); prints "ready PORT"
                                             (node 0's listen port), then
                                             answers stdin lines:
                                             "get_peers HASH" -> "peers A B ...";
                                             "get_peers_via NODE HASH" -> the same
                                             from a new node knowing only NODE;
                                             "sample NODE" -> "samples num=N
                                             nodes=M HASH..." (BEP 51);
                                             "leech TORRENT SAVE_PATH" -> "done"
                                             once a new node has downloaded it
                                             from peers found on the DHT (at
                                             most 90 s); at most 300 s in all
  lt_tool.py dht-lab N BASE_PORT DIR COUNT
                                          -> N libtorrent DHT nodes on 127.0.0.1
                                             BASE_PORT.., seeding COUNT torrents
                                             made in DIR (libtorrent's default
                                             hybrids, two files each, named
                                             "lab <word> <k>"), spread over
                                             the nodes, announced on the DHT;
                                             prints "torrent HASH NAME" for each,
                                             then "ready"; runs until stdin
                                             closes (at most 300 s)
  lt_tool.py magnet-leech MAGNET SAVE_PATH PEER
                                          -> fetches the metadata (BEP 9) and
                                             then the data from PEER; prints
                                             "done SIZE" (at most 120 s)
  lt_tool.py announce TORRENT SAVE_PATH   -> "peers N complete C incomplete I"
                                             after libtorrent's first tracker
                                             reply (or "error ..."); exiting
                                             sends the tracker `stopped`

  lt_tool.py --encryption forced COMMAND ...
                                          -> any command with libtorrent's
                                             encryption forced both ways
                                             (out_enc_policy = in_enc_policy =
                                             pe_forced) and RC4 the only level
                                             (allowed_enc_level = pe_rc4);
                                             ("enabled", "disabled": both
                                             policies that, either level)
  lt_tool.py --ip ADDR COMMAND ...        -> sessions listen on ADDR
  lt_tool.py --lsd COMMAND ...            -> local service discovery on
                                             (BEP 14 multicast: only inside a
                                             network namespace); `leech` then
                                             takes PEER "-" (no peer given)

Everything stays on 127.0.0.1; DHT, LSD, UPnP and NAT-PMP are off
(shared/INTEROP.md).
"""
import faulthandler
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import libtorrent as lt

# Set by a leading `--encryption MODE` (see the docstring); None leaves
# libtorrent's defaults (both policies enabled, either level).
ENCRYPTION = None
# The address sessions listen on unless told otherwise (`--ip ADDR`).
IP = "127.0.0.1"
# Local service discovery (BEP 14), only with `--lsd`: it multicasts, so
# only inside a network namespace of the test's own.
LSD = False


def encryption_settings(mode):
    if mode is None:
        return {}
    policy = {"forced": 0, "enabled": 1, "disabled": 2}[mode]
    return {
        "out_enc_policy": policy,
        "in_enc_policy": policy,
        # 1 plaintext, 2 RC4, 3 both.
        "allowed_enc_level": 2 if mode == "forced" else 3,
    }


def info_hash(path):
    ti = lt.torrent_info(path)
    return str(ti.info_hashes().v1)


def info_hash_v2(path):
    ti = lt.torrent_info(path)
    return str(ti.info_hashes().v2)


def create(path, out, piece_size, mode):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}.get(mode, 0)
    ct = lt.create_torrent(fs, piece_size, flags)
    ct.add_tracker("http://127.0.0.1:6969/announce")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def verify(torrent, save_path, timeout=60.0):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": LSD,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags |= lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    h.force_recheck()
    h.resume()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = h.status()
        checking = st.state in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data)
        if not checking and st.state != lt.torrent_status.downloading_metadata:
            if st.num_pieces == atp.ti.num_pieces() and st.is_seeding:
                return "ok"
            if st.state == lt.torrent_status.downloading and st.progress < 1.0 and st.num_pieces >= 0:
                # Checking finished and some pieces failed.
                return "mismatch %d/%d pieces" % (st.num_pieces, atp.ti.num_pieces())
        time.sleep(0.05)
    return "timeout"


def settings(port=0, ip=None, utp_only=False):
    ip = ip or IP
    if utp_only:
        return dict(settings(port, ip), enable_outgoing_utp=True, enable_incoming_utp=True,
                    enable_outgoing_tcp=False, enable_incoming_tcp=False)
    return {
        "listen_interfaces": ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port),
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": LSD,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": 0x7FFFFFFF,
        **encryption_settings(ENCRYPTION),
    }


def on_other_port(ses, port):
    """Why the session is of no use, if it listens elsewhere than on
    `port`: libtorrent takes the next port (or any) when the one asked for
    is taken, and peers told of `port` would never reach it."""
    if port and ses.listen_port() != port:
        return "listen failed: port %d taken (libtorrent moved to %d)" % (
            port, ses.listen_port())
    return None


def leave(ses, h, timeout=5.0):
    """Removes the torrent and waits until its `stopped` announce went out
    and was answered (or failed), so the tracker has heard it."""
    ses.remove_torrent(h)
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_announce_alert) and int(a.event) == 3:
                sent = True
            elif sent and isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert)):
                return
    # Fall through: the caller checks the tracker's state itself.


def announce(torrent, save_path, timeout=30.0):
    ses = lt.session(settings())
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                st = h.status()
                result = "peers %d complete %d incomplete %d" % (
                    a.num_peers, st.num_complete, st.num_incomplete)
                leave(ses, h)
                return result
            if isinstance(a, lt.tracker_error_alert):
                return "error %s" % a.message()
    return "timeout"


def restarted_on_crash(run, limit):
    """Runs `run(deadline, say_ready)` in a child process and starts it once
    more when a signal kills it, until `limit` seconds have passed.

    Debian's libtorrent 2.0.8 has died of SIGSEGV under load in the middle
    of a test (CI, a rate-limited seeder serving a stream; a leecher of a
    hybrid torrent). A peer that
    vanishes and comes back on its port is something bittide must cope
    with anyway (a named peer is redialled within seconds); a seeder that
    stays dead only fails the test for libtorrent's fault. Only the first
    run says "ready"; each restart says why on stderr. The child dies with
    this process (PR_SET_PDEATHSIG), so the test's kill stops both."""
    import ctypes
    import signal
    deadline = time.monotonic() + limit
    say_ready = True
    while True:
        pid = os.fork()
        if pid == 0:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            code = 0
            try:
                print(run(deadline, say_ready), flush=True)
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if not os.WIFSIGNALED(status) or time.monotonic() >= deadline:
            return os.waitstatus_to_exitcode(status)
        print("libtorrent died of signal %d; starting it again" % os.WTERMSIG(status),
              file=sys.stderr, flush=True)
        say_ready = False


def seed(torrent, save_path, port, rate=0, limit=300.0, corrupt=False, utp_only=False,
         deadline=None, say_ready=True):
    ses = lt.session(settings(port, utp_only=utp_only))
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    if rate:
        # Session limits do not apply to local peers; torrent limits do.
        h.set_upload_limit(rate)
    deadline = deadline or time.monotonic() + limit
    announced = not say_ready
    # With trackers, "ready" waits for one to answer (or 5 s of seeding):
    # a downloader started earlier could ask the tracker before it knows
    # this seeder and then wait out a whole announce interval.
    replied = not list(atp.ti.trackers())
    # "ready" also waits for the listen socket: a port taken meanwhile
    # would otherwise leave a seeder nobody can reach, and a test waiting
    # for minutes on a download that cannot start.
    listening = False
    seeding_since = None
    while time.monotonic() < deadline:
        st = h.status()
        if st.is_seeding and seeding_since is None:
            seeding_since = time.monotonic()
        settled = replied or (seeding_since is not None
                              and time.monotonic() - seeding_since > 5)
        if st.is_seeding and settled and listening and not announced:
            if corrupt:
                corrupt_files(atp.ti, save_path)
            print("ready", flush=True)
            announced = True
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                replied = True
            elif isinstance(a, lt.listen_succeeded_alert):
                taken = on_other_port(ses, port)
                if taken:
                    return taken
                listening = True
    return "timeout"


def seed_to(torrent, save_path, peer, version, rate, stats, limit=120.0):
    """A seeder of one swarm of a hybrid: libtorrent picks a connection's
    protocol from the handshake, so this one dials PEER itself, with the
    v1 hash or the truncated v2 one (pex_lt_v2, 0x80), and takes no
    peer of its own accord."""
    ses = lt.session(settings())
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    h.set_upload_limit(rate)
    host, port = peer.rsplit(":", 1)
    # 0x01 encryption-capable, 0x04 uTP, 0x08 holepunch: the flags
    # libtorrent gives a plain peer; 0x80 marks it as one of the v2 swarm.
    flags = 0x0d | (0x80 if version == "v2" else 0)
    deadline = time.monotonic() + limit
    announced = False
    last = 0.0
    while time.monotonic() < deadline:
        st = h.status()
        if st.is_seeding and not announced:
            print("ready", flush=True)
            announced = True
        if st.is_seeding and st.num_peers == 0 and time.monotonic() - last > 1.0:
            h.connect_peer((host, int(port)), 0, flags)
            last = time.monotonic()
        with open(stats + ".tmp", "w") as f:
            f.write("uploaded %d\n" % st.total_payload_upload)
        os.replace(stats + ".tmp", stats)
        ses.wait_for_alert(200)
        ses.pop_alerts()
    return "timeout"


def seed_flat(torrent, save_path, port, limit=300.0):
    """Seeds TORRENT with file i read from SAVE_PATH/f<i> (renamed, so any
    name the torrent has, even one no file system takes, can be served),
    trusting the data (seed mode: libtorrent hashes pieces as it serves
    them). Prints "ready" once listening."""
    ti = lt.torrent_info(torrent)
    for i in range(ti.num_files()):
        ti.rename_file(i, "f%d" % i)
    ses = lt.session(settings(port))
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + limit
    # Seed mode reports seeding at once, but the torrent takes incoming
    # peers only once resumed (about half a second later).
    listening = resumed = announced = False
    while time.monotonic() < deadline:
        if listening and resumed and not announced:
            print("ready", flush=True)
            announced = True
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert):
                taken = on_other_port(ses, port)
                if taken:
                    return taken
                listening = True
            if isinstance(a, lt.torrent_resumed_alert):
                resumed = True
    return "timeout"


def corrupt_files(ti, save_path):
    """Inverts every byte of the torrent's files in place: same files, same
    sizes, so libtorrent (reading through mmap) serves the new bytes."""
    files = ti.files()
    for i in range(files.num_files()):
        if files.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        path = os.path.join(save_path, files.file_path(i))
        with open(path, "r+b") as f:
            data = f.read()
            f.seek(0)
            f.write(bytes(b ^ 0xFF for b in data))


def peer_list(peer):
    """PEER as (host, port) pairs: "-" is none, else HOST:PORT[,HOST:PORT...]."""
    if peer == "-":
        return []
    return [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in peer.split(","))]


def leech(torrent, save_path, peer, ip="127.0.0.1", limit=120.0, utp_only=False):
    ses = lt.session(settings(0, ip, utp_only))
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    # PEER "-": none; the peers come from elsewhere (--lsd).
    peers = peer_list(peer)
    for p in peers:
        h.connect_peer(p)
    deadline = time.monotonic() + limit
    last_connect = time.monotonic()
    while time.monotonic() < deadline:
        st = h.status()
        if st.is_seeding:
            return "done"
        if peers and time.monotonic() - last_connect > 5 and st.num_peers < len(peers):
            for p in peers:
                h.connect_peer(p)
            last_connect = time.monotonic()
        ses.wait_for_alert(200)
        ses.pop_alerts()
    return "timeout %.3f" % h.status().progress


def leech_many(n, torrent, save_base, peer, limit=600.0):
    """N leechers (one session each, in folders SAVE_BASE/0..N-1) fetching
    from PEER at once, without peer exchange (so they take everything from
    PEER, not from each other); "done SECONDS" once all have it."""
    ti = lt.torrent_info(torrent)
    host, port = peer_list(peer)[0]
    swarm = []
    for i in range(n):
        ses = lt.session(settings())
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = os.path.join(save_base, str(i))
        atp.flags |= lt.torrent_flags.disable_pex
        swarm.append((ses, ses.add_torrent(atp)))
    start = time.monotonic()
    for _, h in swarm:
        h.connect_peer((host, port))
    deadline = start + limit
    last_connect = start
    while time.monotonic() < deadline:
        busy = [(s, h) for s, h in swarm if not h.status().is_seeding]
        if not busy:
            return "done %.3f" % (time.monotonic() - start)
        if time.monotonic() - last_connect > 5:
            for _, h in busy:
                if h.status().num_peers == 0:
                    h.connect_peer((host, port))
            last_connect = time.monotonic()
        time.sleep(0.05)
        for s, _ in swarm:
            s.pop_alerts()
    done = sum(1 for _, h in swarm if h.status().is_seeding)
    return "timeout %d of %d" % (done, n)


def magnet_leech(uri, save_path, peer, limit=120.0):
    """Downloads a magnet link from PEER: the metadata first (BEP 9), then
    the data. Prints "done SIZE" with the metadata's size."""
    ses = lt.session(settings())
    atp = lt.parse_magnet_uri(uri)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    host, port = peer.rsplit(":", 1)
    h.connect_peer((host, int(port)))
    deadline = time.monotonic() + limit
    last_connect = time.monotonic()
    while time.monotonic() < deadline:
        st = h.status()
        if st.has_metadata and st.is_seeding:
            return "done %d" % h.torrent_file().metadata_size()
        if time.monotonic() - last_connect > 5 and st.num_peers == 0:
            h.connect_peer((host, int(port)))
            last_connect = time.monotonic()
        ses.wait_for_alert(200)
        ses.pop_alerts()
    st = h.status()
    return "timeout metadata=%s progress=%.3f" % (st.has_metadata, st.progress)


def dht_settings(port):
    s = settings(port)
    s.update({
        "enable_dht": True,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_enforce_node_id": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 100000,
        "dht_upload_rate_limit": 10000000,
        "dht_bootstrap_nodes": "",
    })
    return s


def dht_network(n, base_port, **extra):
    """N libtorrent DHT nodes on BASE_PORT.., each knowing all the others."""
    sessions = [lt.session(dict(dht_settings(base_port + i), **extra)) for i in range(n)]
    for i, ses in enumerate(sessions):
        for j in range(n):
            if j != i:
                ses.add_dht_node((IP, base_port + j))
    return sessions


def settle(sessions, base_port, deadline):
    """Waits until every routing table knows min(N - 1, 8) nodes (or the
    deadline); why a session is of no use (it listens elsewhere), if so."""
    n = len(sessions)
    while time.monotonic() < deadline:
        if min(ses.status().dht_nodes for ses in sessions) >= min(n - 1, 8):
            break
        time.sleep(0.2)
    for i, ses in enumerate(sessions):
        taken = on_other_port(ses, base_port + i)
        if taken:
            return taken
    return None


def dht_swarm(n, base_port, hex_hash, seed_torrent=None, seed_dir=None, limit=300.0):
    import select
    sessions = dht_network(n, base_port)
    # Node 0 announces HASH: an info-hash-only torrent makes it announce;
    # with a torrent and its folder, it seeds it too.
    atp = lt.add_torrent_params()
    if seed_torrent:
        atp.ti = lt.torrent_info(seed_torrent)
        atp.save_path = seed_dir
    else:
        atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(hex_hash)))
        atp.save_path = tempfile_dir()
    sessions[0].add_torrent(atp)
    deadline = time.monotonic() + limit
    # Wait for routing tables and the announce to settle.
    taken = settle(sessions, base_port, deadline)
    if taken:
        return taken
    time.sleep(3)
    print("ready %d" % sessions[0].listen_port(), flush=True)
    fresh_port = base_port + n
    pending = b""
    while time.monotonic() < deadline:
        if b"\n" not in pending:
            r, _, _ = select.select([0], [], [], 0.5)
            for ses in sessions:
                ses.pop_alerts()
            if not r:
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                return "eof"
            pending += chunk
            continue
        line, pending = pending.split(b"\n", 1)
        parts = line.decode().split()
        if len(parts) == 2 and parts[0] == "get_peers":
            print("peers " + lt_get_peers(sessions[-1], parts[1]), flush=True)
        elif len(parts) == 3 and parts[0] == "get_peers_via":
            # A new node that knows only NODE: its lookup must walk the
            # swarm through NODE's answers.
            fresh = lt.session(dht_settings(fresh_port))
            fresh_port += 1
            host, port = parts[1].rsplit(":", 1)
            fresh.add_dht_node((host.strip("[]"), int(port)))
            end = time.monotonic() + 10
            while time.monotonic() < end and fresh.status().dht_nodes < 2:
                fresh.pop_alerts()
                time.sleep(0.1)
            print("peers " + lt_get_peers(fresh, parts[2]), flush=True)
            del fresh
        elif len(parts) == 3 and parts[0] == "leech":
            # A new node that knows the swarm's nodes and nothing else:
            # it downloads TORRENT into SAVE from peers the DHT names.
            print(dht_leech(n, base_port, fresh_port, parts[1], parts[2]), flush=True)
            fresh_port += 1
        elif len(parts) == 2 and parts[0] == "sample":
            host, port = parts[1].rsplit(":", 1)
            ses = sessions[-1]
            ses.dht_sample_infohashes((host, int(port)), lt.sha1_hash(b"\x55" * 20))
            reply = None
            end = time.monotonic() + 10
            while time.monotonic() < end and reply is None:
                ses.wait_for_alert(200)
                for a in ses.pop_alerts():
                    if isinstance(a, lt.dht_sample_infohashes_alert):
                        reply = a
            if reply is None:
                print("samples none", flush=True)
            else:
                print("samples num=%d nodes=%d %s" % (
                    reply.num_infohashes, reply.num_nodes,
                    " ".join(sorted(str(h) for h in reply.samples))), flush=True)
        else:
            print("error unknown command", flush=True)
    return "timeout"


LAB_WORDS = ["amber", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "harbor",
             "indigo", "juniper"]


def dht_lab(n, base_port, folder, count, limit=300.0):
    import select
    sessions = dht_network(n, base_port, dht_max_infohashes_sample_count=50)
    for k in range(count):
        name = "lab %s %02d" % (LAB_WORDS[k % len(LAB_WORDS)], k)
        root = os.path.join(folder, name)
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        with open(os.path.join(root, "readme.txt"), "wb") as f:
            f.write(("torrent %d of the lab\n" % k).encode())
        with open(os.path.join(root, "data", "part%02d.bin" % k), "wb") as f:
            f.write(bytes((k * 7 + i) % 251 for i in range(20000 + k)))
        fs = lt.file_storage()
        lt.add_files(fs, root)
        ct = lt.create_torrent(fs, 16384)
        lt.set_piece_hashes(ct, folder)
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(lt.bencode(ct.generate()))
        atp.save_path = folder
        atp.flags |= lt.torrent_flags.seed_mode
        sessions[k % n].add_torrent(atp)
        print("torrent %s %s" % (atp.ti.info_hashes().v1, name), flush=True)
    deadline = time.monotonic() + limit
    taken = settle(sessions, base_port, deadline)
    if taken:
        return taken
    # Every torrent announced at least once.
    time.sleep(5)
    print("ready", flush=True)
    while time.monotonic() < deadline:
        r, _, _ = select.select([0], [], [], 0.5)
        for ses in sessions:
            ses.pop_alerts()
        if r and not os.read(0, 4096):
            return "eof"
    return "timeout"


def dht_leech(n, base_port, port, torrent, save_path, limit=90.0):
    ses = lt.session(dht_settings(port))
    for j in range(n):
        ses.add_dht_node((IP, base_port + j))
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + limit
    last_announce = time.monotonic()
    while time.monotonic() < deadline:
        if h.status().is_seeding:
            return "done"
        if time.monotonic() - last_announce > 5 and h.status().num_peers == 0:
            # libtorrent looks a torrent up every few minutes; ask again.
            h.force_dht_announce()
            last_announce = time.monotonic()
        ses.wait_for_alert(200)
        ses.pop_alerts()
    return "timeout %.3f" % h.status().progress


def lt_get_peers(ses, hex_hash, limit=20.0):
    """Runs one DHT get_peers from `ses`; the peers, space separated."""
    ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(hex_hash)))
    found = set()
    end = time.monotonic() + limit
    while time.monotonic() < end and not found:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.dht_get_peers_reply_alert):
                for p in a.peers():
                    found.add("%s:%d" % p)
    return " ".join(sorted(found))


def tempfile_dir():
    import tempfile
    return tempfile.mkdtemp(prefix="lt-dht-")


def main():
    global ENCRYPTION, IP, LSD
    # A crash inside libtorrent prints the Python stack that called it.
    faulthandler.enable()
    while sys.argv[1] in ("--encryption", "--ip", "--lsd"):
        if sys.argv[1] == "--lsd":
            LSD = True
            del sys.argv[1]
            continue
        if sys.argv[1] == "--encryption":
            ENCRYPTION = sys.argv[2]
        else:
            IP = sys.argv[2]
        del sys.argv[1:3]
    cmd = sys.argv[1]
    if cmd == "hash":
        print(info_hash(sys.argv[2]))
    elif cmd == "hash-v2":
        print(info_hash_v2(sys.argv[2]))
    elif cmd == "create":
        create(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "verify":
        print(verify(sys.argv[2], sys.argv[3]))
    elif cmd == "seed":
        rate = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        limit = float(sys.argv[6]) if len(sys.argv) > 6 else 300.0
        sys.exit(restarted_on_crash(
            lambda deadline, say_ready: seed(sys.argv[2], sys.argv[3], int(sys.argv[4]), rate,
                                             deadline=deadline, say_ready=say_ready),
            limit))
    elif cmd == "seed-flat":
        print(seed_flat(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif cmd == "seed-to":
        print(seed_to(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]),
                      sys.argv[7]))
    elif cmd == "seed-utp":
        limit = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
        sys.exit(restarted_on_crash(
            lambda deadline, say_ready: seed(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                             utp_only=True, deadline=deadline,
                                             say_ready=say_ready),
            limit))
    elif cmd == "seed-corrupt":
        print(seed(sys.argv[2], sys.argv[3], int(sys.argv[4]), corrupt=True))
    elif cmd == "leech":
        ip = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
        limit = float(sys.argv[6]) if len(sys.argv) > 6 else 120.0
        # Restarted like a seeder when libtorrent crashes: it checks what
        # it already has and goes on.
        sys.exit(restarted_on_crash(
            lambda deadline, _: leech(sys.argv[2], sys.argv[3], sys.argv[4], ip,
                                      max(deadline - time.monotonic(), 1.0)),
            limit))
    elif cmd == "leech-many":
        print(leech_many(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
    elif cmd == "leech-utp":
        limit = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
        sys.exit(restarted_on_crash(
            lambda deadline, _: leech(sys.argv[2], sys.argv[3], sys.argv[4],
                                      limit=max(deadline - time.monotonic(), 1.0),
                                      utp_only=True),
            limit))
    elif cmd == "magnet-leech":
        print(magnet_leech(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif cmd == "announce":
        print(announce(sys.argv[2], sys.argv[3]))
    elif cmd == "dht-lab":
        print(dht_lab(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
    elif cmd == "dht-swarm":
        extra = sys.argv[5:7] if len(sys.argv) > 6 else [None, None]
        print(dht_swarm(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *extra))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
