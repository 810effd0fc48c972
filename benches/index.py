#!/usr/bin/python3
"""Index benchmark (issue 19; it is not a test: run it on an idle machine):
`index_bench` (benches/src/bin/index_bench.rs) against

  sqlite      a SQLite file in a scratch folder (the embedded default)
  postgres    a private PostgreSQL cluster on 127.0.0.1 (initdb in the
              scratch folder, fsync off as for any benchmark cluster)

each filled with --torrents synthetic torrents of --files files (insert
rate, torrents a second) and then searched --searches times (p50, p99 and
the p99 of the commonest words, in milliseconds). Targets: 5,000 torrents
a second into SQLite; p99 at most 50 ms at a million torrents.

  /usr/bin/python3 benches/index.py [--torrents 1000000] [--files 20] [--searches 1000]

Needs a release build (cargo build --release -p bittide-benches --bin
index_bench) and the Debian package postgresql.

  /usr/bin/python3 benches/index.py --sim [--sim-minutes 360]

runs instead the simulator's crawl (tests/tests/sim_index.rs: 2,000
engines seeding 2,000 torrents, 200 more an hour, and the indexing
crawler) for six virtual hours: harvest and index rates per hour and the
crawler's heap, which must stay flat (hour 6 within 10 % of hour 1).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (free_port)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "index_bench")


def postgres(work):
    """A cluster in `work`; returns (url, stop)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        sys.exit("install the Debian package postgresql")
    bin_dir = bins[-1]
    data = os.path.join(work, "pg")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        subprocess.run(["chown", "-R", "postgres:postgres", work], check=True)

    def run(program, *args):
        cmd = [os.path.join(bin_dir, program), *args]
        if as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    port = compare.free_port()
    run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    run("pg_ctl", "-D", data, "-l", os.path.join(work, "pg.log"), "-w", "-o",
        "-k %s -h 127.0.0.1 -p %d -c fsync=off -c synchronous_commit=off" % (work, port), "start")
    return ("postgres://postgres@127.0.0.1:%d/postgres" % port,
            lambda: run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--torrents", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--searches", type=int, default=1000)
    ap.add_argument("--sim", action="store_true",
                    help="run the simulator's crawl into an index instead")
    ap.add_argument("--sim-minutes", type=int, default=360)
    args = ap.parse_args()
    if args.sim:
        env = dict(os.environ, SIM_INDEX_MINUTES=str(args.sim_minutes))
        r = subprocess.run(
            ["cargo", "test", "-q", "-p", "bittide-tests", "--test", "sim_index", "--",
             "--nocapture"], cwd=ROOT, env=env, timeout=4 * 3600)
        sys.exit(r.returncode)
    if not os.path.exists(BENCH):
        sys.exit("build it first: cargo build --release -p bittide-benches --bin index_bench")
    work = tempfile.mkdtemp(prefix="bittide-index-bench-")
    os.chmod(work, 0o755)
    stop = None
    try:
        url, stop = postgres(work)
        rows = []
        for name, where in [("sqlite", os.path.join(work, "index.db")), ("postgres", url)]:
            out = subprocess.run(
                [BENCH, "--index", where, "--torrents", str(args.torrents),
                 "--files", str(args.files), "--searches", str(args.searches)],
                check=True, capture_output=True, text=True, timeout=7200).stdout
            r = json.loads(out)
            rows.append((name, r))
        print("%d torrents of %d files each, %d searches" % (args.torrents, args.files, args.searches))
        print("%-9s %12s %10s %10s %14s" % ("store", "inserts/s", "p50 ms", "p99 ms", "common p99"))
        for name, r in rows:
            print("%-9s %12.0f %10.2f %10.2f %14.2f" % (
                name, r["insert_per_s"], r["search_p50_ms"], r["search_p99_ms"],
                r["common_word_p99_ms"]))
    finally:
        if stop:
            stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
