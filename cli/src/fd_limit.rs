//! The open-file limit, raised at start from the soft limit to the hard
//! one, as torrent clients do: a daemon with many torrents holds a socket
//! per peer and cached file handles per torrent, and a soft limit of 1024
//! (the usual default) would make accepts and opens fail with "Too many
//! open files" long before the machine minds. Nothing is raised beyond
//! what the administrator allowed (the hard limit).

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the soft limit now
/// in force, if it could be read.
#[cfg(unix)]
#[allow(unsafe_code)] // getrlimit/setrlimit: std has no wrapper.
pub(crate) fn raise() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit we own; raising the soft
        // limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// Elsewhere there is nothing to raise.
#[cfg(not(unix))]
pub(crate) fn raise() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(unix)]
    fn the_soft_limit_ends_at_the_hard_one() {
        let now = super::raise().expect("getrlimit works");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: as in `raise`.
        let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(r, 0);
        assert_eq!(now, limit.rlim_cur);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
