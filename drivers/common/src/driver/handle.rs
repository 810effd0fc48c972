//! [`Handle`]: how the application reaches a running loop, through the
//! control channel the loop drains before data.

use std::net::SocketAddr;

use async_channel::Sender;
use bittide_core::metainfo::Magnet;
use bittide_core::TorrentId;

use super::{Command, Input};
use crate::control::{reply, AddError, AddTorrent, Query, View};

/// A handle to send commands to a running loop (e.g. from a Ctrl-C
/// handler).
#[derive(Clone, Debug)]
pub struct Handle {
    /// The loop's control channel (unbounded: a command is never dropped).
    pub(super) tx: Sender<Input>,
}

impl Handle {
    /// Sends a command; false only if the loop has ended (the control
    /// channel is unbounded, so a busy loop never drops it).
    pub fn send(&self, command: Command) -> bool {
        self.tx.try_send(Input::Command(command)).is_ok()
    }

    /// Adds a torrent; its id once the loop has added it.
    pub async fn add_torrent(&self, add: AddTorrent) -> Result<TorrentId, AddError> {
        let (tx, rx) = reply();
        if !self.send(Command::AddTorrent(Box::new(add), tx)) {
            return Err(AddError::Ended);
        }
        rx.recv()
            .await
            .ok_or(AddError::Ended)?
            .ok_or(AddError::Refused)
    }

    /// Adds a magnet link with extra peers; its id once the loop has added
    /// it.
    pub async fn add_magnet(
        &self,
        magnet: Magnet,
        peers: Vec<SocketAddr>,
    ) -> Result<TorrentId, AddError> {
        let (tx, rx) = reply();
        if !self.send(Command::AddMagnet(Box::new(magnet), peers, tx)) {
            return Err(AddError::Ended);
        }
        rx.recv()
            .await
            .ok_or(AddError::Ended)?
            .ok_or(AddError::Refused)
    }

    /// Asks the loop `query` (e.g. [`Torrents`](crate::control::Torrents));
    /// `None` if the loop has ended.
    pub async fn query<Q: Query>(&self, query: Q) -> Option<Q::Answer> {
        let (tx, rx) = reply();
        let ask = move |view: &View<'_>| tx.send(query.answer(view));
        if self.tx.try_send(Input::Query(Box::new(ask))).is_err() {
            return None;
        }
        rx.recv().await
    }
}
