//! `bittide completions SHELL`: the shell's completion script for every
//! subcommand and flag, generated from the same clap definition as the
//! help, on stdout.

use clap_complete::Shell;

use crate::exit::Failure;
use crate::output::print;

// No doc comment: clap would take it as the subcommand's help.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

const EXAMPLES: &str = "\
Examples:
  bittide completions bash > ~/.local/share/bash-completion/completions/bittide
  bittide completions zsh > ~/.zfunc/_bittide        (with fpath+=~/.zfunc in ~/.zshrc)
  bittide completions fish > ~/.config/fish/completions/bittide.fish";

/// Writes the completion script of `cmd` (the whole `bittide` command).
pub(crate) fn exec(args: Args, mut cmd: clap::Command) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "bittide", &mut script);
    print(&String::from_utf8_lossy(&script))
}
