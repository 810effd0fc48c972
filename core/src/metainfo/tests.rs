//! Metainfo tests: valid shapes, and a set of hostile torrents.

use super::*;
use crate::bencode::Value;

/// A minimal single-file info dictionary with `n` pieces of 16 KiB.
fn single(name: &[u8], length: i64, pieces: usize) -> Vec<u8> {
    let hashes = vec![7u8; 20 * pieces];
    Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(name)),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&hashes)),
            (b"length", Value::int(length)),
        ]),
    )])
    .to_vec()
}

fn multi(paths: &[&[&[u8]]], extra: Vec<(&'static [u8], Value<'static>)>) -> Vec<u8> {
    let files: Vec<Value<'_>> = paths
        .iter()
        .map(|p| {
            Value::dict(vec![
                (b"length", Value::int(10)),
                (
                    b"path",
                    Value::list(p.iter().map(|c| Value::bytes(c)).collect()),
                ),
            ])
        })
        .collect();
    let mut info = vec![
        (&b"name"[..], Value::bytes(b"top")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[1u8; 20])),
        (b"files", Value::list(files)),
    ];
    info.extend(extra);
    Value::dict(vec![(b"info", Value::dict(info))]).to_vec()
}

#[test]
fn single_file_torrent() {
    let bytes = single(b"file.bin", 40000, 3);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(m.info.is_single_file());
    assert_eq!(m.info.display_name(), "file.bin");
    assert_eq!(m.info.total_length(), 40000);
    assert_eq!(m.info.piece_count(), 3);
    assert_eq!(m.info.files().len(), 1);
    assert!(m.trackers().is_empty());
}

#[test]
fn info_hash_is_over_the_raw_info_bytes_even_when_unsorted() {
    // Keys out of order inside info: a re-encoding would sort them and
    // change the hash; the info-hash must be of the bytes as they are.
    let info =
        b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa1:zi0e1:ai0ee";
    let mut file = b"d4:info".to_vec();
    file.extend_from_slice(info);
    file.push(b'e');
    let m = Metainfo::from_bytes(&file).unwrap();
    assert_eq!(m.info_hash, InfoHash::of_info(info));
    assert!(m.key_order.first_unsorted.is_some());
    assert_ne!(
        m.info_hash,
        InfoHash::of_info(&crate::bencode::decode(info).unwrap().to_vec())
    );
    assert!(matches!(
        Metainfo::from_bytes_strict(&file),
        Err(MetainfoError::Bencode(_))
    ));
}

#[test]
fn trackers_web_seeds_and_text_fields() {
    let base = single(b"f", 1, 1);
    let bytes = Value::dict(vec![
        (b"announce", Value::bytes(b"http://a/announce")),
        (
            b"announce-list",
            Value::list(vec![
                Value::list(vec![Value::bytes(b"http://b/announce"), Value::int(3)]),
                Value::list(vec![]),
                Value::list(vec![Value::bytes(b"udp://c:80")]),
            ]),
        ),
        (b"url-list", Value::bytes(b"http://seed/")),
        (b"comment", Value::bytes(b"plain")),
        (b"comment.utf-8", Value::bytes("ütf".as_bytes())),
        (b"created by", Value::bytes(b"tool")),
        (b"creation date", Value::int(5)),
        (
            b"info",
            crate::bencode::decode(&base[7..base.len() - 1]).unwrap(),
        ),
    ])
    .to_vec();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(
        m.trackers(),
        vec![vec!["http://b/announce"], vec!["udp://c:80"]]
    );
    assert_eq!(m.url_list, vec!["http://seed/"]);
    assert_eq!(m.comment, Some("ütf"));
    assert_eq!(m.created_by, Some("tool"));
    assert_eq!(m.creation_date, Some(5));
    let magnet = m.magnet();
    assert_eq!(magnet.info_hash, Some(m.info_hash));
    assert_eq!(Magnet::parse(&magnet.to_string()).unwrap(), magnet);
}

#[test]
fn utf8_name_and_path_variants_are_preferred() {
    let files = Value::list(vec![Value::dict(vec![
        (b"length", Value::int(10)),
        (b"path", Value::list(vec![Value::bytes(b"\xff\xfe")])),
        (
            b"path.utf-8",
            Value::list(vec![Value::bytes("ö.txt".as_bytes())]),
        ),
    ])]);
    let bytes = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"legacy")),
            (b"name.utf-8", Value::bytes("nämé".as_bytes())),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 20])),
            (b"files", files),
        ]),
    )])
    .to_vec();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.info.display_name(), "nämé");
    assert_eq!(m.info.files()[0].display_path(), "ö.txt");
}

