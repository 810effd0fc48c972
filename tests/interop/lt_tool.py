#!/usr/bin/python3
"""libtorrent (python3-libtorrent, Debian) as an independent reference for
bittide's interop tests. Run with Debian's /usr/bin/python3.

  lt_tool.py hash TORRENT                 -> v1 info-hash, 40 hex digits
  lt_tool.py create PATH OUT PIECE MODE   -> MODE is v1 or hybrid
  lt_tool.py verify TORRENT SAVE_PATH     -> "ok" once libtorrent has checked
                                             every piece of the data on disk

Everything stays on 127.0.0.1; DHT, LSD, UPnP and NAT-PMP are off
(shared/INTEROP.md).
"""
import os
import sys
import time

import libtorrent as lt


def info_hash(path):
    ti = lt.torrent_info(path)
    return str(ti.info_hashes().v1)


def create(path, out, piece_size, mode):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = lt.create_torrent.v1_only if mode == "v1" else 0
    ct = lt.create_torrent(fs, piece_size, flags)
    ct.add_tracker("http://127.0.0.1:6969/announce")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def verify(torrent, save_path, timeout=60.0):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags |= lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    h.force_recheck()
    h.resume()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = h.status()
        checking = st.state in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data)
        if not checking and st.state != lt.torrent_status.downloading_metadata:
            if st.num_pieces == atp.ti.num_pieces() and st.is_seeding:
                return "ok"
            if st.state == lt.torrent_status.downloading and st.progress < 1.0 and st.num_pieces >= 0:
                # Checking finished and some pieces failed.
                return "mismatch %d/%d pieces" % (st.num_pieces, atp.ti.num_pieces())
        time.sleep(0.05)
    return "timeout"


def main():
    cmd = sys.argv[1]
    if cmd == "hash":
        print(info_hash(sys.argv[2]))
    elif cmd == "create":
        create(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "verify":
        print(verify(sys.argv[2], sys.argv[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
