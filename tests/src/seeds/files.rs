//! Seeds for what is read from the user's disk and command line: state
//! files, resume data, units, and paths a torrent would write.

use super::*;

/// A `settings` file (first byte 0) and a `session` file (first byte 1)
/// as a daemon writes them, and a few broken ones.
pub(super) fn state_files() -> Seeds {
    let prefixed = |which: u8, text: &str| {
        let mut v = vec![which];
        v.extend_from_slice(text.as_bytes());
        v
    };
    vec![
        (
            "settings",
            prefixed(
                0,
                "d8:added_ati1700000000e8:category5:linux10:downloadedi5e14:download_limiti0e\
                 16:first_last_piecei0e4:onlyli0ei2ee6:pausedi1e5:peersl14:127.0.0.1:6881e\
                 10:prioritiesli0ei4ei7ee9:root_name7:renamed9:save_path4:/dl/\
                 10:sequentiali0e12:seeding_timei60e4:tagsl1:ae12:upload_limiti0e\
                 8:uploadedi9e7:versioni1ee",
            ),
        ),
        (
            "session",
            prefixed(
                1,
                "d5:queuel20:aaaaaaaaaaaaaaaaaaaae8:settingsd16:active_downloadsi2e\
                 12:active_seedsi-1e12:download_dir4:/dl/13:download_ratei0e\
                 15:max_connectionsi500e16:seed_goal_removei0e16:seed_ratio_millii1500e\
                 9:seed_timei-1e11:upload_ratei0ee7:versioni1ee",
            ),
        ),
        (
            "settings-old-version",
            prefixed(0, "d9:save_path1:/7:versioni9ee"),
        ),
        ("session-truncated", prefixed(1, "d5:queuel20:aaaa")),
        ("empty", vec![]),
    ]
}

pub(super) fn resume() -> Seeds {
    use bittide_core::Bitfield;
    use bittide_driver::resume::encode;
    let hash = InfoHash([0xab; 20]);
    // Mode byte: files in the low two bits, piece count / 5 above.
    let with_stats = |files: u8, pieces: u32, stats: &[Option<(u64, i64)>], peers: &[&str]| {
        let mut have = Bitfield::new(pieces);
        for p in (0..pieces).step_by(3) {
            have.set(PieceIndex(p));
        }
        let peers: Vec<std::net::SocketAddr> =
            peers.iter().map(|p| p.parse().expect("literal")).collect();
        let mut out = vec![files | ((pieces / 5) as u8) << 2];
        for s in stats {
            let (len, mtime) = s.unwrap_or((u64::MAX, 0));
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&mtime.to_be_bytes());
        }
        out.extend(encode(
            &hash,
            bittide_driver::fuzzing::RESUME_FOLDER,
            &have,
            &peers,
            stats,
        ));
        out
    };
    vec![
        (
            "one-file",
            with_stats(
                1,
                10,
                &[Some((40_000, 1_700_000_000_000_000_000))],
                &["10.0.0.1:6881"],
            ),
        ),
        (
            "three-files",
            with_stats(
                3,
                35,
                &[Some((1, 2)), None, Some((0, -5))],
                &["10.0.0.1:6881", "10.0.0.2:6882"],
            ),
        ),
        ("no-files", with_stats(0, 0, &[], &[])),
        ("junk", vec![0x05, b'd', b'e']),
    ]
}

pub(super) fn units() -> Seeds {
    let v = |s: &str| s.as_bytes().to_vec();
    vec![
        ("size-k", v("256K")),
        ("rate-g", v(" 2g ")),
        ("minutes", v("10m")),
        ("compound", v("1h30m")),
        ("unlimited", v("none")),
        ("plain", v("90")),
        ("hash", v("C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1C1")),
        ("overflow", v("18446744073709551615K")),
        ("huge-hours", v("18446744073709551615h")),
        (
            "number-bytes",
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ),
    ]
}

pub(super) fn disk_paths() -> Seeds {
    // Flags byte (bit 0: single file), then the name and the files:
    // components split by 0x00, files by 0x01.
    let join = |single: bool, files: &[&[&[u8]]]| {
        let mut out = vec![u8::from(single)];
        for (i, f) in files.iter().enumerate() {
            if i > 0 {
                out.push(0x01);
            }
            for (j, c) in f.iter().enumerate() {
                if j > 0 {
                    out.push(0);
                }
                out.extend_from_slice(c);
            }
        }
        out
    };
    vec![
        ("single", join(true, &[&[b"one.bin"]])),
        (
            "duplicates",
            join(
                false,
                &[&[b"top", b"x.txt"], &[b"x.txt"], &[b"X.TXT"], &[b"x.1.txt"]],
            ),
        ),
        (
            "not-utf8",
            join(false, &[&[b"top", b"\xff"], &[b"\xfe"], &[b"%FF"]]),
        ),
        (
            "file-and-folder",
            join(
                false,
                &[&[b"top", b"a"], &[b"a", b"b"], &[b"d", b"e"], &[b"d"]],
            ),
        ),
        (
            "padding",
            join(
                false,
                &[&[b"top", b"a"], &[b".pad", b"1"], &[b".pad", b"1"]],
            ),
        ),
    ]
}
