#!/usr/bin/python3
"""End-to-end benchmarks of bittide against rqbit, aria2c and
python3-libtorrent on 127.0.0.1, each measured in the same run, printed as
tables (median wall time, MiB/s, CPU seconds, peak RSS) and as bittide's
ratios to the others. Sections (--only, default all):

  download  one libtorrent seeder (opentracker for aria2c), each client
            downloads SIZE MiB as one file and MULTI MiB as a 16-file tree
  four      the single file from four libtorrent seeders at once
  seed      each client seeds the single file (bittide and libtorrent,
            rqbit too when given) to one libtorrent leecher: the
            leecher's time and the seeder's CPU for it
  swarm     each seeder (bittide, libtorrent) serves SWARM MiB to 20
            libtorrent leechers at once: the aggregate upload rate
  floor     the hardware floor of a download of the single file: SHA-1
            of its bytes (openssl, SHA-NI where the CPU has it) and
            writing them with O_DIRECT (dd), CPU seconds; then bittide's
            download CPU as a multiple of it

Clients alternate within each round, several rounds.

  /usr/bin/python3 benches/compare.py [--runs 3] [--size-mib 1024]
      [--multi-mib 256] [--swarm-mib 256] [--leechers 20]
      [--only download,four,seed,swarm,floor] [--rqbit PATH] [--runtimes]
      [--only-bittide] [--baseline OLD_BITTIDE]

--baseline times an older bittide binary in the same run (as
`bittide-base`), for before/after figures of a change.

--runtimes adds bittide on smol and async-std (their `smol_download` and
`async_std_download` examples) to the download section.

Needs: a release build of bittide (cargo build --release -p bittide-cli),
Debian packages python3-libtorrent, aria2, opentracker, openssl, time;
rqbit (`cargo install rqbit --locked --no-default-features --features
default-tls --root DIR`; pass --rqbit DIR/bin/rqbit, or it is skipped).
Run it on an otherwise idle machine; it is not a test.
"""
import argparse
import contextlib
import os
import re
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
# Benchmarks stay on loopback: no local service discovery multicast (and
# bittide seeders of one run would find each other through it).
os.environ["BITTIDE_NO_LSD"] = "1"


@contextlib.contextmanager
def bench(doc, prefix):
    """A benchmark's common frame: `--runs` and `--size-mib` parsed, the
    release build required, a scratch folder; yields (args, work, procs)
    and afterwards kills `procs` (servers it started) and removes `work`."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    if not os.path.exists(BITTIDE):
        sys.exit("build bittide first: cargo build --release -p bittide-cli")
    work = tempfile.mkdtemp(prefix=prefix)
    procs = []
    try:
        yield args, work, procs
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_data(path, size, seed):
    rnd = __import__("random").Random(seed)
    chunk = 1 << 20
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(rnd.randbytes(n))
            left -= n


def timed(cmd, timeout=600):
    """Runs cmd under /usr/bin/time -v; returns (seconds, cpu, rss_mib)."""
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd[0], out.stderr[-2000:]))
    err = out.stderr

    def field(name):
        m = re.search(name + r": (.*)", err)
        return m.group(1).strip() if m else "0"

    wall = field("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)")
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = float(field("User time \\(seconds\\)")) + float(field("System time \\(seconds\\)"))
    rss = int(field("Maximum resident set size \\(kbytes\\)")) / 1024
    return seconds, cpu, rss


def run_rotating(transfers, runs, work, data, limit, size_mib, title, width=18):
    """Runs each of `transfers` (name -> function of an empty output
    folder giving the command) `runs` times, the order rotated every run,
    each result compared with `data` (as out/data.bin); prints the table
    of medians and returns {name: median seconds}."""
    import filecmp

    def measure(name, out):
        m = timed(transfers[name](out), timeout=limit)
        if not filecmp.cmp(data, os.path.join(out, "data.bin"), shallow=False):
            raise RuntimeError("the downloaded file differs")
        return m

    rows = rotate(transfers, runs, work, measure, "")
    med = table("%s, median of %d runs" % (title, runs), rows, size_mib, width,
                names=transfers, label="transfer")
    return {name: m[0] for name, m in med.items()}


def tree_cpu(pid):
    """User + system CPU seconds so far of process `pid` and its living
    descendants (lt_tool.py runs libtorrent in a child), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open("/proc/%d/stat" % p) as f:
                after_name = f.read().rsplit(")", 1)[1].split()
            total += int(after_name[11]) + int(after_name[12])  # utime, stime
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / tick


