//! [`Immutable`]: tags, once set, never move; nothing is deleted.

use std::sync::Arc;

use async_trait::async_trait;
use oci_core::{Descriptor, Digest, Error, ErrorCode, Manifest, Registry, RepoName, Result, Tag};
use tokio::sync::Mutex;

/// A registry whose tags can only be re-pushed with the digest they
/// already have (`DENIED` otherwise, also under concurrent pushes) and
/// whose deletes are all `DENIED`. Everything else is the inner
/// registry's.
///
/// ```
/// use std::sync::Arc;
/// let immutable = oci_filter::Immutable::new(Arc::new(oci_mem::MemRegistry::new()));
/// # let _ = immutable;
/// ```
pub struct Immutable {
    inner: Arc<dyn Registry>,
    /// Serialises tag checks with the pushes they guard.
    tagging: Mutex<()>,
}

impl Immutable {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Registry>) -> Immutable {
        Immutable {
            inner,
            tagging: Mutex::new(()),
        }
    }
}

fn denied(what: String) -> Error {
    Error::new(ErrorCode::Denied, what)
}

#[async_trait]
impl Registry for Immutable {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        if tags.is_empty() {
            return self.inner.push_manifest(repo, manifest, tags).await;
        }
        let _held = self.tagging.lock().await;
        for tag in tags {
            match self.inner.resolve_tag(repo, tag).await {
                Ok(existing) if existing.digest != *manifest.digest() => {
                    return Err(denied(format!(
                        "tag {repo}:{tag} is immutable: it points at {}, not {}",
                        existing.digest,
                        manifest.digest()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.push_manifest(repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete blob {digest} from {repo}"
        )))
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete manifest {digest} from {repo}"
        )))
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete tag {repo}:{tag}"
        )))
    }
}
