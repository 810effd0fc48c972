//! Path safety: a torrent's file names may never reach outside the download
//! folder.
//!
//! A .torrent is untrusted input, and its `name` and `path` lists become
//! file system paths. Every component is checked on its own, on every
//! platform, with the strictest rules of any platform: a name that is safe
//! on Linux but is a drive prefix on Windows is still refused, so a torrent
//! behaves the same wherever it is opened.

use std::fmt;

/// Why a path component was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// A file with an empty path list (no name at all).
    NoComponents,
    /// An empty component (`a//b`).
    Empty,
    /// `.`
    CurrentDir,
    /// `..`, which climbs out of the folder.
    ParentDir,
    /// A `/` or `\` inside a component, which would make it several
    /// components (or an absolute path).
    Separator,
    /// A NUL byte, which truncates the name at the OS boundary.
    Nul,
    /// A Windows drive prefix such as `C:`, which makes a path absolute there.
    DrivePrefix,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::NoComponents => "the path is empty",
            PathProblem::Empty => "a path component is empty",
            PathProblem::CurrentDir => "a path component is `.`",
            PathProblem::ParentDir => "a path component is `..`, which would escape the download folder",
            PathProblem::Separator => {
                "a path component contains `/` or `\\`, which could escape the download folder"
            }
            PathProblem::Nul => "a path component contains a NUL byte",
            PathProblem::DrivePrefix => {
                "a path component starts with a drive prefix such as `C:`, which is absolute on Windows"
            }
        })
    }
}

/// Checks one component of a file path (or the torrent's `name`).
pub fn check_component(component: &[u8]) -> Result<(), PathProblem> {
    match component {
        [] => Err(PathProblem::Empty),
        b"." => Err(PathProblem::CurrentDir),
        b".." => Err(PathProblem::ParentDir),
        _ if component.iter().any(|&b| b == b'/' || b == b'\\') => Err(PathProblem::Separator),
        _ if component.contains(&0) => Err(PathProblem::Nul),
        [letter, b':', ..] if letter.is_ascii_alphabetic() => Err(PathProblem::DrivePrefix),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_components_are_refused() {
        for (c, p) in [
            (&b""[..], PathProblem::Empty),
            (b".", PathProblem::CurrentDir),
            (b"..", PathProblem::ParentDir),
            (b"/etc", PathProblem::Separator),
            (b"a/../../b", PathProblem::Separator),
            (b"..\\..\\windows", PathProblem::Separator),
            (b"\\\\server\\share", PathProblem::Separator),
            (b"a\0b", PathProblem::Nul),
            (b"C:", PathProblem::DrivePrefix),
            (b"c:evil", PathProblem::DrivePrefix),
        ] {
            assert_eq!(
                check_component(c),
                Err(p),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for c in [
            &b"a"[..],
            b"...",
            b"..a",
            b".hidden",
            b"file.txt",
            b"12:30 meeting",
            "Ünïcödé 文件".as_bytes(),
        ] {
            assert_eq!(check_component(c), Ok(()));
        }
    }
}
