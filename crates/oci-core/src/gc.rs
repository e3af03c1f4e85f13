//! Garbage collection's one vocabulary: what a collection spares
//! ([`GcOptions`]) and what it removed ([`GcReport`]), the same for every
//! store that collects.

use std::fmt;
use std::time::Duration;

/// What a collection spares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Blobs (and blob links) written more recently than this are kept even
    /// when unreferenced: a blob pushed for a manifest not yet pushed. Zero
    /// for a store nothing else writes to while it is collected; beside
    /// running servers, longer than a client takes from its first blob to
    /// its manifest (with zero there, such a manifest push may be refused
    /// with `MANIFEST_BLOB_UNKNOWN`, but no blob a stored manifest
    /// references is ever removed).
    pub grace: Duration,
    /// Uploads untouched for longer than this are removed (and, in an
    /// object store, the blob index entries of pushes interrupted before
    /// their link).
    pub upload_age: Duration,
}

impl GcOptions {
    /// For a store that servers may be pushing to while it is collected:
    /// an hour's grace; uploads idle for a day are stale.
    pub fn beside_servers() -> GcOptions {
        GcOptions {
            grace: Duration::from_secs(60 * 60),
            ..GcOptions::default()
        }
    }
}

impl Default for GcOptions {
    /// No grace for blobs; uploads idle for a day are stale.
    fn default() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            upload_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blob links removed from repositories whose manifests do not
    /// reference them.
    pub links_removed: usize,
    /// Blobs whose bytes were removed (no repository linked them any more).
    pub blobs_removed: usize,
    /// Bytes those blobs held.
    pub bytes_freed: u64,
    /// Idle uploads removed.
    pub uploads_removed: usize,
    /// Repositories removed because they held nothing any more.
    pub repositories_removed: usize,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} blobs ({} bytes), {} blob links, {} stale uploads, {} empty repositories",
            self.blobs_removed,
            self.bytes_freed,
            self.links_removed,
            self.uploads_removed,
            self.repositories_removed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_as_one_line() {
        let report = GcReport {
            links_removed: 3,
            blobs_removed: 2,
            bytes_freed: 1024,
            uploads_removed: 1,
            repositories_removed: 0,
        };
        assert_eq!(
            report.to_string(),
            "removed 2 blobs (1024 bytes), 3 blob links, 1 stale uploads, 0 empty repositories"
        );
    }

    #[test]
    fn beside_servers_keeps_an_hour() {
        assert_eq!(GcOptions::beside_servers().grace, Duration::from_secs(3600));
        assert_eq!(GcOptions::default().grace, Duration::ZERO);
        assert_eq!(
            GcOptions::beside_servers().upload_age,
            GcOptions::default().upload_age
        );
    }
}
