#!/usr/bin/python3
"""Web seed benchmark on 127.0.0.1 (it is not a test; run it on an idle
machine): one --size-mib file (1 GiB by default) served by a local nginx,
fetched in the same run by

  bittide   `bittide download` of a torrent (256 KiB pieces) whose only
            source is that nginx as its web seed (BEP 19): HTTP range
            requests, every piece hashed, then written
  aria2c    `aria2c` of the same URL over HTTP (one connection, no hash)
  curl      `curl -o` of the same URL (the floor: one stream to disk)

medians of --runs, and the ratios bittide/aria2c and bittide/curl.

  /usr/bin/python3 benches/webseed.py [--runs 3] [--size-mib 1024]

Needs a release build (cargo build --release -p bittide-cli), nginx
(nginx-light), aria2, curl.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (BITTIDE, free_port, make_data, timed)

LIMIT = 600  # seconds any one transfer may take
NGINX = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"


def nginx(work, root):
    """nginx serving `root` on 127.0.0.1, in the foreground; (process, port)."""
    port = compare.free_port()
    d = os.path.join(work, "nginx")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
                "events { worker_connections 64; }\nhttp {\n access_log off;\n sendfile on;\n"
                " client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
                " fastcgi_temp_path %s/fcgi; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n"
                " server { listen 127.0.0.1:%d; root %s; }\n}\n"
                % (d, d, d, d, d, d, d, port, root))
    p = subprocess.Popen([NGINX, "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("nginx did not start")


def main():
    with compare.bench(__doc__, "bittide-webseed-bench-") as (args, work, procs):
        os.chmod(work, 0o755)  # nginx's workers run as another user
        root = os.path.join(work, "www")
        os.makedirs(root)
        data = os.path.join(root, "data.bin")
        compare.make_data(data, args.size_mib << 20, 31)
        server, port = nginx(work, root)
        procs.append(server)
        url = "http://127.0.0.1:%d/data.bin" % port
        torrent = os.path.join(work, "data.torrent")
        subprocess.run([compare.BITTIDE, "create", data, "--piece-size", "256K", "--web-seed",
                        url, "-o", torrent], check=True, stdout=subprocess.DEVNULL)
        transfers = {
            "bittide": lambda out: [compare.BITTIDE, "download", torrent, "-o", out, "--no-dht",
                                    "--listen", "127.0.0.1:%d" % compare.free_port(),
                                    "--state-dir", out + ".state", "--timeout", "120"],
            "aria2c": lambda out: ["aria2c", "-q", "-x1", "-s1", "--file-allocation=none",
                                   "--allow-overwrite=true", "-d", out, "-o", "data.bin", url],
            "curl": lambda out: ["curl", "-s", "-f", "-o", os.path.join(out, "data.bin"), url],
        }
        title = "%d MiB from nginx on 127.0.0.1" % args.size_mib
        med = compare.run_rotating(transfers, args.runs, work, data, LIMIT, args.size_mib, title,
                                   width=10)
        for other in ("aria2c", "curl"):
            if "bittide" in med and other in med:
                print("bittide / %s time: %.2f" % (other, med["bittide"] / med[other]))

if __name__ == "__main__":
    main()
