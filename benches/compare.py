#!/usr/bin/python3
"""End-to-end download benchmark: bittide against rqbit, aria2c and a
python3-libtorrent leecher, all fetching from one local libtorrent seeder
(with opentracker for the clients that need a tracker), on 127.0.0.1.

Clients alternate within each round, several rounds; for each client the
script prints the median wall time, MiB/s, CPU seconds (user + system) and
peak RSS (from /usr/bin/time -v), and bittide's ratios to the others.

  /usr/bin/python3 benches/compare.py [--runs 3] [--size-mib 1024]
      [--multi-mib 256] [--rqbit PATH] [--runtimes] [--only-bittide]
      [--baseline OLD_BITTIDE]

--baseline times an older bittide binary in the same run (as
`bittide-base`), for before/after figures of a change.

--runtimes adds bittide on smol and async-std (their `smol_download` and
`async_std_download` examples),
so the three runtimes are measured in the same run.

Needs: a release build of bittide (cargo build --release -p bittide-cli),
Debian packages python3-libtorrent, aria2, opentracker, time; rqbit
(`cargo install rqbit --locked --no-default-features --features
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
    import shutil
    import statistics
    import sys
    results = {}
    for r in range(runs):
        order = list(transfers)
        order = order[r % len(order):] + order[:r % len(order)]
        for name in order:
            out = os.path.join(work, "out")
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out + ".state", ignore_errors=True)
            os.makedirs(out)
            try:
                m = timed(transfers[name](out), timeout=limit)
                if not filecmp.cmp(data, os.path.join(out, "data.bin"), shallow=False):
                    raise RuntimeError("the downloaded file differs")
            except Exception as e:  # report, keep going
                print("%s run %d: %s" % (name, r, e), file=sys.stderr)
                continue
            results.setdefault(name, []).append(m)
            print("  %s run %d: %.2f s" % (name, r, m[0]), file=sys.stderr, flush=True)
    print("%s, median of %d runs" % (title, runs))
    print("%-*s %8s %9s %8s %9s" % (width, "transfer", "time s", "MiB/s", "CPU s", "RSS MiB"))
    med = {}
    for name in transfers:
        ms = results.get(name)
        if not ms:
            print("%-*s %8s" % (width, name, "failed"))
            continue
        t = statistics.median(m[0] for m in ms)
        c = statistics.median(m[1] for m in ms)
        med[name] = t
        print("%-*s %8.2f %9.1f %8.2f %9.1f" % (width, name, t, size_mib / t, c,
                                                max(m[2] for m in ms)))
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--multi-mib", type=int, default=256)
    ap.add_argument("--rqbit", default=shutil.which("rqbit"))
    ap.add_argument("--runtimes", action="store_true",
                    help="also time bittide on smol and async-std (their `download` examples)")
    ap.add_argument("--only-bittide", action="store_true", help="skip the other clients")
    ap.add_argument("--baseline", help="another bittide binary (an older build) timed in the same run as 'bittide-base'")
    args = ap.parse_args()
    if not os.path.exists(BITTIDE):
        sys.exit("build bittide first: cargo build --release -p bittide-cli")
    work = tempfile.mkdtemp(prefix="bittide-bench-")
    procs = []
    try:
        src = os.path.join(work, "src")
        os.makedirs(os.path.join(src, "multi", "a", "b"))
        make_data(os.path.join(src, "single.bin"), args.size_mib << 20, 1)
        for i in range(16):
            sub = os.path.join(src, "multi", "a" if i % 2 else "a/b")
            make_data(os.path.join(sub, "f%02d.bin" % i), (args.multi_mib << 20) // 16, 100 + i)
        examples = {}
        if args.runtimes:
            for crate, label in [("bittide-smol", "bittide-smol"), ("bittide-async-std", "bittide-async-std")]:
                subprocess.run(["cargo", "build", "--release", "-q", "-p", crate, "--example", label.replace("bittide-", "").replace("-", "_") + "_download"],
                               cwd=ROOT, check=True)
                dst = os.path.join(work, label)
                shutil.copy(os.path.join(ROOT, "target", "release", "examples", label.replace("bittide-", "").replace("-", "_") + "_download"), dst)
                examples[label] = dst
        tracker_port = free_port()
        url = "http://127.0.0.1:%d/announce" % tracker_port
        torrents = {}
        for name in ["single.bin", "multi"]:
            t = os.path.join(work, name + ".torrent")
            subprocess.run([BITTIDE, "create", os.path.join(src, name), "-t", url, "--piece-size", "256K",
                            "--no-date", "-o", t], check=True, capture_output=True)
            info = subprocess.run([BITTIDE, "info", "--json", t], check=True, capture_output=True, text=True)
            torrents[name] = (t, __import__("json").loads(info.stdout)["info_hash"])
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
        results = {}
        for name, (torrent, _) in torrents.items():
            seed_port = free_port()
            seeder = subprocess.Popen([PY, LT_TOOL, "seed", torrent, src, str(seed_port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(seeder)
            assert seeder.stdout.readline().strip() == "ready"
            peer = "127.0.0.1:%d" % seed_port
            clients = {
                "bittide": lambda out: [BITTIDE, "download", torrent, "-o", out, "--peer", peer, "--no-dht",
                                        "--listen", "127.0.0.1:%d" % free_port(),
                                        "--state-dir", out + ".state"],
                "libtorrent": lambda out: [PY, LT_TOOL, "leech", torrent, out, peer],
                "aria2c": lambda out: ["aria2c", "--enable-dht=false", "--bt-enable-lpd=false",
                                       "--enable-peer-exchange=false", "--disable-ipv6=true", "--seed-time=0",
                                       "--listen-port=%d" % free_port(), "--dir=" + out, "--quiet=true",
                                       torrent],
            }
            if args.baseline:
                clients["bittide-base"] = lambda out: [args.baseline, "download", torrent, "-o", out, "--peer", peer,
                                                       "--no-dht", "--listen", "127.0.0.1:%d" % free_port(),
                                                       "--state-dir", out + ".state"]
            for label, binary in examples.items():
                clients[label] = (lambda b: lambda out: [b, torrent, out, peer])(binary)
            if args.only_bittide:
                clients = {k: v for k, v in clients.items() if k.startswith("bittide")}
            if args.rqbit and not args.only_bittide:
                clients["rqbit"] = lambda out: [args.rqbit, "--disable-dht", "--disable-dht-persistence",
                                                "--disable-upnp-port-forward", "--disable-lsd",
                                                "--listen-ip", "127.0.0.1", "--listen-port", str(free_port()),
                                                "--http-api-listen-addr", "127.0.0.1:%d" % free_port(),
                                                "download", "-e", "-o", out, "--initial-peers", peer, torrent]
            for r in range(args.runs):
                order = list(clients)
                order = order[r % len(order):] + order[:r % len(order)]
                for client in order:
                    out = os.path.join(work, "out-%s" % client)
                    shutil.rmtree(out, ignore_errors=True)
                    shutil.rmtree(out + ".state", ignore_errors=True)
                    os.makedirs(out)
                    try:
                        m = timed(clients[client](out))
                    except Exception as e:  # report, keep going
                        print("%s %s run %d: %s" % (name, client, r, e), file=sys.stderr)
                        continue
                    results.setdefault((name, client), []).append(m)
                    shutil.rmtree(out, ignore_errors=True)
            seeder.kill()
        sizes = {"single.bin": args.size_mib, "multi": args.multi_mib}
        for name in torrents:
            print("\n%s (%d MiB, 256 KiB pieces), median of %d runs" % (name, sizes[name], args.runs))
            print("%-18s %8s %9s %8s %9s" % ("client", "time s", "MiB/s", "CPU s", "RSS MiB"))
            med = {}
            for (n, client), ms in sorted(results.items()):
                if n != name:
                    continue
                t = statistics.median(m[0] for m in ms)
                c = statistics.median(m[1] for m in ms)
                rss = max(m[2] for m in ms)
                med[client] = t
                print("%-18s %8.2f %9.1f %8.2f %9.1f" % (client, t, sizes[name] / t, c, rss))
            if "bittide" in med:
                for client, t in med.items():
                    if client != "bittide":
                        print("%s/%s time ratio: %.2f" % ("bittide", client, med["bittide"] / t))
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
