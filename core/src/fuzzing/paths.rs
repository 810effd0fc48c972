//! Where files go on disk: [`DiskPaths`] must never map two files to one
//! path.

use std::collections::BTreeSet;

use crate::metainfo::{check_component, DiskPaths};

/// disk_paths: the input is a torrent's name and files, fields split by
/// 0x00 (a byte no component may hold) and files by 0x01; the first
/// field is the name, a first byte with its low bit set makes it a
/// single-file torrent, a file whose first component is `.pad` is padding
/// (BEP 47). Components [`check_component`] refuses are dropped, as the
/// parser would have refused the torrent. Oracle: one path per file,
/// under the name; every component of a path is safe; no two real files
/// share a path, even with case folded; no real file sits where another
/// needs a folder; the mapping is a function of the input.
pub fn disk_paths(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut files = rest.split(|&b| b == 0x01);
    let Some(first) = files.next() else {
        return;
    };
    let mut fields = first.split(|&b| b == 0);
    let name = fields.next().unwrap_or_default();
    if check_component(name).is_err() {
        return;
    }
    let single = flags & 1 == 1;
    let mut paths: Vec<Vec<&[u8]>> = vec![fields.filter(|c| check_component(c).is_ok()).collect()];
    paths.extend(files.map(|f| {
        f.split(|&b| b == 0)
            .filter(|c| check_component(c).is_ok())
            .collect()
    }));
    paths.retain(|p| !p.is_empty() || single);
    if single {
        paths.truncate(1);
        paths[0].clear();
    }
    if paths.is_empty() {
        return;
    }
    let padding = |p: &[&[u8]]| p.first() == Some(&&b".pad"[..]);
    let entries = || paths.iter().map(|p| (&p[..], padding(p)));
    let d = DiskPaths::from_files(name, single, entries());
    assert_eq!(
        d,
        DiskPaths::from_files(name, single, entries()),
        "not a function of the input"
    );
    assert_eq!(d.len(), paths.len());
    let mut top = String::new();
    crate::metainfo::component_text(name, &mut top);
    let mut files_taken = BTreeSet::new();
    let mut folders = BTreeSet::new();
    for (i, p) in paths.iter().enumerate() {
        let mapped = d.path(i).expect("a path per file");
        let parts: Vec<&str> = mapped.split('/').collect();
        assert_eq!(parts[0], top, "file {i} is not under the torrent's name");
        assert_eq!(parts.len(), p.len() + 1, "file {i}: {mapped}");
        for part in &parts {
            assert!(
                check_component(part.as_bytes()).is_ok(),
                "unsafe component in {mapped}"
            );
        }
        if padding(p) || single {
            continue;
        }
        let folded = mapped.to_lowercase();
        assert!(files_taken.insert(folded.clone()), "two files at {mapped}");
        for end in mapped.match_indices('/').map(|(at, _)| at).skip(1) {
            folders.insert(mapped[..end].to_lowercase());
        }
    }
    if let Some(clash) = files_taken.intersection(&folders).next() {
        panic!("{clash} is a file and a folder");
    }
}