def tree_rss_mib(pid):
    """The largest peak RSS (VmHWM) among `pid` and its descendants."""
    best, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open("/proc/%d/status" % p) as f:
                m = re.search(r"VmHWM:\s+(\d+)", f.read())
            best = max(best, int(m.group(1)) if m else 0)
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return best / 1024


def start_seeder(cmd, ready, procs):
    """Starts `cmd` and waits (60 s at most) for a line of its output that
    `ready` accepts; the process is left running (and in `procs`)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(p)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("%s ended before it was ready" % cmd[:2])
        if ready(line):
            return p
    raise RuntimeError("%s not ready in 60 s" % cmd[:2])


def lt_seeder(torrent, src, port, procs):
    return start_seeder([PY, LT_TOOL, "seed", torrent, src, str(port)],
                        lambda line: line.strip() == "ready", procs)


def bittide_seeder(torrent, src, port, procs, work, extra=()):
    state = os.path.join(work, "seed-state-%d" % port)
    return start_seeder([BITTIDE, "seed", torrent, "-o", src, "--listen", "127.0.0.1:%d" % port,
                         "--no-dht", "--json", "--state-dir", state] + list(extra),
                        lambda line: '"state":"seeding"' in line, procs)


def bittide_cmd(binary, torrent, out, peers, extra=()):
    cmd = [binary, "download", torrent, "-o", out, "--no-dht",
           "--listen", "127.0.0.1:%d" % free_port(), "--state-dir", out + ".state"]
    for p in peers:
        cmd += ["--peer", p]
    return cmd + list(extra)


def rqbit_cmd(rqbit, torrent, out, peers):
    return [rqbit, "--disable-dht", "--disable-dht-persistence", "--disable-upnp-port-forward",
            "--disable-lsd", "--listen-ip", "127.0.0.1", "--listen-port", str(free_port()),
            "--http-api-listen-addr", "127.0.0.1:%d" % free_port(),
            "download", "-e", "-o", out, "--initial-peers", ",".join(peers), torrent]


def aria2c_cmd(torrent, out):
    return ["aria2c", "--enable-dht=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            "--disable-ipv6=true", "--seed-time=0", "--listen-port=%d" % free_port(),
            "--dir=" + out, "--quiet=true", torrent]


def table(title, rows, size_mib, width=18, names=None, label="client"):
    """Prints `rows` ({name: [(seconds, cpu, rss)]}) as medians, and
    "failed" for those of `names` without a row; returns {name: (median
    seconds, median cpu, peak rss)}."""
    print("\n" + title)
    print("%-*s %8s %9s %8s %9s" % (width, label, "time s", "MiB/s", "CPU s", "RSS MiB"))
    med = {}
    for name in names or rows:
        ms = rows.get(name)
        if not ms:
            print("%-*s %8s" % (width, name, "failed"))
            continue
        t = statistics.median(m[0] for m in ms)
        c = statistics.median(m[1] for m in ms)
        rss = max(m[2] for m in ms)
        med[name] = (t, c, rss)
        print("%-*s %8.2f %9.1f %8.2f %9.1f" % (width, name, t, size_mib / t, c, rss))
    return med


def ratios(med, ours="bittide", what="time"):
    """bittide's ratio to every other row (below 1: bittide is faster)."""
    if ours not in med:
        return
    for name, m in med.items():
        if name != ours:
            print("%s/%s %s ratio: %.2f" % (ours, name, what, med[ours][0] / m[0]))


def rotate(clients, runs, work, measure, label):
    """Runs `measure(name, out)` for each client `runs` times, the order
    rotated every run, each in a fresh folder `out`; {name: [results]}."""
    results = {}
    for r in range(runs):
        order = list(clients)
        order = order[r % len(order):] + order[:r % len(order)]
        for name in order:
            out = os.path.join(work, "out-%s" % name)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out + ".state", ignore_errors=True)
            os.makedirs(out)
            try:
                m = measure(name, out)
            except Exception as e:  # report, keep going
                print("%s%s run %d: %s" % (label and label + " ", name, r, e), file=sys.stderr)
                continue
            finally:
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(out + ".state", ignore_errors=True)
            results.setdefault(name, []).append(m)
            print("  %s%s run %d: %.2f s" % (label and label + " ", name, r, m[0]), file=sys.stderr,
                  flush=True)
    return results


