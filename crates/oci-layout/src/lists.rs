//! Listings: tags, referrers and repositories.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use oci_core::registry::{list_from, referrers_from};
use oci_core::{Descriptor, Digest, ListOptions, ListStream, RepoName, Tag};

use crate::store::Inner;

/// The repository's tags in lexical order, paginated.
pub(crate) fn tags(inner: &Arc<Inner>, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
    let (inner, repo, options) = (inner.clone(), repo.clone(), options.clone());
    list_from(async move {
        let mut guard = inner.repos.lock(&repo).await?;
        Ok(options.apply(guard.state().await?.tags.keys().cloned()))
    })
}

/// The referrers of `subject` in lexical order of digest, optionally only
/// those of one artifact type.
pub(crate) fn referrers(
    inner: &Arc<Inner>,
    repo: &RepoName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> ListStream<Descriptor> {
    let (inner, repo, subject) = (inner.clone(), repo.clone(), subject.clone());
    referrers_from(artifact_type, async move {
        let mut guard = inner.repos.lock(&repo).await?;
        Ok(guard
            .state()
            .await?
            .manifests
            .values()
            .filter_map(|info| info.referrer.as_ref())
            .filter(|(of, _)| *of == subject)
            .map(|(_, d)| d.clone())
            .collect())
    })
}

/// The repositories in lexical order, paginated.
pub(crate) fn repositories(inner: &Arc<Inner>, options: &ListOptions) -> ListStream<RepoName> {
    let names = inner.repos.names(options);
    stream::iter(names.into_iter().map(Ok)).boxed()
}
