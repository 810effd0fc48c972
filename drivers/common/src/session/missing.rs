//! Missing files (qBittorrent's `missingFiles`): a torrent whose resume
//! data vouches for verified pieces in files that are gone when the
//! session starts is added paused, to check its data when it starts, and
//! waits ([`TorrentStatus::MissingFiles`]) instead of downloading it all
//! again. Its resume data is left as it is meanwhile. Resuming it once
//! the files are back ends the wait (they are checked); a recheck ends it
//! whatever is there.
//!
//! [`TorrentStatus::MissingFiles`]: super::views::TorrentStatus::MissingFiles

use bittide_core::InfoHash;

use super::handle::SessionHandle;
use super::views::RequestError;
use crate::runtime::Runtime;

impl<R: Runtime> SessionHandle<R> {
    /// Whether `hash` waits for missing files that are still gone (if
    /// they are all back, it no longer waits).
    pub(super) async fn still_missing(&self, hash: InfoHash) -> Result<bool, RequestError> {
        let (storage, files) = {
            let reg = self.shared.registry();
            let e = reg.entries.get(&hash).ok_or(RequestError::NotFound(hash))?;
            match (&e.storage, e.missing_files) {
                (Some(s), true) => (s.clone(), e.file_count),
                _ => return Ok(false),
            }
        };
        let shared = self.shared.clone();
        let pieces = self
            .ask(move |view, reg| {
                let id = reg.entries.get(&hash).map(|e| e.id);
                id.and_then(|id| view.layout(id)).map(|l| l.piece_count())
            })
            .await?
            .unwrap_or(0);
        let gone = self
            .blocking(move || {
                crate::resume::missing_files(shared.state.root(), &hash, pieces, &storage, files)
            })
            .await;
        if gone.is_empty() {
            if let Some(e) = self.shared.registry().entries.get_mut(&hash) {
                e.missing_files = false;
            }
        }
        Ok(!gone.is_empty())
    }

    /// Ends a wait for missing files; whether it was waiting.
    pub(super) fn stop_waiting(&self, hash: InfoHash) -> Result<bool, RequestError> {
        let mut reg = self.shared.registry();
        let e = reg
            .entries
            .get_mut(&hash)
            .ok_or(RequestError::NotFound(hash))?;
        Ok(std::mem::take(&mut e.missing_files))
    }
}
