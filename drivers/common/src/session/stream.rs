//! Streaming a torrent's file while it downloads (what a video player
//! reads over HTTP with ranges): a [`FileStream`] reads the file at any
//! offset, waiting for the pieces under it to arrive.
//!
//! Every open stream has a read position. The pieces a stream needs soon
//! form its window ([`streaming_window`]): the piece under the position,
//! the file's first and last pieces (players read headers and indexes
//! there), then [`READ_AHEAD`] bytes of read-ahead. The torrent's
//! time-critical pieces ([`Engine::set_critical`]) are the union of the
//! windows of its open streams, so a seek moves the picker at once and is
//! served in about the time of a few pieces; a stream that is dropped
//! (an HTTP client went away) takes its window with it.
//!
//! A read that waits wakes on the loop's `PieceDone` events for its
//! torrent (no polling), and gives up after [`STALL_TIMEOUT`] without the
//! piece, or at once when the torrent is removed.
//!
//! [`Engine::set_critical`]: bittide_core::engine::Engine::set_critical

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bittide_core::metainfo::{FileLayout, FileSlice};
use bittide_core::picker::streaming_window;
use bittide_core::{InfoHash, PieceIndex, TorrentId};

use super::views::RequestError;
use super::SessionHandle;
use crate::control::Command;
use crate::disk::Storage;
use crate::driver::Handle;
use crate::runtime::Runtime;

/// Bytes read ahead of a stream's position (a few seconds of HD video).
pub const READ_AHEAD: u64 = 4 << 20;
/// How long a read waits for its piece before it fails: a torrent paused
/// (or without peers) for this long ends the stream cleanly.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes one [`FileStream::read_at`] returns.
pub const MAX_READ: usize = 1 << 20;

/// Why a stream cannot go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The torrent was removed while the stream was open.
    Removed,
    /// No piece arrived for [`STALL_TIMEOUT`] (the torrent is paused, or
    /// no peer has the piece).
    Stalled,
    /// Reading the file failed: which path and why.
    Io(String),
    /// The session is shutting down.
    ShuttingDown,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Removed => f.write_str("the torrent was removed"),
            StreamError::Stalled => write!(
                f,
                "no data arrived for {} s (paused, or no peer has it)",
                STALL_TIMEOUT.as_secs()
            ),
            StreamError::Io(why) => f.write_str(why),
            StreamError::ShuttingDown => f.write_str("the session is shutting down"),
        }
    }
}

impl std::error::Error for StreamError {}

/// Pieces in a stream's window for this piece length: the piece under
/// the reader plus [`READ_AHEAD`] bytes' worth (at least one more).
pub fn window_pieces(piece_length: u32) -> u32 {
    let ahead = READ_AHEAD.div_ceil(u64::from(piece_length.max(1)));
    u32::try_from(ahead)
        .unwrap_or(u32::MAX)
        .max(1)
        .saturating_add(1)
}

