//! What a mirror counts and logs for each upstream: cache hits, misses,
//! stale answers, revalidated tags and the bytes read upstream, as
//! [`Stats`] and as one `tracing` line (target `oci_mirror`) per answer.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::upstream::Target;

/// A mirror's counters for one upstream.
#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    revalidated: AtomicU64,
    upstream_bytes: AtomicU64,
}

/// What a mirror has counted for one upstream so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered from the cache without asking the upstream.
    pub hits: u64,
    /// Requests that fetched from the upstream.
    pub misses: u64,
    /// Requests answered from the cache because the upstream failed.
    pub stale: u64,
    /// Tags found unchanged upstream by a HEAD once their freshness ran out.
    pub revalidated: u64,
    /// Blob and manifest bytes read from the upstream.
    pub upstream_bytes: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            revalidated: self.revalidated.load(Ordering::Relaxed),
            upstream_bytes: self.upstream_bytes.load(Ordering::Relaxed),
        }
    }

    /// Counts `n` bytes read from the upstream.
    pub(crate) fn read_upstream(&self, n: usize) {
        self.upstream_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// How a request was answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Revalidated => "revalidated",
        }
    }
}

/// Logs an answer for `target` (`what` `id`: a blob, manifest or tag) and
/// counts it.
pub(crate) fn note(target: &Target, what: &str, id: &dyn std::fmt::Display, outcome: Outcome) {
    let stats = &target.upstream.stats;
    let counter = match outcome {
        Outcome::Hit => &stats.hits,
        Outcome::Miss => &stats.misses,
        Outcome::Stale => &stats.stale,
        Outcome::Revalidated => &stats.revalidated,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let s = stats.snapshot();
    let upstream = target.upstream.host.as_str();
    let outcome = outcome.as_str();
    tracing::info!(
        target: "oci_mirror",
        upstream,
        repository = %target.name,
        what,
        id = %id,
        outcome,
        hits = s.hits,
        misses = s.misses,
        stale = s.stale,
        upstream_bytes = s.upstream_bytes,
        "mirror {outcome}"
    );
}
