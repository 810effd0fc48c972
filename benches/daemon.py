#!/usr/bin/python3
"""Daemon benchmark, on 127.0.0.1 (it is not a test; run it on an idle
machine):

1. 1,000 small torrents (no peers) added through the API: the daemon's
   resident memory, and its CPU over --idle-seconds of idling after;
2. latency of the list call (GET /api/v1/torrents) with those 1,000
   torrents: p50 and p99 over --list-calls calls on one keep-alive
   connection, after 10 calls to warm up (the first is printed too);
3. four --size-mib downloads at once from four libtorrent seeders: one
   daemon against four `bittide download` processes, alternating, the
   median total wall time of each and their ratio.

Targets (issue 14): <= 150 MiB RSS and <= 2 % of one core idle at 1,000
torrents; list p99 <= 20 ms; the one daemon no slower than four
processes (ratio <= 1.0).

  /usr/bin/python3 benches/daemon.py [--torrents 1000] [--idle-seconds 60]
      [--list-calls 200] [--size-mib 256] [--runs 2] [--skip-downloads]

Needs: a release build (cargo build --release -p bittide-cli) and the
Debian package python3-libtorrent.
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BITTIDE = os.path.join(ROOT, "target", "release", "bittide")
LT_TOOL = os.path.join(ROOT, "tests", "interop", "lt_tool.py")
PY = "/usr/bin/python3"
CSRF = {"X-Bittide-Csrf": "1"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, str):
        return bencode(v.encode())
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def small_torrent(i):
    """A one-piece torrent nobody seeds (a distinct info-hash per i)."""
    data = hashlib.sha256(b"bittide-bench-%d" % i).digest() * 64
    info = {"name": "small-%04d.bin" % i, "piece length": 16384, "length": len(data),
            "pieces": hashlib.sha1(data).digest()}
    return bencode({"info": info})


class Daemon:
    def __init__(self, work, tag, extra=()):
        self.state = os.path.join(work, "state-" + tag)
        self.dl = os.path.join(work, "dl-" + tag)
        os.makedirs(self.dl, exist_ok=True)
        self.port = free_port()
        self.log = open(os.path.join(work, "daemon-%s.log" % tag), "w")
        self.proc = subprocess.Popen(
            [BITTIDE, "daemon", "--state", self.state, "--download-dir", self.dl,
             "--api", "127.0.0.1:%d" % self.port, "--listen", "127.0.0.1:%d" % free_port(),
             "--no-dht"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.conn = None
        deadline = time.time() + 30
        while True:
            try:
                self.request("GET", "/api/v1/stats")
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    sys.exit("the daemon did not start; see %s" % self.log.name)
                self.conn = None
                time.sleep(0.05)

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if method != "GET":
            h.update(CSRF)
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 400:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return json.loads(data) if data else None

    def add(self, torrent_bytes, query=""):
        return self.request("POST", "/api/v1/torrents?" + query, torrent_bytes,
                            {"Content-Type": "application/x-bittorrent"})["info_hash"]

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def idle_and_list(work, args):
    d = Daemon(work, "idle")
    try:
        start = time.time()
        for i in range(args.torrents):
            d.add(small_torrent(i))
        added = time.time() - start
        assert len(d.request("GET", "/api/v1/torrents")) == args.torrents
        time.sleep(5)  # let the adds' work settle
        cpu0, t0 = d.cpu_seconds(), time.time()
        time.sleep(args.idle_seconds)
        cpu = (d.cpu_seconds() - cpu0) / (time.time() - t0) * 100
        rss = d.rss_mib()
        # A few calls first, as any latency benchmark warms up: the first
        # call after a long idle pays for pages the VM took back (it is
        # printed on its own).
        t = time.perf_counter()
        d.request("GET", "/api/v1/torrents")
        first = (time.perf_counter() - t) * 1000
        for _ in range(9):
            d.request("GET", "/api/v1/torrents")
        lat = []
        for _ in range(args.list_calls):
            t = time.perf_counter()
            d.request("GET", "/api/v1/torrents")
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print("%d torrents added in %.1f s (%.1f ms each)" % (args.torrents, added, added * 1000 / args.torrents))
        print("idle: RSS %.1f MiB (target <= 150), CPU %.2f %% of one core over %d s (target <= 2)"
              % (rss, cpu, args.idle_seconds))
        print("list with %d torrents: p50 %.2f ms, p99 %.2f ms over %d calls after 10 to warm up "
              "(target p99 <= 20); slowest %s ms; the first call after the idle period %.1f ms"
              % (args.torrents, p50, p99, args.list_calls,
                 " ".join("%.1f" % x for x in lat[-4:]), first))
    finally:
        d.stop()


def make_data(path, size, seed):
    rnd = __import__("random").Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(1 << 20, left)
            f.write(rnd.randbytes(n))
            left -= n


def downloads(work, args):
    src = os.path.join(work, "src")
    os.makedirs(src)
    torrents, seeders = [], []
    try:
        for i in range(4):
            name = "big%d.bin" % i
            make_data(os.path.join(src, name), args.size_mib << 20, i)
            t = os.path.join(work, name + ".torrent")
            subprocess.run([BITTIDE, "create", os.path.join(src, name), "--piece-size", "256K",
                            "--no-date", "-o", t], check=True, capture_output=True)
            port = free_port()
            seeder = subprocess.Popen([PY, LT_TOOL, "seed", t, src, str(port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            seeders.append(seeder)
            assert seeder.stdout.readline().strip() == "ready"
            torrents.append((t, port))

        def one_daemon(run):
            d = Daemon(work, "dl%d" % run)
            try:
                start = time.time()
                for t, port in torrents:
                    with open(t, "rb") as f:
                        d.add(f.read(), "peers=127.0.0.1:%d" % port)
                while True:
                    ts = d.request("GET", "/api/v1/torrents")
                    if len(ts) == 4 and all(x["progress"] == 1.0 for x in ts):
                        return time.time() - start
                    if time.time() - start > 600:
                        raise RuntimeError("daemon downloads did not finish")
                    time.sleep(0.05)
            finally:
                d.stop()
                shutil.rmtree(d.dl, ignore_errors=True)
                shutil.rmtree(d.state, ignore_errors=True)

        def four_processes(run):
            out = os.path.join(work, "procs%d" % run)
            start = time.time()
            procs = [subprocess.Popen([BITTIDE, "download", t, "-o", out, "--peer", "127.0.0.1:%d" % port,
                                       "--no-dht", "--listen", "127.0.0.1:%d" % free_port(),
                                       "--state-dir", os.path.join(work, "pstate%d" % run)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for t, port in torrents]
            for p in procs:
                if p.wait(timeout=600) != 0:
                    raise RuntimeError("bittide download failed")
            took = time.time() - start
            shutil.rmtree(out, ignore_errors=True)
            return took

        daemon_t, procs_t = [], []
        for run in range(args.runs):
            order = [(one_daemon, daemon_t), (four_processes, procs_t)]
            if run % 2:
                order.reverse()
            for f, into in order:
                into.append(f(run))
        d, p = statistics.median(daemon_t), statistics.median(procs_t)
        total = 4 * args.size_mib
        print("4 x %d MiB: one daemon %.2f s (%.0f MiB/s), four processes %.2f s (%.0f MiB/s); "
              "daemon/processes %.2f (target <= 1.0) [runs: %s vs %s]"
              % (args.size_mib, d, total / d, p, total / p, d / p,
                 " ".join("%.2f" % x for x in daemon_t), " ".join("%.2f" % x for x in procs_t)))
    finally:
        for s in seeders:
            s.kill()
            s.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrents", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--list-calls", type=int, default=1000)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--skip-downloads", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BITTIDE):
        sys.exit("build bittide first: cargo build --release -p bittide-cli")
    work = tempfile.mkdtemp(prefix="bittide-daemon-bench-")
    try:
        if not args.skip_idle:
            idle_and_list(work, args)
        if not args.skip_downloads:
            downloads(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
