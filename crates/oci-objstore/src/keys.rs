//! Where everything lives in the bucket: one function per kind of object,
//! so the layout is stated once (see the crate docs for the picture).
//!
//! A repository name becomes one path segment, its `/` written as `!`
//! (which no repository name holds, and S3 and object_store keep as it is), so nested repositories never make a
//! key both an object and a "directory" (the local-filesystem backend
//! cannot hold both).

use object_store::path::Path;
use oci_core::{Digest, RepoName, Tag};

/// A repository name as one key segment.
pub(crate) fn repo_segment(repo: &RepoName) -> String {
    repo.as_str().replace('/', "!")
}

/// The repository a key segment names, if it names one.
pub(crate) fn repo_from_segment(segment: &str) -> Option<RepoName> {
    segment.replace('!', "/").parse().ok()
}

fn path(parts: &[&str]) -> Path {
    Path::from_iter(parts.iter().copied())
}

/// Everything about one blob: its bytes and the repositories linking it.
pub(crate) fn blob_dir(digest: &Digest) -> Path {
    path(&["blobs", digest.algorithm().as_str(), digest.hex()])
}

/// A blob's bytes.
pub(crate) fn blob_data(digest: &Digest) -> Path {
    blob_dir(digest).join("data")
}

/// The links of a blob: one object per repository holding it.
pub(crate) fn blob_links(digest: &Digest) -> Path {
    blob_dir(digest).join("links")
}

/// That `repo` holds a blob; the object's body is the blob's size.
pub(crate) fn blob_link(digest: &Digest, repo: &RepoName) -> Path {
    blob_links(digest).join(repo_segment(repo))
}

/// Everything of all blobs.
pub(crate) fn blobs_root() -> Path {
    Path::from("blobs")
}

/// The repositories.
pub(crate) fn repos_root() -> Path {
    Path::from("repos")
}

/// One repository's manifests, tags and referrers.
pub(crate) fn repo_dir(repo: &RepoName) -> Path {
    repos_root().join(repo_segment(repo))
}

/// The index of the blobs a repository holds: one empty object per blob,
/// beside the link under the blob (so a repository that holds blobs and
/// no manifest is seen as not empty without listing every blob).
pub(crate) fn repo_blobs(repo: &RepoName) -> Path {
    repo_dir(repo).join("blobs")
}

/// That `repo` holds the blob `digest` (the index entry of its link).
pub(crate) fn repo_blob(repo: &RepoName, digest: &Digest) -> Path {
    repo_blobs(repo).join(digest_segment(digest))
}

/// A repository's manifests.
pub(crate) fn manifests(repo: &RepoName) -> Path {
    repo_dir(repo).join("manifests")
}

/// A manifest: its media type on the first line, then its exact bytes.
pub(crate) fn manifest(repo: &RepoName, digest: &Digest) -> Path {
    path(&[
        "repos",
        &repo_segment(repo),
        "manifests",
        digest.algorithm().as_str(),
        digest.hex(),
    ])
}

/// A tag: its body is the digest it points at (empty: deleted).
pub(crate) fn tag(repo: &RepoName, tag: &Tag) -> Path {
    tags(repo).join(tag.as_str())
}

/// A repository's tags.
pub(crate) fn tags(repo: &RepoName) -> Path {
    repo_dir(repo).join("tags")
}

/// The referrers of subjects whose hex digest starts like `subject`'s:
/// one object per referrer. Only the first 16 hex digits of the subject
/// are in the key (keys stay short; some S3 servers cap them), so a
/// referrer's object names its subject in full and listings filter on it.
pub(crate) fn referrers(repo: &RepoName, subject: &Digest) -> Path {
    let hex = subject.hex();
    repo_dir(repo)
        .join("referrers")
        .join(&hex[..hex.len().min(16)])
}

/// One referrer of `subject`: its body names the subject and holds the
/// referrer descriptor (JSON).
pub(crate) fn referrer(repo: &RepoName, subject: &Digest, referrer: &Digest) -> Path {
    referrers(repo, subject).join(digest_segment(referrer))
}

/// A digest as one key segment (`sha256-<hex>`).
fn digest_segment(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().as_str(), digest.hex())
}

/// The digest a key segment of [`digest_segment`]'s form names, if any.
pub(crate) fn digest_from_segment(segment: &str) -> Option<Digest> {
    let (alg, hex) = segment.split_once('-')?;
    format!("{alg}:{hex}").parse().ok()
}

/// All uploads.
pub(crate) fn uploads_root() -> Path {
    Path::from("uploads")
}

/// One upload: its repository and its parts.
pub(crate) fn upload_dir(id: &str) -> Path {
    uploads_root().join(id)
}

/// The repository an upload belongs to (its body is the name).
pub(crate) fn upload_repo(id: &str) -> Path {
    upload_dir(id).join("repo")
}

/// An upload's parts.
pub(crate) fn upload_parts(id: &str) -> Path {
    upload_dir(id).join("parts")
}

/// The part of an upload starting at `offset` (zero-padded, so parts list
/// in order).
pub(crate) fn upload_part(id: &str, offset: u64) -> Path {
    upload_parts(id).join(format!("{offset:020}"))
}

/// The offset a part key starts at.
pub(crate) fn part_offset(key: &Path) -> Option<u64> {
    key.filename()?.parse().ok()
}

/// The garbage collector's state: idle or running, and which run.
pub(crate) fn gc_state() -> Path {
    path(&["_gc", "state"])
}

/// Held (created, not overwritten) by the one collection running.
pub(crate) fn gc_lock() -> Path {
    path(&["_gc", "lock"])
}

/// Where the conditional-write probe writes at start-up.
pub(crate) fn probe(id: &str) -> Path {
    path(&["_probe", id])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repositories_are_one_segment() {
        let repo: RepoName = "library/alpine".parse().unwrap();
        assert_eq!(repo_segment(&repo), "library!alpine");
        assert_eq!(repo_from_segment("library!alpine"), Some(repo.clone()));
        let digest = Digest::sha256(b"x");
        assert_eq!(
            manifest(&repo, &digest).as_ref(),
            format!("repos/library!alpine/manifests/sha256/{}", digest.hex())
        );
        assert_eq!(part_offset(&upload_part("u", 42)), Some(42));
    }
}