/// The time-critical pieces of a torrent with streams open on `(file,
/// position)`: their windows merged rank by rank (every reader's current
/// piece first, then every window's second piece, …), each piece once.
pub fn union_window(layout: &FileLayout, streams: &[(usize, u64)]) -> Vec<PieceIndex> {
    let window = window_pieces(layout.piece_length());
    let windows: Vec<Vec<PieceIndex>> = streams
        .iter()
        .map(|&(file, position)| streaming_window(layout, file, position, window))
        .collect();
    let longest = windows.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for rank in 0..longest {
        for w in &windows {
            if let Some(&p) = w.get(rank) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// One open stream, as the session sees it (`T`: the torrent's id).
#[derive(Debug)]
struct Open<T> {
    torrent: T,
    layout: Arc<FileLayout>,
    file: usize,
    position: u64,
    /// Holds one wake-up: a piece of its torrent arrived (or the torrent
    /// went) since the reader last looked.
    wake: Sender<()>,
}

#[derive(Debug)]
struct Table<T> {
    next: u64,
    open: BTreeMap<u64, Open<T>>,
}

/// A torrent's new time-critical pieces, for the loop
/// ([`Command::SetCritical`]).
type Window<T> = (T, Vec<PieceIndex>);

/// Every open stream of a session: their windows and wake-ups. Each
/// change that moves a torrent's window hands the new one to a `send`
/// callback, called with the table locked so that windows reach the loop
/// in the order they were made.
#[derive(Debug)]
pub(crate) struct Streams<T = TorrentId> {
    table: Mutex<Table<T>>,
}

impl<T> Default for Streams<T> {
    fn default() -> Streams<T> {
        Streams {
            table: Mutex::new(Table {
                next: 0,
                open: BTreeMap::new(),
            }),
        }
    }
}

impl<T: Copy + Eq> Streams<T> {
    fn table(&self) -> MutexGuard<'_, Table<T>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every stream of `torrent` (a piece arrived, or it changed
    /// state or went away). Called on the loop: never blocks.
    pub(crate) fn wake(&self, torrent: T) {
        for o in self.table().open.values() {
            if o.torrent == torrent {
                // Full: a wake-up is already pending.
                let _ = o.wake.try_send(());
            }
        }
    }

    /// Opens a stream on `file` at position 0.
    fn open(
        &self,
        torrent: T,
        layout: Arc<FileLayout>,
        file: usize,
        send: impl FnOnce(Window<T>),
    ) -> (u64, Receiver<()>) {
        let (wake, woken) = async_channel::bounded(1);
        let mut t = self.table();
        let key = t.next;
        t.next += 1;
        t.open.insert(
            key,
            Open {
                torrent,
                layout,
                file,
                position: 0,
                wake,
            },
        );
        send(window_of(&t, torrent));
        (key, woken)
    }

    /// Moves a stream's position; its torrent's window changes only if the
    /// stream moved to another piece.
    fn seek(&self, key: u64, position: u64, send: impl FnOnce(Window<T>)) {
        let mut t = self.table();
        let Some(o) = t.open.get_mut(&key) else {
            return;
        };
        let piece = |pos| o.layout.locate(o.file, pos).map(|(p, _)| p);
        let moved = piece(position) != piece(o.position);
        o.position = position;
        let torrent = o.torrent;
        if moved {
            send(window_of(&t, torrent));
        }
    }

    /// Forgets a stream: its torrent's window without it.
    fn close(&self, key: u64, send: impl FnOnce(Window<T>)) {
        let mut t = self.table();
        if let Some(o) = t.open.remove(&key) {
            send(window_of(&t, o.torrent));
        }
    }
}

/// `torrent`'s union window (empty once no stream of it is open).
fn window_of<T: Copy + Eq>(t: &Table<T>, torrent: T) -> Window<T> {
    let mine: Vec<&Open<T>> = t.open.values().filter(|o| o.torrent == torrent).collect();
    let pieces = match mine.first() {
        Some(o) => {
            let at: Vec<(usize, u64)> = mine.iter().map(|o| (o.file, o.position)).collect();
            union_window(&o.layout, &at)
        }
        None => Vec::new(),
    };
    (torrent, pieces)
}

/// Hands a window to the loop.
fn to_loop(driver: &Handle) -> impl FnOnce(Window<TorrentId>) + '_ {
    move |(torrent, pieces)| {
        driver.send(Command::SetCritical(torrent, pieces));
    }
}

/// A file of a torrent, read at any offset while the torrent downloads.
/// Dropping it releases its window.
pub struct FileStream<R: Runtime> {
    session: SessionHandle<R>,
    key: u64,
    torrent: TorrentId,
    file: usize,
    length: u64,
    layout: Arc<FileLayout>,
    storage: Arc<Storage>,
    woken: Receiver<()>,
}

impl<R: Runtime> std::fmt::Debug for FileStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("torrent", &self.torrent)
            .field("file", &self.file)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> FileStream<R> {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Up to `max` bytes (at most [`MAX_READ`], and not past the end of
    /// the piece holding `offset`) from `offset`, waiting for that piece
    /// if it is not on disk yet. Empty at or past the end of the file.
    /// The stream's window moves to `offset` first.
    pub async fn read_at(&mut self, offset: u64, max: usize) -> Result<Vec<u8>, StreamError> {
        if offset >= self.length || max == 0 {
            return Ok(Vec::new());
        }
        let Some((piece, _)) = self.layout.locate(self.file, offset) else {
            return Ok(Vec::new());
        };
        let to_loop = to_loop(&self.session.driver);
        self.session.shared.streams.seek(self.key, offset, to_loop);
        self.wait_for(piece).await?;
        let start = self.layout.file_range(self.file).map_or(0, |r| r.start);
        let piece_end = self.layout.piece_offset(piece) + u64::from(self.layout.piece_size(piece));
        let end = (piece_end - start)
            .min(self.length)
            .min(offset + max.min(MAX_READ) as u64);
        let slice = FileSlice {
            file: self.file,
            offset,
            length: end - offset,
            padding: false,
        };
        let storage = self.storage.clone();
        self.session
            .blocking(move || storage.read(&[slice]))
            .await
            .map_err(|e| StreamError::Io(e.to_string()))
    }

    /// Returns once `piece` is on disk.
    async fn wait_for(&self, piece: PieceIndex) -> Result<(), StreamError> {
        let rt = self.session.rt.clone();
        let deadline = rt.now() + STALL_TIMEOUT;
        let torrent = self.torrent;
        loop {
            // A wake-up from before this look is stale; one after it is
            // kept in the channel, so none is lost between look and wait.
            while self.woken.try_recv().is_ok() {}
            let have = self
                .session
                .ask(move |view, _| view.engine().torrent(torrent).map(|t| t.have().get(piece)))
                .await
                .map_err(|_| StreamError::ShuttingDown)?;
            match have {
                None => return Err(StreamError::Removed),
                Some(true) => return Ok(()),
                Some(false) => {}
            }
            if rt.now() >= deadline {
                return Err(StreamError::Stalled);
            }
            let woken = first_of(self.woken.recv(), rt.sleep_until(deadline)).await;
            if let Some(Err(_)) = woken {
                return Err(StreamError::ShuttingDown);
            }
        }
    }
}

impl<R: Runtime> Drop for FileStream<R> {
    fn drop(&mut self) {
        let to_loop = to_loop(&self.session.driver);
        self.session.shared.streams.close(self.key, to_loop);
    }
}

/// `Some(a's output)` if `a` completes first, `None` if `b` does.
async fn first_of<A: Future, B: Future>(a: A, b: B) -> Option<A::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if b.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

impl<R: Runtime> SessionHandle<R> {
    /// Opens file `file` of torrent `hash` for streaming. A file the user
    /// set to skip can be streamed too: the pieces in its window are
    /// wanted while the stream is open ([`Engine::set_critical`]), and
    /// only they are fetched (into the part file, as for any piece of an
    /// unselected file); its priority stays as the user set it.
    ///
    /// [`Engine::set_critical`]: bittide_core::engine::Engine::set_critical
    pub async fn open_stream(
        &self,
        hash: InfoHash,
        file: usize,
    ) -> Result<FileStream<R>, RequestError> {
        let torrent = self.id(hash)?;
        let storage = {
            let reg = self.shared.registry();
            let e = reg.entries.get(&hash).ok_or(RequestError::NotFound(hash))?;
            e.storage.clone()
        };
        let layout = self
            .ask(move |view, _| view.layout(torrent).cloned())
            .await?;
        let (Some(storage), Some(layout)) = (storage, layout) else {
            return Err(RequestError::BadRequest(
                "its files are not known yet (the metadata has not arrived)".into(),
            ));
        };
        let length = match layout.file_range(file) {
            Some(r) if !layout.is_padding(file) => r.end - r.start,
            _ => {
                return Err(RequestError::BadRequest(format!(
                    "the torrent has no file {file} (it has {})",
                    layout.file_count()
                )))
            }
        };
        let layout = Arc::new(layout);
        let (key, woken) =
            self.shared
                .streams
                .open(torrent, layout.clone(), file, to_loop(&self.driver));
        Ok(FileStream {
            session: self.clone(),
            key,
            torrent,
            file,
            length,
            layout,
            storage,
            woken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 1 << 20;

    fn layout() -> FileLayout {
        // Two files of 20 and 30 pieces; the second starts mid-piece 19.
        FileLayout::new(
            PIECE,
            [
                (u64::from(PIECE) * 19 + 100, false),
                (u64::from(PIECE) * 30, false),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_window_is_the_piece_under_the_reader_the_ends_then_read_ahead() {
        assert_eq!(window_pieces(PIECE), 5);
        assert_eq!(window_pieces(16 << 10), 257);
        assert_eq!(window_pieces(64 << 20), 2);
        let l = layout();
        let w: Vec<u32> = union_window(&l, &[(0, 10 * u64::from(PIECE))])
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(w, vec![10, 0, 19, 11, 12, 13, 14]);
    }

    #[test]
    fn windows_of_several_streams_merge_rank_by_rank_without_repeats() {
        let l = layout();
        let w: Vec<u32> = union_window(&l, &[(0, 0), (1, 20 * u64::from(PIECE))])
            .iter()
            .map(|p| p.0)
            .collect();
        // The readers' pieces (0, 39) first; file 1's first piece is 19,
        // which file 0's window also has as its last.
        assert_eq!(w, vec![0, 39, 19, 1, 49, 2, 40, 3, 41, 4, 42, 43]);
        assert!(union_window(&l, &[]).is_empty());
    }

    #[test]
    fn streams_move_their_window_and_a_closed_one_releases_it() {
        let streams: Streams<u32> = Streams::default();
        let layout = Arc::new(layout());
        let mut sent: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut send = |w: Window<u32>| sent.push((w.0, w.1.iter().map(|p| p.0).collect()));
        let (one, _w1) = streams.open(1, layout.clone(), 0, &mut send);
        let (two, _w2) = streams.open(1, layout.clone(), 1, &mut send);
        let (other, _w3) = streams.open(2, layout.clone(), 0, &mut send);
        // Within the same piece: nothing to tell the loop.
        streams.seek(one, 1000, &mut send);
        // To 80 % of file 0: the reader's piece first.
        streams.seek(one, 15 * u64::from(PIECE), &mut send);
        // Closing one leaves the other's window; the last one none.
        streams.close(one, &mut send);
        streams.close(two, &mut send);
        streams.close(two, &mut send);
        streams.close(other, &mut send);
        assert_eq!(
            sent,
            vec![
                (1, vec![0, 19, 1, 2, 3, 4]),
                // File 1 starts in piece 19, which file 0 ends in.
                (1, vec![0, 19, 49, 1, 20, 2, 21, 3, 22, 4, 23]),
                (2, vec![0, 19, 1, 2, 3, 4]),
                (1, vec![15, 19, 0, 49, 20, 16, 21, 17, 22, 18, 23]),
                (1, vec![19, 49, 20, 21, 22, 23]),
                (1, vec![]),
                (2, vec![]),
            ]
        );
    }

    #[test]
    fn a_piece_wakes_only_the_streams_of_its_torrent() {
        let streams: Streams<u32> = Streams::default();
        let layout = Arc::new(layout());
        let (_, woken_a) = streams.open(1, layout.clone(), 0, drop);
        let (_, woken_b) = streams.open(2, layout, 0, drop);
        streams.wake(1);
        streams.wake(1);
        assert!(woken_a.try_recv().is_ok());
        assert!(woken_a.try_recv().is_err(), "wake-ups are coalesced");
        assert!(woken_b.try_recv().is_err());
    }

    #[test]
    fn a_window_at_the_end_of_a_file_stops_there() {
        let l = layout();
        let end = u64::from(PIECE) * 30 - 1;
        let w: Vec<u32> = union_window(&l, &[(1, end)]).iter().map(|p| p.0).collect();
        assert_eq!(w, vec![49, 19]);
    }
}