def download_section(args, work, src, torrents, examples, procs):
    """Each client downloads from one libtorrent seeder; the single file's
    medians (for the floor section)."""
    single = None
    for name, (torrent, _) in torrents.items():
        port = free_port()
        seeder = lt_seeder(torrent, src, port, procs)
        peer = "127.0.0.1:%d" % port
        clients = {
            "bittide": lambda out: bittide_cmd(BITTIDE, torrent, out, [peer]),
            "libtorrent": lambda out: [PY, LT_TOOL, "leech", torrent, out, peer],
            "aria2c": lambda out: aria2c_cmd(torrent, out),
        }
        if args.baseline:
            clients["bittide-base"] = lambda out: bittide_cmd(args.baseline, torrent, out, [peer])
        for label, binary in examples.items():
            clients[label] = (lambda b: lambda out: [b, torrent, out, peer])(binary)
        if args.only_bittide:
            clients = {k: v for k, v in clients.items() if k.startswith("bittide")}
        elif args.rqbit:
            clients["rqbit"] = lambda out: rqbit_cmd(args.rqbit, torrent, out, [peer])
        rows = rotate(clients, args.runs, work, lambda c, out: timed(clients[c](out)), name)
        seeder.kill()
        size = args.size_mib if name == "single.bin" else args.multi_mib
        med = table("download %s (%d MiB, 256 KiB pieces) from one libtorrent seeder, median of %d runs"
                    % (name, size, args.runs), rows, size)
        ratios(med)
        if name == "single.bin":
            single = med
    return single


def four_section(args, work, src, torrent):
    """The single file from four libtorrent seeders at once, with the
    seeders' CPU for each client: on a machine of few cores the clients
    and the seeders share them, which bounds any client's time."""
    procs = []
    try:
        ports = [free_port() for _ in range(4)]
        seeders = [lt_seeder(torrent, src, port, procs) for port in ports]
        peers = ["127.0.0.1:%d" % p for p in ports]
        clients = {
            "bittide": lambda out: bittide_cmd(BITTIDE, torrent, out, peers, ["--max-peers-per-ip", "8"]),
            "libtorrent": lambda out: [PY, LT_TOOL, "leech", torrent, out, ",".join(peers)],
            "aria2c": lambda out: aria2c_cmd(torrent, out),
        }
        if args.baseline:
            clients["bittide-base"] = lambda out: bittide_cmd(args.baseline, torrent, out, peers,
                                                              ["--max-peers-per-ip", "8"])
        if args.only_bittide:
            clients = {k: v for k, v in clients.items() if k.startswith("bittide")}
        elif args.rqbit:
            clients["rqbit"] = lambda out: rqbit_cmd(args.rqbit, torrent, out, peers)
        serving = {}

        def measure(name, out):
            before = sum(tree_cpu(p.pid) for p in seeders)
            m = timed(clients[name](out))
            serving.setdefault(name, []).append(sum(tree_cpu(p.pid) for p in seeders) - before)
            return m

        rows = rotate(clients, args.runs, work, measure, "four")
        med = table("download single.bin (%d MiB) from four libtorrent seeders, median of %d runs"
                    % (args.size_mib, args.runs), rows, args.size_mib)
        ratios(med)
        cores = os.cpu_count() or 1
        for name, (t, cpu, _) in med.items():
            theirs = statistics.median(serving[name])
            print("%s: the seeders' CPU %.2f s; (client + seeders) CPU / %d cores = %.2f s, "
                  "the least time this machine allows" % (name, theirs, cores, (cpu + theirs) / cores))
    finally:
        for p in procs:
            p.kill()


def seeders(args, work, src, torrent, procs, extra_bittide=()):
    """A bittide seeder and a libtorrent seeder of `torrent`, both ready:
    {name: (process, "127.0.0.1:PORT")}."""
    out = {}
    port = free_port()
    out["bittide"] = (bittide_seeder(torrent, src, port, procs, work, extra_bittide),
                      "127.0.0.1:%d" % port)
    if args.baseline:
        port = free_port()
        p = start_seeder([args.baseline, "seed", torrent, "-o", src, "--listen", "127.0.0.1:%d" % port,
                          "--no-dht", "--json", "--state-dir", os.path.join(work, "base-seed")]
                         + list(extra_bittide), lambda line: '"state":"seeding"' in line, procs)
        out["bittide-base"] = (p, "127.0.0.1:%d" % port)
    if not args.only_bittide:
        port = free_port()
        out["libtorrent"] = (lt_seeder(torrent, src, port, procs), "127.0.0.1:%d" % port)
    return out


