//! Moving a torrent's files (to another folder, or under a new top-folder
//! name) and deleting them: file-system work run on the blocking pool
//! while the torrent is paused and its old storage closed.

use std::io;
use std::path::{Path, PathBuf};

use crate::disk::Storage;

/// Whether `name` can be a torrent's top folder or file name: one path
/// component, not `.` or `..`, no separator or NUL.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

/// Moves every file of `from` to where `to` puts it, each one atomically:
/// a rename on the same file system, else a copy to a temporary beside
/// the target (synced), renamed into place, then the original removed.
/// Refuses before moving anything if a target exists. Folders left empty
/// under `from_root` are removed.
pub(crate) fn move_files(from: &Storage, to: &Storage, from_root: &Path) -> io::Result<()> {
    let pairs: Vec<(PathBuf, PathBuf)> = (0..)
        .map_while(|i| Some((from.path(i)?, to.path(i)?)))
        .filter(|(a, b)| a != b && a.exists())
        .collect();
    if let Some((_, b)) = pairs.iter().find(|(_, b)| b.exists()) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: already exists; nothing was moved", b.display()),
        ));
    }
    for (a, b) in &pairs {
        move_file(a, b).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", a.display())))?;
    }
    remove_empty_folders(pairs.iter().map(|(a, _)| a.as_path()), from_root);
    Ok(())
}

fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => return Ok(()),
        // EXDEV: another file system; copy instead.
        Err(e) if e.raw_os_error() == Some(18) => {}
        Err(e) => return Err(e),
    }
    let tmp = to.with_extension(format!("moving.{}", std::process::id()));
    let copied = (|| {
        std::fs::copy(from, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, to)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied?;
    std::fs::remove_file(from)
}

/// Deletes a torrent's files and the folders they leave empty under
/// `root` (never `root` itself).
pub(crate) fn delete_files(storage: &Storage, root: &Path) -> io::Result<()> {
    let paths: Vec<PathBuf> = (0..).map_while(|i| storage.path(i)).collect();
    for path in &paths {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            }
            _ => {}
        }
    }
    remove_empty_folders(paths.iter().map(PathBuf::as_path), root);
    Ok(())
}

/// Removes the folders holding `files` that are now empty, deepest first,
/// up to (not including) `root`.
fn remove_empty_folders<'a>(files: impl Iterator<Item = &'a Path>, root: &Path) {
    let mut folders: Vec<PathBuf> = Vec::new();
    for f in files {
        let mut dir = f.parent();
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) {
                break;
            }
            folders.push(d.to_owned());
            dir = d.parent();
        }
    }
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    folders.dedup();
    for f in folders {
        // Left alone if something else is in it.
        let _ = std::fs::remove_dir(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("Ubuntu 24.04"));
    }
}
