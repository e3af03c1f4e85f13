//! [`Call`]: what one traced call is about, and the event that reports
//! how it went.

use std::time::Instant;

use oci_core::{Digest, Error, RepoName, Result, Tag};
use tracing::Level;

/// The target every event of this crate uses: filter with `oci_debug=debug`.
pub const TARGET: &str = "oci_debug";

/// One call being traced, or nothing at all when DEBUG events of this
/// crate are off (then every method is a no-op and nothing is cloned).
pub(crate) struct Call(Option<Record>);

/// What a call is about.
struct Record {
    method: &'static str,
    repo: Option<RepoName>,
    digest: Option<Digest>,
    tag: Option<Tag>,
    from: Option<RepoName>,
    upload: Option<String>,
    started: Instant,
}

/// `ok`, or the error's spec code.
pub(crate) fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(err) => err.code().as_str(),
    }
}

impl Call {
    /// Starts tracing a call of `method`, if DEBUG events are on.
    pub(crate) fn start(method: &'static str) -> Call {
        if !tracing::enabled!(target: TARGET, Level::DEBUG) {
            return Call(None);
        }
        Call(Some(Record {
            method,
            repo: None,
            digest: None,
            tag: None,
            from: None,
            upload: None,
            started: Instant::now(),
        }))
    }

    /// Whether the call is traced.
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Names the repository.
    pub(crate) fn repo(mut self, repo: &RepoName) -> Call {
        if let Some(r) = &mut self.0 {
            r.repo = Some(repo.clone());
        }
        self
    }

    /// Names the digest.
    pub(crate) fn digest(mut self, digest: &Digest) -> Call {
        if let Some(r) = &mut self.0 {
            r.digest = Some(digest.clone());
        }
        self
    }

    /// Names the tag.
    pub(crate) fn tag(mut self, tag: &Tag) -> Call {
        if let Some(r) = &mut self.0 {
            r.tag = Some(tag.clone());
        }
        self
    }

    /// Names the source repository of a mount.
    pub(crate) fn from(mut self, from: &RepoName) -> Call {
        if let Some(r) = &mut self.0 {
            r.from = Some(from.clone());
        }
        self
    }

    /// Names the upload session.
    pub(crate) fn upload(mut self, id: &str) -> Call {
        if let Some(r) = &mut self.0 {
            r.upload = Some(id.to_owned());
        }
        self
    }

    /// Reports the end of the call (or of its stream, `what` saying which):
    /// outcome, bytes moved if known, time since the call started.
    pub(crate) fn finish<T>(&self, what: &str, result: &Result<T>, bytes: Option<u64>) {
        self.emit(what, result, bytes, None);
    }

    /// Reports the end of a listing: outcome and number of items.
    pub(crate) fn finish_listing(&self, result: &Result<()>, items: u64) {
        self.emit("listing end", result, None, Some(items));
    }

    fn emit<T>(&self, what: &str, result: &Result<T>, bytes: Option<u64>, items: Option<u64>) {
        let Some(r) = &self.0 else { return };
        let error: Option<&Error> = result.as_ref().err();
        tracing::debug!(
            target: TARGET,
            method = r.method,
            repo = r.repo.as_ref().map(display),
            digest = r.digest.as_ref().map(display),
            tag = r.tag.as_ref().map(display),
            from = r.from.as_ref().map(display),
            upload = r.upload.as_deref(),
            outcome = outcome(result),
            bytes,
            items,
            elapsed = ?r.started.elapsed(),
            error = error.map(display),
            "{what}",
        );
    }

    /// Runs a call's future and reports how it went.
    pub(crate) async fn run<T>(self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let result = fut.await;
        self.finish("call", &result, None);
        result
    }
}
