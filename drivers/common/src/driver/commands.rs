//! The loop applies the application's [`Command`]s: most become one engine
//! call; adding a torrent also records its storage and layout.

use bittide_core::Instant;

use super::{Command, Driver};
use crate::runtime::Runtime;

impl<R: Runtime> Driver<R> {
    /// Applies one command; false to end the loop.
    pub(super) fn handle_command(&mut self, now: Instant, command: Command) -> bool {
        match command {
            Command::AddTorrent(add, reply) => {
                reply.send(self.add_torrent(*add));
            }
            Command::AddMagnet(magnet, peers, reply) => {
                reply.send(self.add_magnet(&magnet, peers));
            }
            Command::StartMagnet {
                torrent,
                storage,
                start,
                priorities,
                sequential,
                peers,
            } => {
                self.storage.insert(torrent, storage);
                if self.engine.start_magnet(now, torrent, start).is_ok() {
                    self.configure(now, torrent, priorities, sequential, peers);
                }
            }
            Command::SetStorage(id, storage) => {
                if self.storage.contains_key(&id) {
                    self.storage.insert(id, storage);
                }
            }
            Command::Remove(id) => {
                self.engine.remove(now, id);
                self.layouts.remove(&id);
                if let Some(s) = self.storage.remove(&id) {
                    // What was written reaches the device, off the loop.
                    self.rt.spawn(self.rt.spawn_blocking(Box::new(move || {
                        let _ = s.sync();
                    })));
                }
            }
            Command::Pause(id) => self.engine.pause(now, id),
            Command::Recheck(id) => self.engine.recheck(now, id),
            Command::Reannounce(id) => self.engine.reannounce(now, id),
            Command::Crawl(config) => self.engine.crawl(now, config),
            Command::SetFetchConfig(config) => self.engine.set_fetch_config(config),
            Command::FetchMetadata(hash) => {
                // A refusal (queue full, already in) is counted in
                // `Engine::fetch_stats`.
                let _ = self.engine.fetch_metadata(now, hash);
            }
            Command::Resume(id) => self.engine.resume(now, id),
            Command::SetFilePriorities(id, p) => self.engine.set_file_priorities(now, id, &p),
            Command::SetSequential(id, on) => self.engine.set_sequential(id, on),
            Command::SetFirstLastPiece(id, on) => self.engine.set_first_last_priority(now, id, on),
            Command::SetCritical(id, pieces) => self.engine.set_critical(now, id, pieces),
            Command::SetQueuePosition(id, at) => self.engine.set_queue_position(now, id, at),
            Command::SetLimits(limits) => self.engine.set_limits(now, limits),
            Command::SetDefaultSeedingGoal(goal) => self.engine.set_default_seeding_goal(now, goal),
            Command::SetSeedingGoal(id, goal) => self.engine.set_seeding_goal(now, id, goal),
            Command::SetForceStart(id, on) => self.engine.set_force_start(now, id, on),
            Command::SetRateLimits {
                torrent,
                upload,
                download,
            } => self.engine.set_rate_limits(now, torrent, upload, download),
            Command::AddPeers(id, peers) => self.engine.add_peers(now, id, peers),
            // The engine decides when it is done (trackers told, writes
            // finished, or its grace over) and says so with
            // `Event::Stopped`.
            Command::Shutdown => self.engine.shutdown(now),
            Command::Abort => return false,
        }
        true
    }
}
