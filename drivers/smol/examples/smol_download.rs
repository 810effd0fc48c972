//! Downloads a torrent with bittide on smol — the whole API in one file.
//!
//! `cargo run -p bittide-smol --example smol_download -- <file.torrent> <dir> [peer-addr]`
//!
//! The content goes to `<dir>/<name>`. Peers come from the torrent's
//! trackers, and from `peer-addr` if given.

use std::time::Duration;

use bittide_driver::client::{self, SessionOptions};
use bittide_driver::runtime::Runtime;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: download <file.torrent> <dir> [peer-addr]");
        std::process::exit(2);
    }
    let torrent = std::fs::read(&args[0]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[0]);
        std::process::exit(1);
    });
    let options = SessionOptions {
        peers: args
            .get(2)
            .and_then(|p| p.parse().ok())
            .into_iter()
            .collect(),
        peer_timeout: Some(Duration::from_secs(60)),
        ..SessionOptions::new(client::TorrentSource::File(torrent), args[1].clone().into())
    };
    let rt = bittide_smol::runtime();
    let clock = rt;
    let mut last_print = rt.now();
    let result = bittide_smol::block_on(client::run(
        rt,
        options,
        |_handle, addr| println!("listening on {addr}"),
        |progress, _event| {
            // The runtime's clock, as the engine's.
            if clock.now() - last_print >= Duration::from_secs(1) {
                last_print = clock.now();
                println!(
                    "{} / {} bytes, {} peers",
                    progress.done, progress.total, progress.peers
                );
            }
        },
    ));
    match result {
        Ok(p) => println!("done: {} bytes", p.done),
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(i32::from(e.code));
        }
    }
}
