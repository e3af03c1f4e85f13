//! A wrapper that overrides nothing forwards every call, `Registry` and
//! `BlobWriter` alike, so a method added to either trait reaches every
//! wrapper without edits.

use std::sync::Arc;

use oci_core::testkit::forwarding::{ALL_CALLS, Recorder, lost_calls};
use oci_core::{BlobWriter, Registry, Result, async_trait};

/// Wraps a registry and changes nothing.
struct Plain(Arc<dyn Registry>);

#[async_trait]
impl Registry for Plain {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.0.as_ref())
    }

    async fn push_blob_chunked(&self, repo: &oci_core::RepoName) -> Result<Box<dyn BlobWriter>> {
        let inner = self.0.push_blob_chunked(repo).await?;
        Ok(Box::new(PlainWriter(inner)))
    }
}

/// Wraps a writer and changes nothing.
struct PlainWriter(Box<dyn BlobWriter>);

#[async_trait]
impl BlobWriter for PlainWriter {
    fn forward_to(&self) -> Option<&dyn BlobWriter> {
        Some(self.0.as_ref())
    }

    fn forward_to_mut(&mut self) -> Option<&mut dyn BlobWriter> {
        Some(self.0.as_mut())
    }

    fn into_forward(self: Box<Self>) -> Option<Box<dyn BlobWriter>> {
        Some(self.0)
    }

    fn id(&self) -> &str {
        self.0.id()
    }

    fn size(&self) -> u64 {
        self.0.size()
    }
}

#[tokio::test]
async fn a_wrapper_without_overrides_forwards_every_call() {
    let recorder = Recorder::new();
    let plain = Plain(Arc::new(recorder.clone()));
    assert_eq!(lost_calls(&plain).await, Vec::<&str>::new());
    let mut seen = recorder.seen();
    seen.sort_unstable();
    seen.dedup();
    let mut all = ALL_CALLS.to_vec();
    all.sort_unstable();
    assert_eq!(seen, all, "every call reached the wrapped registry");
}

/// Wraps a registry but names nothing to forward to.
struct Forgetful(#[allow(dead_code)] Arc<dyn Registry>);

#[async_trait]
impl Registry for Forgetful {}

#[tokio::test]
async fn a_wrapper_that_names_no_inner_registry_loses_every_call() {
    let recorder = Recorder::new();
    let lost = lost_calls(&Forgetful(Arc::new(recorder.clone()))).await;
    let registry_calls: Vec<&str> = ALL_CALLS
        .iter()
        .copied()
        .filter(|c| !c.starts_with("writer."))
        .collect();
    assert_eq!(lost, registry_calls);
    assert!(recorder.seen().is_empty());
}
