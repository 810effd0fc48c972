#!/usr/bin/python3
"""uTP benchmark on 127.0.0.1 (it is not a test; run it on an idle
machine): one --size-mib file (1 GiB by default, 256 KiB pieces), each
transfer timed in the same run, medians of --runs:

  lt->lt uTP        a libtorrent leecher from a libtorrent seeder, both
                    with TCP off (libtorrent's own uTP)
  lt->bittide uTP   `bittide download --no-tcp` from that seeder
  bittide->lt uTP   a uTP-only libtorrent leecher from `bittide seed
                    --no-tcp`
  lt->bittide TCP   `bittide download --no-utp` from a TCP libtorrent
                    seeder (the reference)

and the ratios issue 17 asks for: libtorrent's uTP time over bittide's
(target: at least 2), and bittide's uTP time over its TCP time.

  /usr/bin/python3 benches/utp.py [--runs 3] [--size-mib 1024]

Needs a release build (cargo build --release -p bittide-cli), Debian's
python3-libtorrent and time.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (BITTIDE, LT_TOOL, PY, free_port, make_data, timed)
import mse  # noqa: E402  (wait_seeding)

LIMIT = 900  # seconds any one transfer may take


def lt_seeder(command, torrent, src):
    """A libtorrent seeder (`seed` or `seed-utp`), once it is ready; it
    serves for as long as the whole run may take."""
    port = compare.free_port()
    serve = str(LIMIT * 20)
    extra = ["0", serve] if command == "seed" else [serve]
    p = subprocess.Popen([compare.PY, compare.LT_TOOL, command, torrent, src, str(port)] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if p.stdout.readline().strip() != "ready":
        p.kill()
        raise RuntimeError("libtorrent %s did not start" % command)
    return p, port


def bittide_seeder(work, torrent, src):
    """`bittide seed --no-tcp`, once it reports seeding."""
    port = compare.free_port()
    log = os.path.join(work, "seed.log")
    p = subprocess.Popen([compare.BITTIDE, "seed", torrent, "-o", src, "--no-tcp", "--no-dht",
                          "--json", "--listen", "127.0.0.1:%d" % port,
                          "--state-dir", os.path.join(work, "seed-state")],
                         stdout=open(log, "w"), stderr=subprocess.DEVNULL)
    try:
        mse.wait_seeding(log, p)
    except RuntimeError:
        p.kill()
        raise
    return p, port


def bittide_download(torrent, out, port, transport_flag):
    return [compare.BITTIDE, "download", torrent, "-o", out, transport_flag, "--no-dht",
            "--peer", "127.0.0.1:%d" % port, "--listen", "127.0.0.1:%d" % compare.free_port(),
            "--state-dir", out + ".state", "--timeout", "120"]


def main():
    with compare.bench(__doc__, "bittide-utp-bench-") as (args, work, procs):
        src = os.path.join(work, "src")
        os.makedirs(src)
        data = os.path.join(src, "data.bin")
        compare.make_data(data, args.size_mib << 20, 29)
        torrent = os.path.join(work, "data.torrent")
        subprocess.run([compare.BITTIDE, "create", data, "--piece-size", "256K", "-o", torrent],
                       check=True, stdout=subprocess.DEVNULL)
        utp_seed, utp_port = lt_seeder("seed-utp", torrent, src)
        procs.append(utp_seed)
        tcp_seed, tcp_port = lt_seeder("seed", torrent, src)
        procs.append(tcp_seed)
        bt_seed, bt_port = bittide_seeder(work, torrent, src)
        procs.append(bt_seed)
        transfers = {
            "lt->lt uTP": lambda out: [compare.PY, compare.LT_TOOL, "leech-utp", torrent, out,
                                       "127.0.0.1:%d" % utp_port, str(LIMIT)],
            "lt->bittide uTP": lambda out: bittide_download(torrent, out, utp_port, "--no-tcp"),
            "bittide->lt uTP": lambda out: [compare.PY, compare.LT_TOOL, "leech-utp", torrent, out,
                                            "127.0.0.1:%d" % bt_port, str(LIMIT)],
            "lt->bittide TCP": lambda out: bittide_download(torrent, out, tcp_port, "--no-utp"),
        }
        title = "%d MiB, 256 KiB pieces, 127.0.0.1" % args.size_mib
        med = compare.run_rotating(transfers, args.runs, work, data, LIMIT, args.size_mib, title)
        if "lt->lt uTP" in med and "lt->bittide uTP" in med:
            print("libtorrent uTP / bittide uTP download time: %.2f (target >= 2)"
                  % (med["lt->lt uTP"] / med["lt->bittide uTP"]))
        if "lt->lt uTP" in med and "bittide->lt uTP" in med:
            print("libtorrent uTP / bittide uTP seeding time: %.2f"
                  % (med["lt->lt uTP"] / med["bittide->lt uTP"]))
        if "lt->bittide TCP" in med and "lt->bittide uTP" in med:
            print("bittide uTP / TCP download time: %.2f"
                  % (med["lt->bittide uTP"] / med["lt->bittide TCP"]))

if __name__ == "__main__":
    main()