#[test]
fn padding_files_and_attributes() {
    let files = Value::list(vec![
        Value::dict(vec![
            (b"length", Value::int(100)),
            (b"path", Value::list(vec![Value::bytes(b"a")])),
            (b"attr", Value::bytes(b"x")),
        ]),
        Value::dict(vec![
            (b"length", Value::int(16284)),
            (
                b"path",
                Value::list(vec![Value::bytes(b".pad"), Value::bytes(b"16284")]),
            ),
            (b"attr", Value::bytes(b"p")),
        ]),
        Value::dict(vec![
            (b"length", Value::int(10)),
            (b"path", Value::list(vec![Value::bytes(b"b")])),
        ]),
    ]);
    let bytes = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"t")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 40])),
            (b"files", files),
        ]),
    )])
    .to_vec();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let f = m.info.files();
    assert!(f[0].attr.executable && !f[0].attr.padding);
    assert!(f[1].attr.padding);
    assert!(m.info.layout().is_padding(1));
    assert_eq!(m.info.layout().file_pieces(2), PieceIndex(1)..PieceIndex(2));
}

#[test]
fn hybrid_is_read_with_its_v2_half_and_v2_only_is_refused() {
    let base = single(b"f", 1, 1);
    let mut hybrid = crate::bencode::decode(&base).unwrap();
    let info = hybrid.as_dict().unwrap().get(b"info").unwrap().clone();
    let mut entries: Vec<_> = info
        .as_dict()
        .unwrap()
        .iter()
        .map(|(k, v)| (k, v.clone()))
        .collect();
    entries.push((b"meta version", Value::int(2)));
    let root = [9u8; 32];
    let leaf = Value::dict(vec![
        (b"length", Value::int(1)),
        (b"pieces root", Value::bytes(&root)),
    ]);
    let tree = Value::dict(vec![(b"f", Value::dict(vec![(b"", leaf)]))]);
    entries.push((b"file tree", tree));
    hybrid = Value::dict(vec![(b"info", Value::dict(entries.clone()))]);
    let bytes = hybrid.to_vec();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(m.info.is_hybrid());
    assert_eq!(m.info.v2_files()[0].pieces_root, Some(root));
    // Without its file tree a hybrid has no v2 half to check.
    entries.pop();
    let no_tree = Value::dict(vec![(b"info", Value::dict(entries))]).to_vec();
    assert_eq!(
        Metainfo::from_bytes(&no_tree),
        Err(MetainfoError::MissingField { field: "file tree" })
    );

    let v2 = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"meta version", Value::int(2)),
            (b"name", Value::bytes(b"x")),
            (b"piece length", Value::int(16384)),
            (b"file tree", Value::dict(vec![])),
        ]),
    )])
    .to_vec();
    assert_eq!(Metainfo::from_bytes(&v2), Err(MetainfoError::Empty));
    // A v2-only torrent of one small file: named by its truncated v2
    // hash, its one piece checked against the file's pieces root.
    let leaf = Value::dict(vec![
        (b"length", Value::int(100)),
        (b"pieces root", Value::bytes(&root)),
    ]);
    let only = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (
                b"file tree",
                Value::dict(vec![(b"x", Value::dict(vec![(b"", leaf)]))]),
            ),
            (b"meta version", Value::int(2)),
            (b"name", Value::bytes(b"x")),
            (b"piece length", Value::int(16384)),
        ]),
    )])
    .to_vec();
    let m = Metainfo::from_bytes(&only).unwrap();
    assert!(m.info.is_v2_only() && m.info.is_single_file());
    let v2 = m.info_hash_v2.unwrap();
    assert_eq!(m.info_hash, InfoHash::truncated(&v2));
    assert_eq!(
        m.piece_hashes().unwrap(),
        [PieceHash::V2 {
            root,
            leaves: 1,
            length: 100
        }]
    );

    let v3 = Value::dict(vec![(
        b"info",
        Value::dict(vec![(b"meta version", Value::int(3))]),
    )])
    .to_vec();
    assert_eq!(
        Metainfo::from_bytes(&v3).unwrap_err(),
        MetainfoError::UnsupportedMetaVersion { version: 3 }
    );
}

