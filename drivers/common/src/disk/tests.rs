//! Storage: writes, reads and checks across files, direct and buffered.

use std::path::Path;

use super::*;
use bittide_core::metainfo::{PieceHash, PieceHasher, TorrentBuilder};
use bittide_core::torrent::VerifyPiece;
use bittide_core::PieceIndex;

#[test]
fn piece_writes_are_exact_with_direct_and_buffered_runs() {
    // Files of odd sizes so pieces straddle files at unaligned offsets
    // (buffered heads and tails around O_DIRECT middles), blocks of
    // odd sizes, pieces written in a scrambled order, and each piece
    // written over an earlier wrong version (direct writes must not
    // leave stale cached pages behind for the reads).
    let dir = std::env::temp_dir().join(format!("bittide-direct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let mut b = TorrentBuilder::multi_file("top");
    b.add_file(vec!["a".into()], 123_457)
        .add_file(vec!["b".into()], 600_001)
        .add_file(vec!["c".into()], 276_542)
        .set_piece_length(65536);
    let mut h = PieceHasher::new(65536);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let storage = Storage::new(&dir, &m);
    let layout = m.info.layout();
    let blocks_of = |d: &[u8]| -> Vec<bytes::Bytes> {
        d.chunks(10_000)
            .map(bytes::Bytes::copy_from_slice)
            .collect()
    };
    let n = layout.piece_count();
    for round in 0..2 {
        for k in 0..n {
            let piece = PieceIndex((k * 7) % n);
            let slices: Vec<FileSlice> = layout.piece_slices(piece).collect();
            let start = layout.piece_offset(piece) as usize;
            let len = layout.piece_size(piece) as usize;
            let content: Vec<u8> = if round == 0 {
                vec![0xee; len]
            } else {
                data[start..start + len].to_vec()
            };
            storage.write_blocks(&slices, &blocks_of(&content)).unwrap();
            if round == 1 {
                let hash = m.info.piece_hash(piece).unwrap();
                assert_eq!(
                    storage.run(DiskOp::Check {
                        piece,
                        slices,
                        hash: PieceHash::V1(hash)
                    }),
                    DiskResult::Checked { piece, ok: true },
                    "{piece:?}"
                );
            }
        }
    }
    storage.sync().unwrap();
    let mut all = std::fs::read(dir.join("top/a")).unwrap();
    all.extend(std::fs::read(dir.join("top/b")).unwrap());
    all.extend(std::fs::read(dir.join("top/c")).unwrap());
    assert!(all == data, "files differ from the data");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writes_land_in_the_right_files_and_read_back() {
    let dir = std::env::temp_dir().join(format!("bittide-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut b = TorrentBuilder::multi_file("top");
    b.add_file(vec!["a".into()], 20_000)
        .add_file(vec!["empty".into()], 0)
        .add_file(vec!["sub".into(), "b".into()], 30_000)
        .set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let storage = Storage::new(&dir, &m);
    let layout = m.info.layout();
    for p in (0..layout.piece_count()).rev() {
        let piece = PieceIndex(p);
        let slices: Vec<FileSlice> = layout.piece_slices(piece).collect();
        let start = layout.piece_offset(piece) as usize;
        let len = layout.piece_size(piece) as usize;
        storage.write(&slices, &data[start..start + len]).unwrap();
        let hash = m.info.piece_hash(piece).unwrap();
        assert_eq!(
            storage.run(DiskOp::Check {
                piece,
                slices,
                hash: PieceHash::V1(hash)
            }),
            DiskResult::Checked { piece, ok: true }
        );
    }
    // The block-wise writer lays out the same bytes.
    let blocks: Vec<bytes::Bytes> = data
        .chunks(16384)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let all: Vec<FileSlice> = (0..layout.piece_count())
        .flat_map(|p| layout.piece_slices(PieceIndex(p)).collect::<Vec<_>>())
        .collect();
    storage.write_blocks(&all, &blocks).unwrap();
    assert_eq!(
        storage.run(DiskOp::CreateEmpty { files: vec![1] }),
        DiskResult::Created { ok: true }
    );
    storage.sync().unwrap();
    assert_eq!(std::fs::read(dir.join("top/a")).unwrap(), &data[..20_000]);
    assert_eq!(
        std::fs::read(dir.join("top/sub/b")).unwrap(),
        &data[20_000..]
    );
    assert_eq!(std::fs::metadata(dir.join("top/empty")).unwrap().len(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A torrent of three files that share pieces (odd sizes, 16 KiB
/// pieces), a zero-length fourth, and its content.
fn shared_pieces(top: &str) -> (Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut b = TorrentBuilder::multi_file(top);
    b.add_file(vec!["a".into()], 30_001)
        .add_file(vec!["sub".into(), "b".into()], 40_002)
        .add_file(vec!["c".into()], 29_997)
        .add_file(vec!["more".into(), "empty".into()], 0)
        .set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    (b.build(&h.finish()).unwrap(), data)
}

fn write_piece(storage: &Storage, m: &Metainfo<'_>, data: &[u8], piece: PieceIndex) {
    let layout = m.info.layout();
    let slices: Vec<FileSlice> = layout.piece_slices(piece).collect();
    let start = layout.piece_offset(piece) as usize;
    let len = layout.piece_size(piece) as usize;
    let blocks: Vec<bytes::Bytes> = data[start..start + len]
        .chunks(5000)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    storage.write_blocks(&slices, &blocks).unwrap();
}

fn checks(storage: &Storage, m: &Metainfo<'_>, piece: PieceIndex) -> bool {
    let slices = m.info.layout().piece_slices(piece).collect();
    let hash = m.info.piece_hash(piece).unwrap();
    storage.run(DiskOp::Check {
        piece,
        slices,
        hash: PieceHash::V1(hash),
    }) == DiskResult::Checked { piece, ok: true }
}

#[test]
fn unselected_files_stay_in_the_part_file_until_selected() {
    let dir = std::env::temp_dir().join(format!("bittide-partfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (bytes, data) = shared_pieces("top");
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let layout = m.info.layout();
    let only_b = [false, true, false, false];
    let storage = Storage::new(&dir, &m);
    storage.set_wanted(&only_b).unwrap();
    let pieces = layout.file_pieces(1);
    for p in pieces.start.0..pieces.end.0 {
        write_piece(&storage, &m, &data, PieceIndex(p));
    }
    assert_eq!(
        storage.run(DiskOp::CreateEmpty { files: vec![3] }),
        DiskResult::Created { ok: true }
    );
    storage.sync().unwrap();
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let part = dir.join(format!(".{}.parts", m.info_hash));
    assert_eq!(storage.part_path(), part);
    assert_eq!(
        names(&dir),
        vec![format!(".{}.parts", m.info_hash), "top".into()]
    );
    assert_eq!(names(&dir.join("top")), vec!["sub"], "no a, c or more/");
    assert_eq!(
        std::fs::read(dir.join("top/sub/b")).unwrap(),
        &data[30_001..70_003]
    );
    // The two boundary pieces: slots of 16 KiB after a 1 KiB header.
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 1024 + 2 * 16384);
    for p in pieces.start.0..pieces.end.0 {
        assert!(checks(&storage, &m, PieceIndex(p)), "piece {p}");
    }
    // A piece wholly inside an unselected file is simply not there.
    assert!(!checks(&storage, &m, PieceIndex(0)));
    drop(storage);

    // A restart reads the boundary pieces from the part file.
    let storage = Storage::new(&dir, &m);
    storage.set_wanted(&only_b).unwrap();
    for p in pieces.start.0..pieces.end.0 {
        assert!(
            checks(&storage, &m, PieceIndex(p)),
            "piece {p} after a restart"
        );
    }

    // Everything selected: the boundary bytes move into a and c, the
    // part file goes, and the rest is downloaded into the same files.
    storage.set_wanted(&[true; 4]).unwrap();
    assert!(!part.exists());
    for p in pieces.start.0..pieces.end.0 {
        assert!(
            checks(&storage, &m, PieceIndex(p)),
            "piece {p} after the move"
        );
    }
    for p in 0..layout.piece_count() {
        if !pieces.contains(&PieceIndex(p)) {
            write_piece(&storage, &m, &data, PieceIndex(p));
        }
    }
    assert_eq!(
        storage.run(DiskOp::CreateEmpty { files: vec![3] }),
        DiskResult::Created { ok: true }
    );
    storage.sync().unwrap();
    let mut all = std::fs::read(dir.join("top/a")).unwrap();
    all.extend(std::fs::read(dir.join("top/sub/b")).unwrap());
    all.extend(std::fs::read(dir.join("top/c")).unwrap());
    assert!(all == data, "files differ from the data");
    assert!(dir.join("top/more/empty").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_deselected_file_on_disk_keeps_being_used() {
    let dir = std::env::temp_dir().join(format!("bittide-deselect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (bytes, data) = shared_pieces("top");
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let storage = Storage::new(&dir, &m);
    for p in 0..m.info.layout().piece_count() {
        write_piece(&storage, &m, &data, PieceIndex(p));
    }
    // libtorrent leaves a deselected file alone too; no part file.
    storage.set_wanted(&[false, true, false, false]).unwrap();
    write_piece(&storage, &m, &data, PieceIndex(1));
    assert!(checks(&storage, &m, PieceIndex(0)));
    assert!(checks(&storage, &m, PieceIndex(1)));
    assert!(!storage.part_path().exists());
    assert_eq!(std::fs::read(dir.join("top/a")).unwrap(), &data[..30_001]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A .torrent of `files` (one: a single-file torrent named `name`).
fn layout_torrent(name: &str, files: &[&[&str]]) -> Vec<u8> {
    let mut b = if files.is_empty() {
        TorrentBuilder::single_file(name, 100)
    } else {
        let mut b = TorrentBuilder::multi_file(name);
        for f in files {
            b.add_file(f.iter().map(|s| s.to_string()).collect(), 100);
        }
        b
    };
    b.set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&vec![0u8; 100 * files.len().max(1)]);
    b.build(&h.finish()).unwrap()
}

#[test]
fn content_layouts_place_files_inside_the_folder() {
    let dir = Path::new("/srv/dl");
    let at = |bytes: &[u8], layout, root: Option<&str>| {
        let m = Metainfo::from_bytes(bytes).unwrap();
        let s = Storage::new(dir, &m)
            .with_root(root.map(str::to_owned))
            .with_layout(layout);
        let files: Vec<PathBuf> = (0..).map_while(|i| s.path(i)).collect();
        (files, s.content_path())
    };
    let single = layout_torrent("Show.S01E01.mkv", &[]);
    let multi = layout_torrent("Pack", &[&["a.mkv"], &["sub", "b.nfo"]]);
    use ContentLayout::*;
    let p = |s: &str| dir.join(s);
    // A single file: in a folder of its own with Subfolder only.
    for layout in [Original, NoSubfolder] {
        let f = p("Show.S01E01.mkv");
        assert_eq!(at(&single, layout, None), (vec![f.clone()], f));
    }
    let f = p("Show.S01E01/Show.S01E01.mkv");
    assert_eq!(at(&single, Subfolder, None), (vec![f.clone()], f));
    let f = p("renamed/Show.S01E01.mkv");
    assert_eq!(
        at(&single, Subfolder, Some("renamed")),
        (vec![f.clone()], f)
    );
    // Several files: without their top folder with NoSubfolder only.
    for layout in [Original, Subfolder] {
        let files = vec![p("Pack/a.mkv"), p("Pack/sub/b.nfo")];
        assert_eq!(at(&multi, layout, None), (files, p("Pack")));
    }
    let files = vec![p("a.mkv"), p("sub/b.nfo")];
    assert_eq!(
        at(&multi, NoSubfolder, None),
        (files.clone(), dir.to_owned())
    );
    assert_eq!(
        at(&multi, NoSubfolder, Some("x")),
        (files, dir.to_owned()),
        "no top folder to rename"
    );
    // A name with no usable stem is its own folder.
    let dotted = layout_torrent(".hidden", &[]);
    assert_eq!(at(&dotted, Subfolder, None).0, vec![p(".hidden/.hidden")]);
}

#[test]
fn a_run_whose_slice_of_an_unselected_file_crosses_pieces_goes_to_the_part_file() {
    let dir = std::env::temp_dir().join(format!("bittide-partrun-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // b, not selected, crosses the boundary of the two pieces.
    let data: Vec<u8> = (0..32_768u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut b = TorrentBuilder::multi_file("run");
    b.add_file(vec!["a".into()], 10_000)
        .add_file(vec!["b".into()], 10_000)
        .add_file(vec!["c".into()], 12_768)
        .set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let storage = Storage::new(&dir, &m);
    storage.set_wanted(&[true, false, true]).unwrap();
    // As the engine sends a run: the slices of both pieces, merged.
    let slice = |file, length| FileSlice {
        file,
        offset: 0,
        length,
        padding: false,
    };
    let hash = |p| PieceHash::V1(m.info.piece_hash(PieceIndex(p)).unwrap());
    let result = storage.run(DiskOp::Verify {
        first: PieceIndex(0),
        pieces: vec![
            VerifyPiece {
                hash: hash(0),
                blocks: 1,
            },
            VerifyPiece {
                hash: hash(1),
                blocks: 1,
            },
        ],
        blocks: data
            .chunks(16384)
            .map(bytes::Bytes::copy_from_slice)
            .collect(),
        slices: vec![slice(0, 10_000), slice(1, 10_000), slice(2, 12_768)],
    });
    assert_eq!(
        result,
        DiskResult::Verified {
            first: PieceIndex(0),
            verdicts: vec![true, true],
            written: true,
        }
    );
    assert!(!dir.join("run/b").exists(), "b stays in the part file");
    for p in 0..2 {
        assert!(checks(&storage, &m, PieceIndex(p)), "piece {p}");
    }
    drop(storage);
    std::fs::remove_dir_all(&dir).unwrap();
}
