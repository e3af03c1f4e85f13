//! The registry's state: a content-addressed blob store shared by all
//! repositories, and per repository its blob memberships, manifests, tags,
//! referrers and open uploads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crate::data::{BlobData, Chunks};
use oci_core::digest::Hasher;
use oci_core::{Descriptor, Digest, Error, Manifest, RepoName, Result, Tag};

/// The state behind a lock, shared by the registry, its clones and its
/// open upload writers. The lock is never held across an await.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared(Arc<RwLock<State>>);

impl Shared {
    /// Locks the state for reading.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while the lock was held cannot leave a map half-changed
        // in a way later calls trip over, so a poisoned lock is still used.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the state for writing.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything the registry holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Blob content by digest, shared by every repository that links it.
    pub(crate) blobs: HashMap<Digest, StoredBlob>,
    /// Repositories by name, in lexical order.
    pub(crate) repos: BTreeMap<RepoName, Repo>,
    /// Open chunked uploads by id.
    pub(crate) uploads: HashMap<String, Upload>,
}

/// A blob's bytes and how many repositories link it.
#[derive(Debug)]
pub(crate) struct StoredBlob {
    pub(crate) data: BlobData,
    pub(crate) links: usize,
}

/// One repository.
#[derive(Debug, Default)]
pub(crate) struct Repo {
    /// The blobs this repository links, and when each was last linked
    /// (garbage collection spares recent ones).
    pub(crate) blobs: HashMap<Digest, Instant>,
    /// Manifests by digest.
    pub(crate) manifests: HashMap<Digest, StoredManifest>,
    /// Tags, in lexical order, and the manifest each points at.
    pub(crate) tags: BTreeMap<Tag, Digest>,
    /// Per subject digest, the referrer descriptors of the manifests that
    /// name it as their subject.
    pub(crate) referrers: HashMap<Digest, BTreeMap<Digest, Descriptor>>,
}

impl Repo {
    /// Whether the repository holds nothing at all. Open uploads do not
    /// count: a repository appears when its first blob or manifest lands.
    fn is_empty(&self) -> bool {
        self.blobs.is_empty() && self.manifests.is_empty()
    }
}

/// A manifest as pushed, the subject it names (for the referrers index)
/// and the blobs it references (for garbage collection).
#[derive(Debug, Clone)]
pub(crate) struct StoredManifest {
    pub(crate) manifest: Manifest,
    pub(crate) subject: Option<Digest>,
    pub(crate) blobs: Vec<Digest>,
}

/// A chunked upload in progress.
#[derive(Debug)]
pub(crate) struct Upload {
    /// The repository the upload belongs to.
    pub(crate) repo: RepoName,
    /// The bytes received, in order.
    pub(crate) data: Chunks,
    /// When the upload last received bytes (or was opened).
    pub(crate) touched: Instant,
    /// A sha256 of every byte of `data`, while no writer handle holds it
    /// (a handle takes it to hash its writes beside their receiving, and
    /// puts it back when it closes or commits); `None` once lost, and the
    /// commit then hashes the data.
    pub(crate) hasher: Option<Hasher>,
}

impl State {
    /// The repository, or `NAME_UNKNOWN`.
    pub(crate) fn repo(&self, name: &RepoName) -> Result<&Repo> {
        self.repos
            .get(name)
            .ok_or_else(|| Error::name_unknown(name))
    }

    /// The repository for changing, or `NAME_UNKNOWN`.
    pub(crate) fn repo_mut(&mut self, name: &RepoName) -> Result<&mut Repo> {
        self.repos
            .get_mut(name)
            .ok_or_else(|| Error::name_unknown(name))
    }

    /// The repository, created empty if it does not exist yet.
    pub(crate) fn repo_or_create(&mut self, name: &RepoName) -> &mut Repo {
        self.repos.entry(name.clone()).or_default()
    }

    /// The bytes of a blob the repository links.
    pub(crate) fn blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobData> {
        let linked = self.repo(repo)?.blobs.contains_key(digest);
        match self.blobs.get(digest) {
            Some(blob) if linked => Ok(blob.data.clone()),
            _ => Err(Error::blob_unknown(repo, digest)),
        }
    }

    /// Links a blob into a repository, storing `data` if no repository
    /// holds the blob yet. Linking a blob twice only renews its link time.
    pub(crate) fn link_blob(&mut self, repo: &RepoName, digest: &Digest, data: BlobData) {
        let now = Instant::now();
        let newly_linked = self
            .repo_or_create(repo)
            .blobs
            .insert(digest.clone(), now)
            .is_none();
        let stored = self
            .blobs
            .entry(digest.clone())
            .or_insert(StoredBlob { data, links: 0 });
        if newly_linked {
            stored.links += 1;
        }
    }

    /// Unlinks a blob from a repository; the bytes go when no repository
    /// links them any more, and then their length is returned.
    pub(crate) fn unlink_blob(&mut self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        if self.repo_mut(repo)?.blobs.remove(digest).is_none() {
            return Err(Error::blob_unknown(repo, digest));
        }
        let mut freed = None;
        if let Some(stored) = self.blobs.get_mut(digest) {
            stored.links = stored.links.saturating_sub(1);
            if stored.links == 0 {
                freed = self.blobs.remove(digest).map(|b| b.data.len());
            }
        }
        self.prune(repo);
        Ok(freed)
    }

    /// Forgets a repository that no longer holds anything.
    pub(crate) fn prune(&mut self, repo: &RepoName) {
        if self.repos.get(repo).is_some_and(Repo::is_empty) {
            self.repos.remove(repo);
        }
    }
}
