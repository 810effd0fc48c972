//! Moving a torrent's files (to another folder, or under a new top-folder
//! name) and deleting them: file-system work run on the blocking pool
//! while the torrent is paused and its old storage closed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bittide_core::metainfo::Metainfo;
use bittide_core::InfoHash;

use super::handle::io_error;
use super::state::{StateDir, TorrentSettings};
use super::views::RequestError;
use super::SessionHandle;
use crate::control::Command;
use crate::disk::Storage;
use crate::runtime::Runtime;

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
        .chain([(from.part_path(), to.part_path())])
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
    let paths: Vec<PathBuf> = (0..)
        .map_while(|i| storage.path(i))
        .chain([storage.part_path()])
        .collect();
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

/// A torrent's storage where `settings` put it, from its .torrent in the
/// state folder.
fn open_storage(
    state: &StateDir,
    hash: &InfoHash,
    settings: &TorrentSettings,
) -> io::Result<Arc<Storage>> {
    let bytes = state.read_torrent(hash)?;
    let metainfo = Metainfo::from_bytes(&bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Arc::new(settings.storage(&metainfo)))
}

/// Moving a running torrent: the handle's side.
impl<R: Runtime> SessionHandle<R> {
    /// Moves its files to another folder while it runs (it pauses for
    /// the move); resume data follows, so nothing is checked again.
    pub async fn move_storage(&self, hash: InfoHash, to: PathBuf) -> Result<(), RequestError> {
        if !to.is_absolute() {
            return Err(RequestError::BadRequest(
                "save_path must be an absolute path".into(),
            ));
        }
        self.relocate(hash, Some(to), None).await
    }

    /// Renames its top folder (or its file, for a single-file torrent).
    pub async fn rename(&self, hash: InfoHash, name: String) -> Result<(), RequestError> {
        if !valid_name(&name) {
            return Err(RequestError::BadRequest(format!(
                "{name:?} is not a valid file name (one path component, not . or ..)"
            )));
        }
        self.relocate(hash, None, Some(name)).await
    }

    /// Moves a torrent's files under `folder` and/or `root`, showing it
    /// as [`TorrentStatus::Moving`](super::views::TorrentStatus::Moving)
    /// meanwhile.
    async fn relocate(
        &self,
        hash: InfoHash,
        folder: Option<PathBuf>,
        root: Option<String>,
    ) -> Result<(), RequestError> {
        let mark = |on: bool| {
            if let Some(e) = self.shared.registry().entries.get_mut(&hash) {
                e.moving = on;
            }
        };
        mark(true);
        let result = self.move_paused(hash, folder, root).await;
        mark(false);
        result
    }

    /// Pause, wait until nothing it holds in memory still has to be
    /// written, close the old storage, move, point the loop at the new
    /// storage, write settings and resume data, resume.
    async fn move_paused(
        &self,
        hash: InfoHash,
        folder: Option<PathBuf>,
        root: Option<String>,
    ) -> Result<(), RequestError> {
        let id = self.id(hash)?;
        let (old, settings) = {
            let reg = self.shared.registry();
            let e = reg.entries.get(&hash).ok_or(RequestError::NotFound(hash))?;
            let Some(old) = e.storage.clone() else {
                return Err(RequestError::BadRequest(
                    "its files are not known yet (the metadata has not arrived)".into(),
                ));
            };
            (old, e.settings.clone())
        };
        let mut moved = settings.clone();
        if let Some(f) = folder {
            moved.save_path = f;
        }
        if root.is_some() {
            moved.root_name = root;
        }
        self.send(Command::Pause(id))?;
        // Blocks of pieces in flight reach the disk before it moves.
        for _ in 0..300 {
            let busy = self
                .ask(move |view, _| view.engine().torrent(id).map_or(0, |t| t.buffered_bytes()))
                .await?;
            if busy == 0 {
                break;
            }
            self.rt
                .sleep_until(self.rt.now() + Duration::from_millis(100))
                .await;
        }
        let shared = self.shared.clone();
        let target = moved.clone();
        let from_root = settings.save_path.clone();
        let new = self
            .blocking(move || {
                let new = open_storage(&shared.state, &hash, &target)?;
                old.sync()?;
                old.close();
                let result = move_files(&old, &new, &from_root);
                // Where the files are now (a failure is kept as the
                // storage's write error).
                let _ = result.as_ref().map(|()| new.set_wanted(&old.wanted()));
                Ok::<_, std::io::Error>((new, result))
            })
            .await
            .map_err(io_error)?;
        let (new, result) = new;
        // Failed or not, later jobs go to storage that is open: the new
        // one if the files moved, else a fresh one where they still are.
        let (storage, kept) = match &result {
            Ok(()) => (new, moved),
            Err(_) => {
                let shared = self.shared.clone();
                let s = settings.clone();
                let reopened = self
                    .blocking(move || {
                        let reopened = open_storage(&shared.state, &hash, &s)?;
                        reopened.set_priorities(s.priorities.as_deref())?;
                        Ok::<_, io::Error>(reopened)
                    })
                    .await
                    .map_err(io_error)?;
                (reopened, settings.clone())
            }
        };
        self.send(Command::SetStorage(id, storage.clone()))?;
        let (have, peers) = self
            .ask(move |view, reg| {
                if let Some(e) = reg.entries.get_mut(&hash) {
                    e.storage = Some(storage.clone());
                    e.settings.save_path = kept.save_path.clone();
                    e.settings.root_name = kept.root_name.clone();
                }
                view.engine()
                    .torrent(id)
                    .map(|t| (t.have().clone(), t.peer_addrs()))
                    .unzip()
            })
            .await?;
        let shared = self.shared.clone();
        let (storage, files) = {
            let reg = self.shared.registry();
            let e = reg.entries.get(&hash);
            (
                e.and_then(|e| e.storage.clone()),
                e.map_or(0, |e| e.file_count),
            )
        };
        self.blocking(move || {
            shared.persist_settings(&hash)?;
            if let (Some(have), Some(peers), Some(storage)) = (have, peers, storage) {
                crate::resume::save(shared.state.root(), &hash, &have, &peers, &storage, files)?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(io_error)?;
        if !settings.paused {
            self.send(Command::Resume(id))?;
        }
        result.map_err(io_error)
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
