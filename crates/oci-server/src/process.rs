//! [`raise_open_files`]: the open-file limit a server holding many
//! connections (or a load generator opening them) needs.

/// Raises this process's soft open-file limit towards `wanted` (at most
/// to the hard limit) and returns the limit now in force (0 when it
/// cannot be read). A no-op off Unix, where it returns `wanted`.
///
/// ```
/// let limit = oci_server::raise_open_files(256);
/// assert!(limit > 0);
/// ```
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain struct
    // passed by pointer, which lives for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Off Unix there is no limit to raise.
#[cfg(not(unix))]
pub fn raise_open_files(wanted: u64) -> u64 {
    wanted
}
