//! How `bittide` ends: every exit code it uses, defined once.
//!
//! Scripts and the integration tests depend on these numbers, so they
//! never change meaning. Usage errors found by clap (unknown flag, missing
//! argument) exit with clap's own code, which is [`Exit::Usage`]'s 2;
//! `--help` and `--version` exit 0.

use std::fmt;

use bittide_driver::client::{self, SessionError};

/// A non-zero exit code, by cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Unreadable input, unwritable output, a full disk, a busy port, a
    /// runtime that would not start.
    Io,
    /// A bad argument clap could not catch: a malformed info-hash, an
    /// address with no IPv4 form, `tracker serve` with nothing to serve,
    /// an `--only` index the torrent does not have; for the remote
    /// commands, a hash the daemon does not know (or a prefix matching
    /// several), a refused login, a bad `--api` URL; a hash `index show`
    /// does not find, a search without words.
    Usage,
    /// A torrent file or magnet link that is malformed, unsafe or
    /// unsupported.
    BadTorrent,
    /// A request the content cannot satisfy: a bad piece size, empty
    /// content, names that are not UTF-8; a torrent the daemon already
    /// has.
    BadInput,
    /// Every tracker refused or could not be reached.
    Tracker,
    /// Nobody answered in time: no useful peer within `--timeout`, no
    /// DHT node, or no daemon at the remote commands' `--api`.
    NoAnswer,
    /// A second Ctrl-C during a download or seed, or a second SIGTERM or
    /// SIGINT during the daemon's shutdown: exit at once, as a shell
    /// reports death by SIGINT (128 + 2).
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Io => 1,
            Exit::Usage => 2,
            Exit::BadTorrent => 3,
            Exit::BadInput => 4,
            Exit::Tracker => 5,
            Exit::NoAnswer => 6,
            Exit::Interrupted => 130,
        }
    }

    /// The cause behind a code the download/seed session reports a
    /// failure with: one of `bittide_driver::client::exit`, or 2 for a bad
    /// `--only` index.
    fn from_session(code: u8) -> Exit {
        match code {
            2 => Exit::Usage,
            client::exit::BAD_TORRENT => Exit::BadTorrent,
            client::exit::TRACKER => Exit::Tracker,
            client::exit::NO_PEERS => Exit::NoAnswer,
            // client::exit::IO, and any code the session may add before
            // this table learns it: the session's failures are about files
            // and sockets unless it says otherwise.
            _ => Exit::Io,
        }
    }
}

/// A failed command: why, for the user, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    /// One line, whatever the message held, so stderr stays one line per
    /// failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Failure {
        Failure::new(Exit::from_session(e.code), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_fixed() {
        let all = [
            (Exit::Io, 1),
            (Exit::Usage, 2),
            (Exit::BadTorrent, 3),
            (Exit::BadInput, 4),
            (Exit::Tracker, 5),
            (Exit::NoAnswer, 6),
            (Exit::Interrupted, 130),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn session_codes_keep_their_numbers() {
        for code in [
            2,
            client::exit::IO,
            client::exit::BAD_TORRENT,
            client::exit::TRACKER,
            client::exit::NO_PEERS,
        ] {
            assert_eq!(Exit::from_session(code).code(), code);
        }
    }

    #[test]
    fn a_failure_is_one_line() {
        let f = Failure::new(Exit::Io, "a\nb\rc");
        assert_eq!(f.to_string(), "a b c");
    }
}
