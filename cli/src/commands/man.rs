//! `bittide man`: the manual pages, generated from the same clap
//! definition as `--help` (so they cannot drift from it): `bittide.1` and
//! one `bittide-<subcommand>.1` per subcommand, nested ones included.
//! The pages in `docs/man/` are these, committed; a test fails when they
//! differ from what the code generates.

use std::path::{Path, PathBuf};

use crate::exit::{Exit, Failure};
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Write every page (bittide.1, bittide-<subcommand>.1, …) into this
    /// folder instead of printing bittide.1 [default: print].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const EXAMPLES: &str = "\
Examples:
  bittide man | man -l -
  bittide man --dir docs/man          (regenerate the committed pages)";

/// Prints the top-level page, or writes every page into `--dir`.
pub(crate) fn exec(args: Args, cmd: clap::Command) -> Result<(), Failure> {
    let pages = pages(cmd)?;
    let Some(dir) = args.dir else {
        let (_, top) = pages
            .last()
            .ok_or_else(|| Failure::new(Exit::Io, "no page"))?;
        return print(&String::from_utf8_lossy(top));
    };
    let io =
        |path: &Path, e: std::io::Error| Failure::new(Exit::Io, format!("{}: {e}", path.display()));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    for (name, page) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// Every visible page as (file name, roff), subcommands before their
/// parent, `bittide.1` last (as `clap_mangen::generate_to` orders them).
fn pages(cmd: clap::Command) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut page = Vec::new();
        man.render(&mut page)?;
        out.push((man.get_filename(), page));
        Ok(())
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out).map_err(|e| Failure::new(Exit::Io, format!("man page: {e}")))?;
    Ok(out)
}
