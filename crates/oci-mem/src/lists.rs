//! Listings: tags, referrers and repositories.

use futures::stream::{self, StreamExt};
use oci_core::registry::{failed_list, referrers_from};
use oci_core::{Descriptor, Digest, ListOptions, ListStream, RepoName, Tag};

use crate::state::Shared;

/// A listing of items already in hand.
fn listing<T: Send + 'static>(items: Vec<T>) -> ListStream<T> {
    stream::iter(items.into_iter().map(Ok)).boxed()
}

/// The repository's tags in lexical order, paginated.
pub(crate) fn tags(shared: &Shared, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
    let state = shared.read();
    match state.repo(repo) {
        Ok(r) => listing(options.apply(r.tags.keys().cloned())),
        Err(err) => failed_list(err),
    }
}

/// The referrers of `subject`, optionally of one artifact type.
pub(crate) fn referrers(
    shared: &Shared,
    repo: &RepoName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> ListStream<Descriptor> {
    let state = shared.read();
    let r = match state.repo(repo) {
        Ok(r) => r,
        Err(err) => return failed_list(err),
    };
    let found = r
        .referrers
        .get(subject)
        .into_iter()
        .flat_map(|entries| entries.values())
        .cloned()
        .collect();
    referrers_from(artifact_type, std::future::ready(Ok(found)))
}

/// The repositories in lexical order, paginated.
pub(crate) fn repositories(shared: &Shared, options: &ListOptions) -> ListStream<RepoName> {
    listing(options.apply(shared.read().repos.keys().cloned()))
}
