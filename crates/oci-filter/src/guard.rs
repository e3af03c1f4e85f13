//! [`Guarded`]: a registry whose every call is first checked by a
//! [`Policy`], which may also map repository names between the outside
//! and the inner registry. `ReadOnly`, `AccessChecker`, `Select` and
//! `Prefix` are policies.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::ready;
use oci_core::registry::failed_list;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

/// What a call does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads blobs, manifests or tags.
    Read,
    /// Pushes blobs, manifests or tags (also the target of a mount).
    Write,
    /// Deletes blobs, manifests or tags.
    Delete,
    /// Lists tags or referrers.
    List,
}

/// What the catalog makes of one repository of the inner registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// Shown, under this name.
    Shown(RepoName),
    /// Not shown.
    Hidden,
    /// Not shown, nor anything after it: the catalog ends here.
    End,
}

/// Decides whether a call may go on, and under which name it reaches the
/// inner registry.
///
/// Names are checked as the caller gave them, then mapped in with
/// [`name_in`](Policy::name_in); catalog entries are mapped out with
/// [`name_out`](Policy::name_out), then checked for `Read`. A policy that
/// maps no names implements `check` alone.
pub trait Policy: Send + Sync + 'static {
    /// `Ok` to let the call through, or the error to answer with.
    fn check(&self, repo: &RepoName, access: Access) -> Result<()>;

    /// The inner registry's name for `repo` (by default, `repo` itself).
    fn name_in<'a>(&self, repo: &'a RepoName) -> Result<Cow<'a, RepoName>> {
        Ok(Cow::Borrowed(repo))
    }

    /// Where to start reading the inner catalog for the entries after
    /// `last` (by default, after `last` itself).
    fn catalog_after(&self, last: Option<&str>) -> Option<String> {
        last.map(str::to_owned)
    }

    /// What the catalog shows of the inner registry's `inner` (by
    /// default, the same name). The inner catalog is sorted, and so must
    /// be the names shown.
    fn name_out(&self, inner: RepoName) -> Listed {
        Listed::Shown(inner)
    }
}

/// A registry whose calls pass a [`Policy`] first; the catalog shows only
/// repositories the policy lets be read.
///
/// A method added to [`Registry`] later is forwarded to the inner
/// registry unchecked until it is overridden here; one that names a
/// repository must be.
pub struct Guarded<P> {
    inner: Arc<dyn Registry>,
    policy: Arc<P>,
}

impl<P: Policy> Guarded<P> {
    /// Wraps `inner` with `policy`.
    pub fn with_policy(inner: Arc<dyn Registry>, policy: P) -> Guarded<P> {
        Guarded {
            inner,
            policy: Arc::new(policy),
        }
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &Arc<dyn Registry> {
        &self.inner
    }

    /// `repo`, checked for `access` and mapped to the inner registry's name.
    fn admit<'a>(&self, repo: &'a RepoName, access: Access) -> Result<Cow<'a, RepoName>> {
        self.policy.check(repo, access)?;
        self.policy.name_in(repo)
    }

    /// A listing of `repo`, checked for `List`, from the inner registry.
    fn list<T: Send + 'static>(
        &self,
        repo: &RepoName,
        list: impl FnOnce(&RepoName) -> ListStream<T>,
    ) -> ListStream<T> {
        match self.admit(repo, Access::List) {
            Ok(repo) => list(&repo),
            Err(e) => failed_list(e),
        }
    }
}

#[async_trait]
impl<P: Policy> Registry for Guarded<P> {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.get_blob(&repo, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.get_blob_range(&repo, digest, range).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.resolve_blob(&repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.get_manifest(&repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.get_tag(&repo, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.resolve_manifest(&repo, digest).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        let repo = self.admit(repo, Access::Read)?;
        self.inner.resolve_tag(&repo, tag).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        let repo = self.admit(repo, Access::Write)?;
        self.inner.push_blob(&repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        let repo = self.admit(repo, Access::Write)?;
        self.inner.push_blob_chunked(&repo).await
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        let repo = self.admit(repo, Access::Write)?;
        self.inner.push_blob_chunked_resume(&repo, id).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        let from = self.admit(from, Access::Read)?;
        let repo = self.admit(repo, Access::Write)?;
        self.inner.mount_blob(&repo, &from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        let repo = self.admit(repo, Access::Write)?;
        self.inner.push_manifest(&repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let repo = self.admit(repo, Access::Delete)?;
        self.inner.delete_blob(&repo, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let repo = self.admit(repo, Access::Delete)?;
        self.inner.delete_manifest(&repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        let repo = self.admit(repo, Access::Delete)?;
        self.inner.delete_tag(&repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        self.list(repo, |repo| self.inner.tags(repo, options))
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        self.list(repo, |repo| {
            self.inner.referrers(repo, subject, artifact_type)
        })
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        let inner_options = ListOptions {
            last: self.policy.catalog_after(options.last.as_deref()),
            n: None,
        };
        let policy = Arc::clone(&self.policy);
        let listed = self
            .inner
            .repositories(&inner_options)
            .map(move |item| {
                item.map(|inner| match policy.name_out(inner) {
                    Listed::Shown(name) if policy.check(&name, Access::Read).is_err() => {
                        Listed::Hidden
                    }
                    listed => listed,
                })
            })
            .take_while(|item| ready(!matches!(item, Ok(Listed::End))))
            .filter_map(|item| {
                ready(match item {
                    Ok(Listed::Shown(name)) => Some(Ok(name)),
                    Ok(Listed::Hidden | Listed::End) => None,
                    Err(e) => Some(Err(e)),
                })
            });
        match options.n {
            Some(n) => listed.take(n).boxed(),
            None => listed.boxed(),
        }
    }
}
