//! The `bittide` command-line client.
//!
//! Every failure is one line on stderr and a non-zero exit code; see
//! [`cli::ExitCode`](cli) for their meanings.

mod cli;
mod session;

fn main() -> std::process::ExitCode {
    cli::main()
}
