//! Which blob files have been verified, so that a hot blob is hashed once
//! rather than on every read: a file is trusted again only while it is
//! the same file (device and inode) with the same size, modification and
//! status-change times. Writing to a file, replacing it or changing its
//! links changes one of these, and the next read verifies it again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};

use oci_core::Digest;

/// When a blob read hashes the file it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyReads {
    /// Every whole-blob read.
    Always,
    /// The first whole-blob read of a file, and every read after the file
    /// changed (its size, times, inode or links); a file this process
    /// wrote counts as verified. Silent bit rot of an unchanged file is not
    /// seen after the first read.
    #[default]
    WhenChanged,
}

/// The files verified so far, by device and inode: each with its state
/// then and the digest it held.
#[derive(Debug)]
pub(crate) struct Verified {
    policy: VerifyReads,
    files: Mutex<HashMap<(u64, u64), (Stamp, Digest)>>,
}

/// What identifies a file's state: device, inode, size, modification and
/// status-change times. One rule for blobs (here) and hot manifests
/// ([`crate::hot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    file: (u64, u64),
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The state `meta` describes.
    pub(crate) fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            file: (meta.dev(), meta.ino()),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl Verified {
    /// An empty record applying `policy`.
    pub(crate) fn new(policy: VerifyReads) -> Verified {
        Verified {
            policy,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a read of the file with `meta`, as `digest`, may skip hashing.
    pub(crate) fn trusted(&self, meta: &std::fs::Metadata, digest: &Digest) -> bool {
        self.policy != VerifyReads::Always && self.known(meta, digest)
    }

    /// Whether the file with `meta` was verified as `digest` since it last
    /// changed, whatever the policy (a range read of a file not known to be
    /// intact hashes it whole first).
    pub(crate) fn known(&self, meta: &std::fs::Metadata, digest: &Digest) -> bool {
        let stamp = Stamp::of(meta);
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&stamp.file)
            .is_some_and(|(known, held)| *known == stamp && held == digest)
    }

    /// Records that the file with `meta` holds exactly `digest`.
    pub(crate) fn record(&self, meta: &std::fs::Metadata, digest: &Digest) {
        let stamp = Stamp::of(meta);
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stamp.file, (stamp, digest.clone()));
    }
}
