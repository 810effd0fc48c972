#!/usr/bin/python3
"""Encryption benchmark, on 127.0.0.1 (it is not a test; run it on an idle
machine): what message stream encryption (MSE/PE, RC4) costs in CPU per
GiB transferred, against the same transfer in plaintext (issue 17's
target: at most 0.4 CPU-s per GiB).

A --size-mib file (512 MiB by default, under the 1 GB a file may take
here) in 256 KiB pieces is seeded by `bittide seed` and downloaded by
`bittide download` told the seeder's address, once per --modes entry
(both sides with the same `--encryption`). For each run it prints the
wall time and the CPU time (user + system) of the downloader (from
wait4) and of the seeder (from /proc over the transfer), per GiB, and
for every mode but the first, its extra CPU per GiB over the first.

  /usr/bin/python3 benches/mse.py [--size-mib 512]
      [--modes disabled,enabled,required] [--bittide target/release/bittide]

Needs a release build (cargo build --release -p bittide-cli).
"""
import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as bench  # noqa: E402  (free_port, make_data)

LIMIT = 600  # seconds any one wait may take
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """User + system CPU seconds of a running process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_seeding(log, proc):
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("bittide seed exited: %s" % open(log).read())
        for line in open(log).read().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "state" and e.get("state") == "seeding":
                return
        time.sleep(0.05)
    raise RuntimeError("bittide seed never started seeding")


def run(bittide, work, torrent, src, mode):
    port = bench.free_port()
    log = os.path.join(work, "seed-%s.log" % mode)
    seeder = subprocess.Popen(
        [bittide, "seed", torrent, "-o", src, "--encryption", mode, "--no-dht",
         "--json", "--listen", "127.0.0.1:%d" % port,
         "--state-dir", os.path.join(work, "state-seed-%s" % mode)],
        stdout=open(log, "w"), stderr=subprocess.DEVNULL)
    out = os.path.join(work, "out-%s" % mode)
    try:
        wait_seeding(log, seeder)
        seed_before = proc_cpu(seeder.pid)
        start = time.perf_counter()
        leecher = subprocess.Popen(
            [bittide, "download", torrent, "-o", out, "--encryption", mode,
             "--no-dht", "--json", "--peer", "127.0.0.1:%d" % port,
             "--listen", "127.0.0.1:%d" % bench.free_port(),
             "--state-dir", os.path.join(work, "state-dl-%s" % mode),
             "--timeout", "60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(leecher.pid, 0)
        wall = time.perf_counter() - start
        seed_cpu = proc_cpu(seeder.pid) - seed_before
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("bittide download --encryption %s failed" % mode)
        return wall, usage.ru_utime + usage.ru_stime, seed_cpu, out
    finally:
        seeder.terminate()
        try:
            seeder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            seeder.kill()
            seeder.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mib", type=int, default=512)
    p.add_argument("--modes", default="disabled,enabled,required")
    p.add_argument("--bittide", default="target/release/bittide")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bittide-mse-bench-")
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        data = os.path.join(src, "data.bin")
        bench.make_data(data, args.size_mib << 20, 17)
        torrent = os.path.join(work, "data.torrent")
        subprocess.run([args.bittide, "create", data, "--piece-size", "256K",
                        "-o", torrent], check=True, stdout=subprocess.DEVNULL)
        gib = args.size_mib / 1024
        print("%d MiB, bittide seed -> bittide download on 127.0.0.1"
              % args.size_mib)
        print("%-9s %8s %14s %14s %14s %12s" % (
            "mode", "wall s", "leech CPU-s/GiB", "seed CPU-s/GiB",
            "total CPU-s/GiB", "extra/GiB"))
        base = None
        for mode in args.modes.split(","):
            wall, leech, seed, out = run(args.bittide, work, torrent, src, mode)
            if not filecmp.cmp(data, os.path.join(out, "data.bin"), shallow=False):
                raise RuntimeError("%s: the downloaded file differs" % mode)
            shutil.rmtree(out)
            total = (leech + seed) / gib
            extra = "" if base is None else "%+.2f" % (total - base)
            base = total if base is None else base
            print("%-9s %8.2f %14.2f %14.2f %14.2f %12s" % (
                mode, wall, leech / gib, seed / gib, total, extra), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
