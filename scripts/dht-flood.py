#!/usr/bin/python3
"""DHT amplification on loopback (issue 12): how many bytes does a
`bittide dht serve` node send back for a flood of get_peers queries from
many source addresses?

  /usr/bin/python3 scripts/dht-flood.py BITTIDE [--queries 300000]
      [--sources 256] [--rate 10000] [--no-honest]

BITTIDE is the path of a built `bittide` binary (debug or release). The
script starts `bittide dht serve --dht-allow-local` on 127.0.0.1, has a
one-shot `bittide dht announce` store a peer on it, then sends QUERIES
get_peers queries (random info-hashes, each from a made-up node id) from
SOURCES UDP sockets bound to 127.0.1.0, 127.0.1.1, ... (all of 127.0.0.0/8
is loopback on Linux), RATE queries a second, round robin. It counts the
UDP payload bytes it sent (the node's bytes in) and received back (the
node's bytes out) and prints both and their ratio. A tenth of the way into
the flood it runs `bittide dht get-peers` against the node and reports
whether the honest lookup found the announced peer while the flood went on.

Everything stays on 127.0.0.0/8; the node runs for a bounded time and is
stopped at the end. Python 3 standard library only.
"""
import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time

HASH = "5a" * 20
PEER_PORT = 7777


def bencode_str(b):
    return str(len(b)).encode() + b":" + b


def get_peers_query(tx, node_id, info_hash):
    return (
        b"d1:ad"
        + bencode_str(b"id")
        + bencode_str(node_id)
        + bencode_str(b"info_hash")
        + bencode_str(info_hash)
        + b"e1:q9:get_peers1:t"
        + bencode_str(tx)
        + b"1:y1:qe"
    )


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def dht_cmd(binary, port, args, timeout):
    return [
        binary,
        "dht",
        "--bootstrap",
        f"127.0.0.1:{port}",
        "--dht-allow-local",
        "--json",
        "--timeout",
        str(timeout),
    ] + args


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--queries", type=int, default=300_000)
    ap.add_argument("--sources", type=int, default=256)
    ap.add_argument("--rate", type=int, default=10_000, help="queries per second")
    ap.add_argument("--no-honest", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.sources <= 256:
        sys.exit("--sources: 1 to 256")

    port = free_udp_port()
    flood_secs = a.queries / a.rate
    serve_secs = int(flood_secs + 20)
    # A bootstrap address nobody listens on: the node starts alone (and
    # never looks up the public routers).
    serve = subprocess.Popen(
        [
            a.binary,
            "dht",
            "--port",
            str(port),
            "--bootstrap",
            "127.0.0.1:9",
            "--timeout",
            "1",
            "--dht-allow-local",
            "--json",
            "serve",
            "--duration",
            str(serve_secs),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = serve.stdout.readline()
        if not first:
            sys.exit("bittide dht serve exited")
        print(f"node: {first.strip()}")
        run_flood(a, port, flood_secs)
        serve.wait(timeout=serve_secs + 30)
        stats = [l for l in serve.stdout.read().splitlines() if l.startswith("{")]
        if stats:
            print(f"node's counters: {stats[-1]}")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def run_flood(a, port, flood_secs):
    binary = a.binary
    announced = subprocess.run(
        dht_cmd(binary, port, ["announce", HASH, str(PEER_PORT)], 10),
        capture_output=True,
        text=True,
        timeout=30,
    )
    print(f"announce: {announced.stdout.strip() or announced.stderr.strip()}")

    sel = selectors.DefaultSelector()
    socks = []
    for i in range(a.sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((f"127.0.1.{i}", 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    target = ("127.0.0.1", port)
    rnd = os.urandom
    node_ids = [rnd(20) for _ in socks]
    sent_bytes = sent = recv_bytes = received = send_errors = 0
    honest = None
    honest_started = honest_done = None
    honest_at = a.queries // 10
    start = time.monotonic()

    def drain(timeout):
        nonlocal recv_bytes, received
        for key, _ in sel.select(timeout):
            while True:
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    break
                recv_bytes += len(data)
                received += 1

    for q in range(a.queries):
        if q == honest_at and not a.no_honest:
            honest = subprocess.Popen(
                dht_cmd(binary, port, ["get-peers", HASH], 10),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            honest_started = time.monotonic()
        i = q % len(socks)
        msg = get_peers_query(q.to_bytes(4, "big"), node_ids[i], rnd(20))
        try:
            socks[i].sendto(msg, target)
            sent_bytes += len(msg)
            sent += 1
        except OSError:
            send_errors += 1
        if q % 256 == 255:
            drain(0)
            if honest is not None and honest_done is None and honest.poll() is not None:
                honest_done = time.monotonic()
            # Pace to the rate (reading answers while waiting).
            while True:
                ahead = (q + 1) / a.rate - (time.monotonic() - start)
                if ahead <= 0:
                    break
                drain(ahead)
    flood_end = time.monotonic()
    end = flood_end + 2
    while time.monotonic() < end:
        drain(0.1)
    if honest is not None:
        try:
            honest.wait(timeout=30)
        except subprocess.TimeoutExpired:
            honest.kill()
        if honest_done is None:
            honest_done = time.monotonic()
    for s in socks:
        s.close()

    print(
        f"flood: {sent} get_peers queries from {len(socks)} sources in "
        f"{flood_end - start:.1f} s ({send_errors} send errors)"
    )
    print(f"bytes in (sent to the node):    {sent_bytes}")
    print(f"bytes out (the node's answers): {recv_bytes} in {received} datagrams")
    print(f"ratio out/in: {recv_bytes / max(sent_bytes, 1):.3f}")
    if honest is not None:
        out, err = honest.communicate(timeout=30)
        took = honest_done - honest_started
        try:
            peers = json.loads(out).get("peers", [])
        except ValueError:
            peers = []
        want = f"127.0.0.1:{PEER_PORT}"
        verdict = "found" if want in peers else "did NOT find"
        during = "during" if honest_done <= flood_end else "partly after"
        print(
            f"honest lookup (started at query {honest_at}, {took:.2f} s, {during} the flood): "
            f"{verdict} {want}; peers {peers}; exit {honest.returncode}"
            + (f"; stderr {err.strip()}" if err.strip() else "")
        )


if __name__ == "__main__":
    main()