def seed_section(args, work, src, torrent):
    """One libtorrent leecher downloads the single file from each seeder."""
    procs = []
    try:
        serving = seeders(args, work, src, torrent, procs)

        def measure(name, out):
            p, peer = serving[name]
            before = tree_cpu(p.pid)
            seconds, _, _ = timed([PY, LT_TOOL, "leech", torrent, out, peer, "127.0.0.1", "600"])
            return seconds, tree_cpu(p.pid) - before, tree_rss_mib(p.pid)

        rows = rotate(serving, args.runs, work, measure, "seed")
        med = table("seed single.bin (%d MiB) to one libtorrent leecher: the leecher's time, the "
                    "seeder's CPU and RSS, median of %d runs" % (args.size_mib, args.runs),
                    rows, args.size_mib)
        ratios(med)
        if "bittide" in med and "libtorrent" in med:
            print("bittide/libtorrent seeder CPU ratio: %.2f"
                  % (med["bittide"][1] / max(med["libtorrent"][1], 0.01)))
    finally:
        for p in procs:
            p.kill()


def swarm_section(args, work, src, torrent):
    """`--leechers` libtorrent leechers at once from each seeder."""
    procs = []
    n = args.leechers
    try:
        serving = seeders(args, work, src, torrent, procs,
                          ["--max-peers-per-ip", str(n + 4), "--max-peers", str(n + 10)])

        def measure(name, out):
            p, peer = serving[name]
            before = tree_cpu(p.pid)
            got = subprocess.run([PY, LT_TOOL, "leech-many", str(n), torrent, out, peer],
                                 capture_output=True, text=True, timeout=900)
            said = got.stdout.strip()
            if not said.startswith("done "):
                raise RuntimeError("leech-many: %s %s" % (said, got.stderr[-500:]))
            return float(said.split()[1]), tree_cpu(p.pid) - before, tree_rss_mib(p.pid)

        rows = rotate(serving, args.runs, work, measure, "swarm")
        med = table("seed swarm.bin (%d MiB) to %d libtorrent leechers at once: time until all have "
                    "it, aggregate MiB/s = %d x size / time, seeder CPU and RSS, median of %d runs"
                    % (args.swarm_mib, n, n, args.runs), rows, args.swarm_mib * n)
        ratios(med)
    finally:
        for p in procs:
            p.kill()


