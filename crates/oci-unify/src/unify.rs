//! [`Unify`]: two registries served as one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ErrorCode, ListOptions, ListStream,
    Manifest, RangeRequest, Registry, RepoName, Result, Tag,
};

use crate::ReadPolicy;
use crate::merge::{merge_referrers, merge_sorted};
use crate::outcome::{Side, agree, both, both_deleted, both_written, first_success, side_failed};
use crate::writer::{decode_id, join_writers};
use oci_core::tee::tee;

/// Two registries, `r0` and `r1`, served as one.
///
/// - Reads take the first side that has the content, by the
///   [`ReadPolicy`]; a side answering `UNSUPPORTED` counts as not having
///   it. When both sides fail, the more specific error is returned
///   (anything over "not found", a resource's own not-found code over
///   `NAME_UNKNOWN` over `UNSUPPORTED`, r0's on a tie).
/// - Tags are looked up on both sides; if they point the tag at different
///   manifests the answer is an `UNKNOWN` error naming both digests
///   (detail `{"tag", "r0", "r1"}`).
/// - Writes go to both. A write that succeeds on one side only is an error
///   with the failing side's code and a message naming that side (`r0` or
///   `r1`); what the other side stored stays. Deletes succeed when one side
///   deleted and the other did not have the item.
/// - Listings are merged: sorted, without duplicates, paginated as one.
///   A side that does not know the repository counts as empty.
/// - Idle uploads are expired on both sides; the count is the sessions
///   cancelled on either, and a side that cannot expire uploads
///   (`UNSUPPORTED`) counts for none.
///
/// A mount that only one side can do is completed on the other by copying
/// the blob across.
pub struct Unify {
    r0: Arc<dyn Registry>,
    r1: Arc<dyn Registry>,
    policy: ReadPolicy,
}

impl Unify {
    /// Serves `r0` and `r1` as one, reading by `policy`.
    pub fn new(r0: Arc<dyn Registry>, r1: Arc<dyn Registry>, policy: ReadPolicy) -> Unify {
        Unify { r0, r1, policy }
    }

    /// The first registry.
    pub fn r0(&self) -> &Arc<dyn Registry> {
        &self.r0
    }

    /// The second registry.
    pub fn r1(&self) -> &Arc<dyn Registry> {
        &self.r1
    }

    /// The read policy.
    pub fn policy(&self) -> ReadPolicy {
        self.policy
    }

    /// Copies a blob of `repo` from side `from` to the other side.
    async fn copy_blob(&self, from: Side, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let (src, dst) = match from {
            Side::R0 => (&self.r0, &self.r1),
            Side::R1 => (&self.r1, &self.r0),
        };
        let to = match from {
            Side::R0 => Side::R1,
            Side::R1 => Side::R0,
        };
        let copied = async {
            let reader = src.get_blob(repo, digest).await?;
            let size = Some(reader.descriptor.size);
            dst.push_blob(repo, digest, size, reader.stream).await
        };
        copied
            .await
            .map_err(|e| side_failed("mount_blob (by copy)", to, e))
    }
}

#[async_trait]
impl Registry for Unify {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        first_success(
            self.policy,
            self.r0.get_blob(repo, digest),
            self.r1.get_blob(repo, digest),
        )
        .await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        first_success(
            self.policy,
            self.r0.get_blob_range(repo, digest, range),
            self.r1.get_blob_range(repo, digest, range),
        )
        .await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        first_success(
            self.policy,
            self.r0.resolve_blob(repo, digest),
            self.r1.resolve_blob(repo, digest),
        )
        .await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        first_success(
            self.policy,
            self.r0.get_manifest(repo, digest),
            self.r1.get_manifest(repo, digest),
        )
        .await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let (m0, m1) = both(
            self.policy,
            self.r0.get_tag(repo, tag),
            self.r1.get_tag(repo, tag),
        )
        .await;
        agree(tag.as_str(), m0, m1, Manifest::digest)
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        first_success(
            self.policy,
            self.r0.resolve_manifest(repo, digest),
            self.r1.resolve_manifest(repo, digest),
        )
        .await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        let (d0, d1) = both(
            self.policy,
            self.r0.resolve_tag(repo, tag),
            self.r1.resolve_tag(repo, tag),
        )
        .await;
        agree(tag.as_str(), d0, d1, |d: &Descriptor| &d.digest)
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        let (b0, b1, feed) = tee(body);
        let ((), p0, p1) = futures::join!(
            feed,
            self.r0.push_blob(repo, digest, size, b0),
            self.r1.push_blob(repo, digest, size, b1)
        );
        both_written("push_blob", p0, p1)
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        let (w0, w1) = futures::join!(
            self.r0.push_blob_chunked(repo),
            self.r1.push_blob_chunked(repo)
        );
        join_writers("push_blob_chunked", true, w0, w1).await
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        let (id0, id1) = decode_id(id)?;
        let (w0, w1) = futures::join!(
            self.r0.push_blob_chunked_resume(repo, id0),
            self.r1.push_blob_chunked_resume(repo, id1)
        );
        join_writers("push_blob_chunked_resume", false, w0, w1).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        let (m0, m1) = futures::join!(
            self.r0.mount_blob(repo, from, digest),
            self.r1.mount_blob(repo, from, digest)
        );
        match (m0, m1) {
            (Err(e0), Ok(d)) if e0.is(ErrorCode::BlobUnknown) => {
                self.copy_blob(Side::R1, repo, digest).await.map(|_| d)
            }
            (Ok(d), Err(e1)) if e1.is(ErrorCode::BlobUnknown) => {
                self.copy_blob(Side::R0, repo, digest).await.map(|_| d)
            }
            (m0, m1) => both_written("mount_blob", m0, m1),
        }
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        let (p0, p1) = futures::join!(
            self.r0.push_manifest(repo, manifest, tags),
            self.r1.push_manifest(repo, manifest, tags)
        );
        both_written("push_manifest", p0, p1)
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let (d0, d1) = futures::join!(
            self.r0.delete_blob(repo, digest),
            self.r1.delete_blob(repo, digest)
        );
        both_deleted("delete_blob", d0, d1)
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let (d0, d1) = futures::join!(
            self.r0.delete_manifest(repo, digest),
            self.r1.delete_manifest(repo, digest)
        );
        both_deleted("delete_manifest", d0, d1)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        let (d0, d1) = futures::join!(self.r0.delete_tag(repo, tag), self.r1.delete_tag(repo, tag));
        both_deleted("delete_tag", d0, d1)
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        // Each side lists from `last` and at most `n`: the merged first `n`
        // are among the first `n` of each.
        merge_sorted(
            self.r0.tags(repo, options),
            self.r1.tags(repo, options),
            options.n,
        )
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        merge_referrers(
            self.r0.referrers(repo, subject, artifact_type),
            self.r1.referrers(repo, subject, artifact_type),
        )
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        merge_sorted(
            self.r0.repositories(options),
            self.r1.repositories(options),
            options.n,
        )
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<u64> {
        let (e0, e1) = futures::join!(self.r0.expire_uploads(idle), self.r1.expire_uploads(idle));
        match (e0, e1) {
            (Ok(n0), Ok(n1)) => Ok(n0 + n1),
            (Ok(n), Err(e)) | (Err(e), Ok(n)) if e.is(ErrorCode::Unsupported) => Ok(n),
            (e0, e1) => both_written("expire_uploads", e0, e1),
        }
    }
}