#[test]
fn layout_validation() {
    let e = |b: &[u8]| Metainfo::from_bytes(b).unwrap_err();
    assert_eq!(
        e(&single(b"f", 40000, 2)),
        MetainfoError::PieceCount {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(e(&single(b"f", 0, 0)), MetainfoError::Empty);
    assert!(matches!(
        e(&single(b"f", -1, 1)),
        MetainfoError::InvalidField {
            field: "length",
            ..
        }
    ));
    let odd = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"x")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 19])),
            (b"length", Value::int(1)),
        ]),
    )])
    .to_vec();
    assert_eq!(e(&odd), MetainfoError::PiecesLength { length: 19 });

    for pl in [0i64, 1000, 8192, 16385, -16384, 1 << 40] {
        let bytes = Value::dict(vec![(
            b"info",
            Value::dict(vec![
                (b"name", Value::bytes(b"x")),
                (b"piece length", Value::int(pl)),
                (b"pieces", Value::bytes(&[0; 20])),
                (b"length", Value::int(1)),
            ]),
        )])
        .to_vec();
        assert_eq!(e(&bytes), MetainfoError::PieceLength { value: pl });
    }
    assert_eq!(e(b"le"), MetainfoError::NotADictionary { field: "torrent" });
    assert_eq!(e(b"de"), MetainfoError::MissingField { field: "info" });
    assert_eq!(
        e(b"d4:infoi1ee"),
        MetainfoError::NotADictionary { field: "info" }
    );
    let both = multi(&[&[b"a"]], vec![(b"length", Value::int(10))]);
    assert_eq!(e(&both), MetainfoError::AmbiguousLayout);
    let none = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"x")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 20])),
        ]),
    )])
    .to_vec();
    assert_eq!(e(&none), MetainfoError::AmbiguousLayout);
    assert_eq!(e(&multi(&[], vec![])), MetainfoError::Empty);
    let total_overflow = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"x")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 20])),
            (
                b"files",
                Value::list(vec![
                    Value::dict(vec![
                        (b"length", Value::int(i64::MAX)),
                        (b"path", Value::list(vec![Value::bytes(b"a")])),
                    ]),
                    Value::dict(vec![
                        (b"length", Value::int(i64::MAX)),
                        (b"path", Value::list(vec![Value::bytes(b"b")])),
                    ]),
                    Value::dict(vec![
                        (b"length", Value::int(i64::MAX)),
                        (b"path", Value::list(vec![Value::bytes(b"c")])),
                    ]),
                ]),
            ),
        ]),
    )])
    .to_vec();
    assert_eq!(e(&total_overflow), MetainfoError::TooLarge);
}

/// The hostile set: every way a name or path could escape the folder.
#[test]
fn hostile_paths_are_refused_with_the_file_named() {
    let cases: Vec<(Vec<u8>, Option<usize>, PathProblem)> = vec![
        (single(b"..", 1, 1), None, PathProblem::ParentDir),
        (single(b".", 1, 1), None, PathProblem::CurrentDir),
        (single(b"", 1, 1), None, PathProblem::Empty),
        (single(b"/etc/passwd", 1, 1), None, PathProblem::Separator),
        (single(b"..\\..\\x", 1, 1), None, PathProblem::Separator),
        (single(b"C:", 1, 1), None, PathProblem::DrivePrefix),
        (single(b"a\0b", 1, 1), None, PathProblem::Nul),
        (
            multi(&[&[b"ok"], &[b"..", b"x"]], vec![]),
            Some(1),
            PathProblem::ParentDir,
        ),
        (
            multi(&[&[b"a", b"..", b"..", b"x"]], vec![]),
            Some(0),
            PathProblem::ParentDir,
        ),
        (
            multi(&[&[b"/abs"]], vec![]),
            Some(0),
            PathProblem::Separator,
        ),
        (
            multi(&[&[b"a/../../b"]], vec![]),
            Some(0),
            PathProblem::Separator,
        ),
        (multi(&[&[b"x", b""]], vec![]), Some(0), PathProblem::Empty),
        (multi(&[&[]], vec![]), Some(0), PathProblem::NoComponents),
        (
            multi(&[&[b"D:\\x"]], vec![]),
            Some(0),
            PathProblem::Separator,
        ),
        (
            multi(&[&[b"d:x"]], vec![]),
            Some(0),
            PathProblem::DrivePrefix,
        ),
        (multi(&[&[b"n\0ul"]], vec![]), Some(0), PathProblem::Nul),
    ];
    for (bytes, file, problem) in cases {
        match Metainfo::from_bytes(&bytes) {
            Err(MetainfoError::UnsafePath {
                file: f,
                problem: p,
                offset,
            }) => {
                assert_eq!((f, p), (file, problem));
                assert!(offset < bytes.len());
            }
            other => panic!("expected an unsafe path error, got {other:?}"),
        }
    }
    // A hostile path.utf-8 is refused too, even when `path` is harmless.
    let files = Value::list(vec![Value::dict(vec![
        (b"length", Value::int(10)),
        (b"path", Value::list(vec![Value::bytes(b"fine")])),
        (
            b"path.utf-8",
            Value::list(vec![Value::bytes(b".."), Value::bytes(b"x")]),
        ),
    ])]);
    let bytes = Value::dict(vec![(
        b"info",
        Value::dict(vec![
            (b"name", Value::bytes(b"top")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 20])),
            (b"files", files),
        ]),
    )])
    .to_vec();
    assert!(matches!(
        Metainfo::from_bytes(&bytes),
        Err(MetainfoError::UnsafePath {
            problem: PathProblem::ParentDir,
            ..
        })
    ));
}

#[test]
fn errors_read_as_one_line() {
    let e = Metainfo::from_bytes(&multi(&[&[b"ok"], &[b"..", b"x"]], vec![])).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("unsafe path in file 1"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn info_hash_hex() {
    let h = InfoHash::from_hex(b"C12FE1C06BBA254A9DC9F519B335AA7C1367A88A").unwrap();
    assert_eq!(h.to_string(), "c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
    assert!(InfoHash::from_hex(b"zz").is_none());
    assert!(InfoHash::from_hex(&[b'g'; 40]).is_none());
}