def floor_section(args, work, data, single, procs):
    """The CPU a download of `data` cannot avoid on this machine: hashing
    its bytes and writing them past the page cache; bittide's CPU for the
    same bytes in pieces of several sizes, as a multiple of it. (Each
    piece is a disk job: small pieces cost more than the bytes do.)"""
    sha = statistics.median(timed(["openssl", "dgst", "-sha1", data])[1] for _ in range(args.runs))
    target = os.path.join(work, "floor.bin")
    write = statistics.median(
        timed(["dd", "if=" + data, "of=" + target, "bs=1M", "oflag=direct", "status=none"])[1]
        for _ in range(args.runs))
    os.remove(target)
    gib = args.size_mib / 1024
    floor = (sha + write) / gib
    print("\nfloor for %d MiB, median of %d runs: SHA-1 %.2f CPU s, O_DIRECT write %.2f CPU s: "
          "%.2f CPU s per GiB" % (args.size_mib, args.runs, sha, write, floor))
    if single and "bittide" in single:
        ours = single["bittide"][1] / gib
        print("bittide download: %.2f CPU s per GiB, %.2f x the floor" % (ours, ours / floor))
    src = os.path.dirname(data)
    rows = {}
    for piece in ("256K", "1M", "4M"):
        torrent = os.path.join(work, "floor-%s.torrent" % piece)
        subprocess.run([BITTIDE, "create", data, "--piece-size", piece, "--no-date", "-o", torrent],
                       check=True, capture_output=True)
        port = free_port()
        seeder = lt_seeder(torrent, src, port, procs)
        peer = "127.0.0.1:%d" % port
        got = rotate({piece: None}, args.runs, work,
                     lambda _, out: timed(bittide_cmd(BITTIDE, torrent, out, [peer])), "floor")
        seeder.kill()
        rows.update(got)
    med = table("bittide downloading the same %d MiB in pieces of each size from one libtorrent "
                "seeder, median of %d runs" % (args.size_mib, args.runs), rows, args.size_mib,
                label="pieces")
    for piece, (_, cpu, _) in med.items():
        print("pieces of %s: %.2f CPU s per GiB, %.2f x the floor" % (piece, cpu / gib, cpu / gib / floor))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--multi-mib", type=int, default=256)
    ap.add_argument("--swarm-mib", type=int, default=256)
    ap.add_argument("--leechers", type=int, default=20)
    ap.add_argument("--only", default="download,four,seed,swarm,floor",
                    help="the sections to run, comma-separated")
    ap.add_argument("--rqbit", default=shutil.which("rqbit"))
    ap.add_argument("--runtimes", action="store_true",
                    help="also time bittide on smol and async-std (their `download` examples)")
    ap.add_argument("--only-bittide", action="store_true", help="skip the other clients")
    ap.add_argument("--baseline", help="another bittide binary (an older build) timed in the same run as 'bittide-base'")
    args = ap.parse_args()
    sections = set(args.only.split(","))
    if not os.path.exists(BITTIDE):
        sys.exit("build bittide first: cargo build --release -p bittide-cli")
    work = tempfile.mkdtemp(prefix="bittide-bench-")
    procs = []
    try:
        src = os.path.join(work, "src")
        os.makedirs(os.path.join(src, "multi", "a", "b"))
        make_data(os.path.join(src, "single.bin"), args.size_mib << 20, 1)
        if "download" in sections:
            for i in range(16):
                sub = os.path.join(src, "multi", "a" if i % 2 else "a/b")
                make_data(os.path.join(sub, "f%02d.bin" % i), (args.multi_mib << 20) // 16, 100 + i)
        if "swarm" in sections:
            make_data(os.path.join(src, "swarm.bin"), args.swarm_mib << 20, 2)
        examples = {}
        if args.runtimes:
            for crate, example in [("bittide-smol", "smol_download"), ("bittide-async-std", "async_std_download")]:
                subprocess.run(["cargo", "build", "--release", "-q", "-p", crate, "--example", example],
                               cwd=ROOT, check=True)
                dst = os.path.join(work, crate)
                shutil.copy(os.path.join(ROOT, "target", "release", "examples", example), dst)
                examples[crate] = dst
        tracker_port = free_port()
        url = "http://127.0.0.1:%d/announce" % tracker_port

        def make_torrent(name, tracker):
            t = os.path.join(work, name + (".torrent" if tracker else ".direct.torrent"))
            cmd = [BITTIDE, "create", os.path.join(src, name), "--piece-size", "256K", "--no-date", "-o", t]
            subprocess.run(cmd + (["-t", url] if tracker else []), check=True, capture_output=True)
            info = subprocess.run([BITTIDE, "info", "--json", t], check=True, capture_output=True, text=True)
            return t, __import__("json").loads(info.stdout)["info_hash"]

        torrents = {"single.bin": make_torrent("single.bin", True)}
        if "download" in sections:
            torrents["multi"] = make_torrent("multi", True)
        ot = os.path.join(work, "ot")
        os.makedirs(ot)
        os.chmod(ot, 0o755)
        with open(os.path.join(ot, "whitelist.txt"), "w") as f:
            f.write("\n".join(h for _, h in torrents.values()) + "\n")
        with open(os.path.join(ot, "conf"), "w") as f:
            f.write("access.whitelist /whitelist.txt\n")
        procs.append(subprocess.Popen(["opentracker", "-i", "127.0.0.1", "-p", str(tracker_port), "-P",
                                       str(tracker_port), "-f", os.path.join(ot, "conf"), "-d", ot],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        single = None
        if "download" in sections:
            single = download_section(args, work, src, torrents, examples, procs)
        if "four" in sections:
            four_section(args, work, src, torrents["single.bin"][0])
        if "seed" in sections:
            seed_section(args, work, src, make_torrent("single.bin", False)[0])
        if "swarm" in sections:
            swarm_section(args, work, src, make_torrent("swarm.bin", False)[0])
        if "floor" in sections:
            floor_section(args, work, os.path.join(src, "single.bin"), single, procs)
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
