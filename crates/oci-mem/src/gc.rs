//! Garbage collection, run only when asked: unlinks from each repository
//! the blobs none of its manifests reference, and frees those no
//! repository links any more.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use oci_core::{Digest, RepoName};

use crate::state::Shared;

pub use oci_core::gc::GcReport;

/// Unlinks unreferenced blobs linked `grace` or longer ago.
pub(crate) fn collect(shared: &Shared, grace: Duration) -> GcReport {
    let now = Instant::now();
    let mut state = shared.write();
    let mut unreferenced: Vec<(RepoName, Digest)> = Vec::new();
    for (name, repo) in &state.repos {
        let referenced: HashSet<&Digest> = repo
            .manifests
            .values()
            .flat_map(|m| m.blobs.iter())
            .collect();
        unreferenced.extend(
            repo.blobs
                .iter()
                .filter(|(digest, linked)| {
                    !referenced.contains(digest) && now.saturating_duration_since(**linked) >= grace
                })
                .map(|(digest, _)| (name.clone(), digest.clone())),
        );
    }
    let mut report = GcReport::default();
    for (repo, digest) in unreferenced {
        if let Ok(freed) = state.unlink_blob(&repo, &digest) {
            report.links_removed += 1;
            if let Some(bytes) = freed {
                report.blobs_removed += 1;
                report.bytes_freed += bytes;
            }
        }
    }
    drop(state);
    tracing::info!(?report, "garbage collected");
    report
}
