//! Listings: tags, referrers and repositories, each one listing of a
//! prefix (sorted here: backends do not promise an order).

use std::sync::Arc;

use oci_core::registry::{list_from, referrers_from};
use oci_core::{Descriptor, Digest, Error, ListOptions, ListStream, RepoName, Tag};

use crate::keys;
use crate::store::Inner;

/// A referrer's object: the subject it names and its descriptor.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReferrerEntry {
    /// The subject, in full.
    pub(crate) subject: Digest,
    /// What a referrers listing shows.
    pub(crate) descriptor: Descriptor,
}

/// The repository's tags in lexical order, paginated.
pub(crate) fn tags(inner: &Arc<Inner>, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
    let (inner, repo, options) = (inner.clone(), repo.clone(), options.clone());
    list_from(async move {
        let found = inner.list(&keys::tags(&repo)).await?;
        if found.is_empty() && !crate::repos::exists(&inner, &repo).await? {
            return Err(Error::name_unknown(&repo));
        }
        let mut tags: Vec<Tag> = found
            .iter()
            // An empty tag object is a tag removed by a conditional write.
            .filter(|meta| meta.size > 0)
            .filter_map(|meta| meta.location.filename()?.parse().ok())
            .collect();
        tags.sort();
        Ok(options.apply(tags))
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
        let mut found = Vec::new();
        for meta in inner.list(&keys::referrers(&repo, &subject)).await? {
            // Gone meanwhile (its manifest deleted): not listed.
            let Some((body, _)) = inner.get_small(&meta.location).await? else {
                continue;
            };
            let entry: ReferrerEntry = serde_json::from_slice(&body).map_err(|e| {
                Error::from(crate::ObjError::corrupt(
                    &meta.location,
                    format!("a referrer entry that does not parse: {e}"),
                ))
            })?;
            if entry.subject == subject {
                found.push(entry.descriptor);
            }
        }
        Ok(found)
    })
}

/// The repositories in lexical order, paginated.
pub(crate) fn repositories(inner: &Arc<Inner>, options: &ListOptions) -> ListStream<RepoName> {
    let (inner, options) = (inner.clone(), options.clone());
    list_from(async move {
        let mut names: Vec<RepoName> = inner
            .list_dirs(&keys::repos_root())
            .await?
            .iter()
            .filter_map(|dir| keys::repo_from_segment(dir.filename()?))
            .collect();
        names.sort();
        Ok(options.apply(names))
    })
}
