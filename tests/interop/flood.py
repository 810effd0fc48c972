#!/usr/bin/python3
"""Hostile TCP connections for bittide's denial-of-service tests. Standard
library only; everything stays on 127.0.0.0/8.

  flood.py idle TARGET SECONDS SOURCE...
      Opens connections to TARGET (host:port) that never send a byte.
  flood.py handshake TARGET SECONDS INFO_HASH PIECES SOURCE...
      Opens connections that each send a correct BitTorrent handshake for
      INFO_HASH (BEP 3, a peer id of their own), an empty bitfield for
      PIECES pieces, then a keep-alive every 3 s, and read whatever comes.

SOURCE is IP*N (N connections bound to IP) or A.B.C.X-Y*N (N from each of
A.B.C.X .. A.B.C.Y), e.g. 127.0.1.1-250*4 127.0.3.1*300. Every connection
the target closes (or that fails) is opened again after --reopen seconds
(default 1), so the flood holds for SECONDS and then exits.

Output on stdout: "ready" once every connection was tried once, then every
second "stats opened=O open=N closed=C answered=A failed=F": O connections
established so far, N established now, C closed by the target, A that got
the target's own handshake back (handshake mode), F connects that failed.
"""
import argparse
import errno
import resource
import selectors
import socket
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
KEEPALIVE_EVERY = 3.0
# Connects started per loop turn: the initial burst must not stall the loop.
BURST = 400


def parse_sources(specs):
    """[(ip, count)] from IP*N and A.B.C.X-Y*N."""
    out = []
    for spec in specs:
        addr, _, count = spec.partition("*")
        count = int(count or "1")
        if "-" in addr:
            first, last = addr.split("-")
            prefix, _, start = first.rpartition(".")
            for x in range(int(start), int(last) + 1):
                out.append(("%s.%d" % (prefix, x), count))
        else:
            out.append((addr, count))
    return out


class Slot:
    """One connection, opened again whenever it ends."""

    def __init__(self, ip):
        self.ip = ip
        self.sock = None
        self.state = "idle"  # idle -> connecting -> open -> idle
        self.due = 0.0  # when to (re)open, while idle
        self.received = 0
        self.answered = False
        self.next_keepalive = 0.0


class Flood:
    def __init__(self, target, greeting, reopen):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.greeting = greeting
        self.reopen = reopen
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.open = 0
        self.closed = 0
        self.answered = 0
        self.failed = 0
        self.count = 0

    def start(self, slot, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            # The port is picked at connect time, per destination: hundreds
            # of connections (and TIME_WAITs) from one source IP fit.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((slot.ip, 0))
            err = s.connect_ex(self.target)
        except OSError as e:
            err = e.errno
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.failed += 1
            slot.due = now + self.reopen
            return
        slot.sock = s
        slot.state = "connecting"
        slot.received = 0
        slot.answered = False
        self.sel.register(s, selectors.EVENT_WRITE, slot)

    def end(self, slot, now, by_target):
        self.sel.unregister(slot.sock)
        slot.sock.close()
        slot.sock = None
        if slot.state == "open":
            self.open -= 1
            if by_target:
                self.closed += 1
        else:
            self.failed += 1
        slot.state = "idle"
        slot.due = now + self.reopen

    def established(self, slot, now):
        err = slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.end(slot, now, False)
            return
        slot.state = "open"
        self.opened += 1
        self.open += 1
        self.sel.modify(slot.sock, selectors.EVENT_READ, slot)
        if self.greeting:
            self.count += 1
            self.send(slot, now, self.greeting(self.count))
            slot.next_keepalive = now + KEEPALIVE_EVERY

    def send(self, slot, now, data):
        try:
            slot.sock.send(data)
        except BlockingIOError:
            pass  # The target does not read: nothing to add.
        except OSError:
            self.end(slot, now, True)

    def readable(self, slot, now):
        try:
            data = slot.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self.end(slot, now, True)
            return
        if not data:
            self.end(slot, now, True)
            return
        slot.received += len(data)
        # The target's handshake: 68 bytes starting with the protocol name.
        if not slot.answered and slot.received >= 68:
            slot.answered = True
            self.answered += 1

    def run(self, slots, seconds):
        import sys
        end = time.monotonic() + seconds
        next_stats = time.monotonic() + 1.0
        announced = False
        while True:
            now = time.monotonic()
            if now >= end:
                break
            started = 0
            for slot in slots:
                if slot.state == "idle" and slot.due <= now and started < BURST:
                    self.start(slot, now)
                    started += 1
                elif (slot.state == "open" and self.greeting
                      and slot.next_keepalive <= now):
                    slot.next_keepalive = now + KEEPALIVE_EVERY
                    self.send(slot, now, b"\0\0\0\0")
            if not announced and all(s.due > 0 or s.state != "idle" for s in slots):
                print("ready", flush=True)
                announced = True
            for key, events in self.sel.select(timeout=0.05):
                slot = key.data
                if slot.sock is None:
                    continue
                if slot.state == "connecting":
                    self.established(slot, now)
                elif events & selectors.EVENT_READ:
                    self.readable(slot, now)
            if now >= next_stats:
                next_stats = now + 1.0
                print("stats opened=%d open=%d closed=%d answered=%d failed=%d" % (
                    self.opened, self.open, self.closed, self.answered, self.failed),
                    flush=True)
        sys.stdout.flush()


def handshake(info_hash_hex, pieces, n):
    """BEP 3 handshake with peer id -FL0001-<n> (each connection its own),
    then a bitfield of zeros."""
    peer_id = ("-FL0001-%012d" % n).encode()
    hs = (b"\x13BitTorrent protocol" + b"\0" * 8 + bytes.fromhex(info_hash_hex) + peer_id)
    nbytes = (pieces + 7) // 8
    bitfield = (1 + nbytes).to_bytes(4, "big") + b"\x05" + b"\0" * nbytes
    return hs + bitfield


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["idle", "handshake"])
    p.add_argument("target")
    p.add_argument("seconds", type=float)
    p.add_argument("rest", nargs="+")
    p.add_argument("--reopen", type=float, default=1.0)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.mode == "idle":
        greeting, sources = None, a.rest
    else:
        info_hash, pieces = a.rest[0], int(a.rest[1])
        greeting = lambda n: handshake(info_hash, pieces, n)  # noqa: E731
        sources = a.rest[2:]
    slots = [Slot(ip) for ip, count in parse_sources(sources) for _ in range(count)]
    if len(slots) + 64 > hard:
        raise SystemExit("%d connections need more file descriptors (limit %d)" % (
            len(slots), hard))
    Flood(a.target, greeting, a.reopen).run(slots, a.seconds)


if __name__ == "__main__":
    main()
