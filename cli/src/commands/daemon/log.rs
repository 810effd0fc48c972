//! The daemon's log: `tracing` records on stderr, as text or one JSON
//! object per line, where systemd's journal (or any supervisor) collects
//! them. `RUST_LOG` picks levels (default `info`).
//!
//! Besides its own start and stop, the daemon logs the session's event
//! stream: torrents added, removed, finished, and their errors.

use std::io::IsTerminal;

use async_channel::Receiver;
use bittide_driver::session::views::SessionEvent;
use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Installs the stderr subscriber. Called once, before anything logs.
pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second subscriber cannot be installed; the first one stays, which
    // is only possible in tests.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Logs each session event until the stream ends: the session stopped,
/// or this listener fell more than the session's queue behind (it never
/// should: it only formats lines).
pub(crate) async fn events(rx: Receiver<SessionEvent>) {
    while let Ok(event) = rx.recv().await {
        match event {
            SessionEvent::Added { info_hash, name } => {
                tracing::info!(info_hash = %info_hash, name = %name, "torrent added");
            }
            SessionEvent::Removed { info_hash } => {
                tracing::info!(info_hash = %info_hash, "torrent removed");
            }
            SessionEvent::StateChanged { info_hash, state } => {
                tracing::info!(info_hash = %info_hash, state = %state, "torrent state changed");
            }
            SessionEvent::MetadataReceived { info_hash, name } => {
                tracing::info!(info_hash = %info_hash, name = %name, "metadata received");
            }
            SessionEvent::Finished { info_hash } => {
                tracing::info!(info_hash = %info_hash, "torrent finished");
            }
            SessionEvent::Error { info_hash, message } => {
                tracing::warn!(info_hash = %info_hash, error = %message, "torrent error");
            }
            SessionEvent::Stats {
                download_rate,
                upload_rate,
                ..
            } => {
                tracing::trace!(download_rate, upload_rate, "rates");
            }
        }
    }
    tracing::debug!("event stream ended");
}
