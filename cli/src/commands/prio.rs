//! `bittide prio`: file priorities of one torrent — `skip` (not
//! downloaded), `low`, `normal`, `high`.

use serde_json::json;

use crate::exit::{Exit, Failure};
use crate::remote::{Body, RemoteArgs};

/// The priorities the API knows.
const PRIORITIES: [&str; 4] = ["skip", "low", "normal", "high"];

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(override_usage = "bittide prio [OPTIONS] <HASH> <INDEX>... <skip|low|normal|high>")]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The torrent's info-hash, or its first 6 or more hex digits.
    #[arg(value_name = "HASH")]
    hash: String,
    /// File indices (as `bittide show` lists them), then the priority:
    /// skip, low, normal or high.
    #[arg(value_name = "INDEX|PRIORITY", num_args = 2.., required = true)]
    rest: Vec<String>,
    #[command(flatten)]
    remote: RemoteArgs,
}

const EXAMPLES: &str = "\
Examples:
  bittide prio c1c1c1 0 2 skip          (do not download files 0 and 2)
  bittide prio c1c1c1 1 high";

pub(crate) fn exec(args: Args) -> Result<(), Failure> {
    let (priority, indices) = split(&args.rest)?;
    let client = args.remote.client()?;
    let hash = client.resolve(std::slice::from_ref(&args.hash))?.remove(0);
    let changes: Vec<_> = indices
        .iter()
        .map(|i| json!({ "index": i, "priority": priority }))
        .collect();
    client.send(
        "POST",
        &format!("torrents/{hash}/files"),
        &[],
        Body::Json(json!({ "priorities": changes })),
    )?;
    Ok(())
}

/// The priority (last) and the file indices (before it).
fn split(rest: &[String]) -> Result<(&str, Vec<usize>), Failure> {
    let (priority, indices) = rest
        .split_last()
        .ok_or_else(|| Failure::new(Exit::Usage, "give file indices and a priority"))?;
    let priority = PRIORITIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(priority))
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("`{priority}` is not a priority: skip, low, normal or high (last)"),
            )
        })?;
    let indices = indices
        .iter()
        .map(|i| {
            i.parse::<usize>()
                .map_err(|_| Failure::new(Exit::Usage, format!("`{i}` is not a file index")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if indices.is_empty() {
        return Err(Failure::new(Exit::Usage, "give at least one file index"));
    }
    Ok((priority, indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn indices_then_priority() {
        let rest = words("0 2 HIGH");
        assert_eq!(split(&rest).unwrap(), ("high", vec![0, 2]));
        assert!(split(&words("0 2")).is_err());
        assert!(split(&words("x skip")).is_err());
        assert!(split(&words("skip")).is_err());
    }
}
