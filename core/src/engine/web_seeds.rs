//! Web seeds (BEP 19) for the engine: a torrent's runs go out as
//! [`Output::WebSeed`](super::Output::WebSeed) and their answers come back
//! to it by request id. What to ask and when is the torrent's
//! (`torrent/web_seeds.rs`).

use bytes::Bytes;

use super::{Engine, Pending, RequestId};
use crate::time::Instant;
use crate::webseed::WebSeedError;

impl Engine {
    /// A web seed request finished: one body per range request, in
    /// order, or the first failure. Answers for a torrent that has gone
    /// are dropped.
    pub fn handle_web_seed(
        &mut self,
        now: Instant,
        request: RequestId,
        answer: Result<Vec<Bytes>, WebSeedError>,
    ) {
        self.now = now;
        let Some(Pending::WebSeed { torrent, job }) = self.pending.remove(&request) else {
            return;
        };
        if let Some(t) = self.torrents.get_mut(&torrent) {
            t.handle_web_seed(now, job, answer);
        }
    }
}
