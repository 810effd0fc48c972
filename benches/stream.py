#!/usr/bin/python3
"""Streaming benchmark, on 127.0.0.1 (it is not a test; run it on an idle
machine): how soon a stream's first byte comes, against the time to
download the whole file (issue 15).

A --size-mib file (1 GiB by default) in 256 KiB pieces, seeded by
libtorrent with its upload limited to --rate-mib MiB/s (20 by default).
Each measurement adds the torrent to a fresh `bittide daemon` (told the
seeder's address) and asks for one byte with a Range request:

1. cold, offset 0: the torrent was just added (connecting included); a
   first run is shown apart, as the seeder's first peer waits about 1 s
   for libtorrent's first unchoke;
2. cold, offset 50 %;
3. seek while streaming: a stream reads from offset 0 for 2 s, then a
   second request asks for the byte at 50 % (what a player's seek does);
4. the whole file downloaded (no stream), for comparison.

Target (issue 15): first byte at 50 % in under 1 s.

  /usr/bin/python3 benches/stream.py [--size-mib 1024] [--rate-mib 20]
      [--bittide target/release/bittide]

Needs: a release build (cargo build --release -p bittide-cli) and the
Debian package python3-libtorrent. rqbit's streaming is not measured here.
"""
import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as bench  # noqa: E402  (Daemon, free_port, make_data)

LIMIT = 600  # seconds any one wait may take


def first_byte(d, hash_, offset, source):
    """Seconds from sending a Range request at `offset` to its first body
    byte (checked against the source file)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=LIMIT)
    start = time.perf_counter()
    conn.request("GET", "/api/v1/torrents/%s/files/0/stream" % hash_,
                 headers={"Range": "bytes=%d-%d" % (offset, offset)})
    r = conn.getresponse()
    if r.status != 206:
        raise RuntimeError("stream at %d: HTTP %d" % (offset, r.status))
    got = r.read(1)
    took = time.perf_counter() - start
    with open(source, "rb") as f:
        f.seek(offset)
        if got != f.read(1):
            raise RuntimeError("stream at %d: not the source's byte" % offset)
    conn.close()
    return took


def downloaded(d, hash_):
    return d.request("GET", "/api/v1/torrents/" + hash_)["downloaded"]


def fresh(work, tag, args, torrent, port):
    shutil.rmtree(os.path.join(work, "state-" + tag), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "dl-" + tag), ignore_errors=True)
    bench.BITTIDE = args.bittide
    d = bench.Daemon(work, tag)
    with open(torrent, "rb") as f:
        hash_ = d.add(f.read(), "peers=127.0.0.1:%d" % port)
    return d, hash_


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rate-mib", type=int, default=20)
    ap.add_argument("--bittide", default=bench.BITTIDE)
    args = ap.parse_args()
    if not os.path.exists(args.bittide):
        sys.exit("no %s: cargo build --release -p bittide-cli" % args.bittide)
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="bittide-stream-bench-")
    seeder = None
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        data = os.path.join(src, "movie.mkv")
        bench.make_data(data, size, 1)
        torrent = os.path.join(work, "movie.torrent")
        subprocess.run([args.bittide, "create", data, "--piece-size", "256K", "--no-date",
                        "-o", torrent], check=True, capture_output=True)
        port = bench.free_port()
        seeder = subprocess.Popen(
            [bench.PY, bench.LT_TOOL, "seed", torrent, src, str(port),
             str(args.rate_mib << 20)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if seeder.stdout.readline().strip() != "ready":
            sys.exit("the libtorrent seeder did not start")
        print("file %d MiB, 256 KiB pieces, seeder limited to %d MiB/s, bittide %s"
              % (args.size_mib, args.rate_mib, args.bittide))

        # The first peer to reach the libtorrent seeder waits about 1 s for
        # its first unchoke whatever it asks for; that run is shown apart.
        for tag, offset in (("first-contact-0", 0), ("cold-0", 0), ("cold-50", size // 2)):
            d, h = fresh(work, tag, args, torrent, port)
            try:
                took = first_byte(d, h, offset, data)
                print("%s: first byte after %.3f s, %.1f MiB downloaded by then"
                      % (tag, took, downloaded(d, h) / 1048576))
            finally:
                d.stop()

        d, h = fresh(work, "seek", args, torrent, port)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=LIMIT)
            conn.request("GET", "/api/v1/torrents/%s/files/0/stream" % h)
            playing = conn.getresponse()
            stop = threading.Event()

            def play():
                while not stop.is_set() and playing.read(1 << 16):
                    pass
            reader = threading.Thread(target=play, daemon=True)
            reader.start()
            time.sleep(2)
            before = downloaded(d, h)
            took = first_byte(d, h, size // 2, data)
            print("seek to 50 %% while streaming from 0: first byte after %.3f s "
                  "(%.1f MiB downloaded at the seek, of %d)"
                  % (took, before / 1048576, args.size_mib))
            stop.set()
            conn.close()
        finally:
            d.stop()

        d, h = fresh(work, "whole", args, torrent, port)
        try:
            start = time.perf_counter()
            deadline = start + LIMIT
            while d.request("GET", "/api/v1/torrents/" + h)["progress"] < 1.0:
                if time.perf_counter() > deadline:
                    sys.exit("the whole download took over %d s" % LIMIT)
                time.sleep(0.1)
            print("whole file: %.1f s" % (time.perf_counter() - start))
        finally:
            d.stop()
    finally:
        if seeder is not None:
            seeder.kill()
            seeder.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
