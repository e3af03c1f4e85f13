//! How writes and an online garbage collection stay out of each other's
//! way, across any number of servers, with no lock held by writers.
//!
//! A collection deletes only while `_gc/state` says it is running, and
//! rewrites that object when it starts and when it ends (so its ETag
//! changes with every run). A write that makes something reachable (a
//! blob pushed or mounted, a manifest pushed) reads the state before it
//! starts ([`watch`]) and looks again when done ([`Watch::overlapped`]).
//! If nothing changed and no collection was running, no deletion can have
//! overlapped the write, and a collection starting later sees what it
//! wrote. Otherwise the write waits for the collection to end and checks
//! that what it made reachable is still there, failing (a 5xx the client
//! retries) rather than acknowledging something a collection removed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use oci_core::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::store::Inner;

/// A collection whose state has not changed for this long is taken to have
/// died: writers stop waiting for it, and a new collection may start.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// The longest a write waits for a running collection before failing.
const WAIT_AT_MOST: Duration = Duration::from_secs(120);

/// The body of `_gc/state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct GcState {
    /// Whether a collection is deleting now.
    pub(crate) running: bool,
    /// Which run (random), so every run rewrites the object.
    pub(crate) run: String,
    /// When the state was written, seconds since the epoch.
    pub(crate) since: u64,
}

impl GcState {
    /// A new state of a run.
    pub(crate) fn new(running: bool, run: &str) -> GcState {
        GcState {
            running,
            run: run.to_owned(),
            since: now_secs(),
        }
    }

    /// Whether a running collection has gone quiet for too long.
    fn stale(&self) -> bool {
        now_secs().saturating_sub(self.since) > STALE_AFTER.as_secs()
    }

    /// The bytes stored.
    pub(crate) fn to_bytes(&self) -> Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The collector's state as read, and its ETag (`None`: never collected).
async fn read(inner: &Inner) -> Result<(Option<GcState>, Option<String>)> {
    let key = keys::gc_state();
    match inner.get_small(&key).await? {
        None => Ok((None, None)),
        Some((bytes, meta)) => {
            let state = serde_json::from_slice::<GcState>(&bytes).ok();
            Ok((state, meta.e_tag.or(Some(meta.last_modified.to_rfc3339()))))
        }
    }
}

/// What a write saw before it started.
#[derive(Debug)]
pub(crate) struct Watch {
    e_tag: Option<String>,
    running: bool,
}

/// Reads the collector's state before a write.
pub(crate) async fn watch(inner: &Inner) -> Result<Watch> {
    let (state, e_tag) = read(inner).await?;
    Ok(Watch {
        e_tag,
        running: state.is_some_and(|s| s.running && !s.stale()),
    })
}

impl Watch {
    /// Whether a collection may have deleted while the write ran. If so,
    /// returns only once it has ended, so the caller can check what it
    /// wrote against the final state.
    pub(crate) async fn overlapped(&self, inner: &Inner) -> Result<bool> {
        let head = inner.head(&keys::gc_state()).await?;
        let e_tag = head.map(|m| m.e_tag.unwrap_or_else(|| m.last_modified.to_rfc3339()));
        if !self.running && e_tag == self.e_tag {
            return Ok(false);
        }
        wait_idle(inner).await?;
        Ok(true)
    }
}

/// Waits until no collection is running.
async fn wait_idle(inner: &Inner) -> Result<()> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match read(inner).await?.0 {
            Some(state) if state.running && !state.stale() => {}
            _ => return Ok(()),
        }
        if started.elapsed() > WAIT_AT_MOST {
            return Err(Error::new(
                ErrorCode::Unknown,
                "a garbage collection is running; try again",
            )
            .with_status(503));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
