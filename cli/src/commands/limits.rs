//! `bittide limits`: rate limits, the daemon's over all torrents or (with
//! a hash) one torrent's; with no value it prints them.

use bittide_driver::units::parse_rate;
use serde::Deserialize;
use serde_json::json;

use crate::exit::Failure;
use crate::output::print;
use crate::remote::{rate, Body, RemoteArgs, TorrentJson};

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// A torrent's info-hash (or its first 6 or more hex digits) for its
    /// own limits; without it, the limits over all torrents.
    #[arg(value_name = "HASH")]
    hash: Option<String>,
    /// Set the upload limit in bytes per second: 500K, 2M; 0 or none:
    /// unlimited [default: leave it as it is].
    #[arg(long = "upload-limit", alias = "upload", value_name = "RATE", value_parser = parse_rate)]
    upload: Option<u64>,
    /// Set the download limit in bytes per second: 500K, 2M; 0 or none:
    /// unlimited [default: leave it as it is].
    #[arg(long = "download-limit", alias = "download", value_name = "RATE", value_parser = parse_rate)]
    download: Option<u64>,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide limits                                 (the limits over all torrents)
  bittide limits --upload-limit 1M --download-limit none
  bittide limits c1c1c1 --upload-limit 200K      (one torrent's own limit)";

/// The rates of `GET`/`PATCH /api/v1/settings`.
#[derive(Deserialize)]
struct Settings {
    upload_rate: u64,
    download_rate: u64,
}

/// Sets what is given, then prints the limits as they are.
pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let change = args.upload.is_some() || args.download.is_some();
    let (up, down) = match &args.hash {
        None => {
            let body = if change {
                let mut patch = json!({});
                if let Some(u) = args.upload {
                    patch["upload_rate"] = json!(u);
                }
                if let Some(d) = args.download {
                    patch["download_rate"] = json!(d);
                }
                client.send("PATCH", "settings", &[], Body::Json(patch))?
            } else {
                client.get("settings")?
            };
            let s: Settings = client.parse(&body)?;
            (s.upload_rate, s.download_rate)
        }
        Some(typed) => {
            let hash = client.resolve(std::slice::from_ref(typed))?.remove(0);
            if change {
                let mut limits = json!({});
                if let Some(u) = args.upload {
                    limits["upload"] = json!(u);
                }
                if let Some(d) = args.download {
                    limits["download"] = json!(d);
                }
                client.send(
                    "POST",
                    &format!("torrents/{hash}/limits"),
                    &[],
                    Body::Json(limits),
                )?;
            }
            let t: TorrentJson = client.get_json(&format!("torrents/{hash}"))?;
            (t.upload_limit, t.download_limit)
        }
    };
    let show = |n: u64| {
        if n == 0 {
            "unlimited".to_owned()
        } else {
            rate(n)
        }
    };
    print(&format!(
        "download: {}\nupload:   {}\n",
        show(down),
        show(up)
    ))
}
