//! Writing results to stdout.

use std::io::{self, Write};

use crate::exit::{Exit, Failure};

/// Writes to stdout; a closed pipe (`bittide info x | head`) is not an error.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::new(Exit::Io, format!("stdout: {e}")))
        }
        _ => Ok(()),
    }
}
