//! [`Keeper`]: keeps the manifests a mirror fetched in its cache store,
//! real or recorded (`record.rs` says what the two forms are), and makes
//! the recorded ones real as their references land, children before their
//! index. Tags move in the order they were seen: every push with tags,
//! and every pass making manifests real, holds one lock, and a manifest
//! made real carries only the tags that still name it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use oci_core::registry::bytes_stream;
use oci_core::{Digest, Error, ErrorCode, Manifest, Registry, RepoName, Result, Tag};

use crate::record::{Kept, keep_record, kept_tag};

/// The manifest bytes waiting to be made real, across all repositories,
/// beyond which a manifest is not remembered (it is made real when next
/// requested instead).
const MAX_WAITING_BYTES: usize = 64 << 20;

/// A manifest kept as a record, waiting for its references, with the tags
/// it is to carry once real.
struct Waiting {
    manifest: Manifest,
    tags: Vec<Tag>,
}

/// Keeps fetched manifests in the cache store, making them real manifests
/// as soon as the store accepts them.
pub(crate) struct Keeper {
    cache: Arc<dyn Registry>,
    /// Manifests waiting to be made real, by cache repository.
    waiting: Mutex<HashMap<RepoName, Vec<Waiting>>>,
    /// Held while manifests are pushed with tags or made real: tags move
    /// in the order they were seen, and a pass of [`Keeper::landed`] that
    /// started before a blob was committed is followed by one that sees it.
    order: tokio::sync::Mutex<()>,
}

impl Keeper {
    pub(crate) fn new(cache: Arc<dyn Registry>) -> Keeper {
        Keeper {
            cache,
            waiting: Mutex::new(HashMap::new()),
            order: tokio::sync::Mutex::new(()),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<RepoName, Vec<Waiting>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a manifest fetched upstream (already checked against its
    /// digest) in `repo`, pointing `tags` at it: real if the store takes
    /// it now (then `true`), else recorded and waiting.
    pub(crate) async fn keep(&self, repo: &RepoName, m: &Manifest, tags: &[Tag]) -> Result<bool> {
        let _order = self.order.lock().await;
        self.retag(repo, m.digest(), tags);
        match self.cache.push_manifest(repo, m, tags).await {
            Ok(_) => Ok(true),
            Err(e) => self.record(repo, m, tags, e).await.map(|()| false),
        }
    }

    /// Keeps `m` as a record, after the store refused it as itself
    /// (`refused`): waiting for its references if those were missing.
    async fn record(
        &self,
        repo: &RepoName,
        m: &Manifest,
        tags: &[Tag],
        refused: Error,
    ) -> Result<()> {
        if refused.is(ErrorCode::ManifestBlobUnknown) {
            tracing::debug!(target: "oci_mirror", repository = %repo, digest = %m.digest(), "manifest waits for its references");
        } else {
            tracing::warn!(target: "oci_mirror", repository = %repo, digest = %m.digest(), error = %refused, "the cache does not take this manifest as a manifest; keeping it as a record");
        }
        let size = m.bytes.len() as u64;
        self.cache
            .push_blob(
                repo,
                m.digest(),
                Some(size),
                bytes_stream(m.bytes.clone(), 1 << 20),
            )
            .await?;
        keep_record(self.cache.as_ref(), repo, tags, &m.descriptor).await?;
        if refused.is(ErrorCode::ManifestBlobUnknown) {
            self.wait(repo, m, tags);
        }
        Ok(())
    }

    /// Makes a manifest found recorded in the cache real if the store now
    /// takes it (its references arrived while no one was waiting, as
    /// after a restart), else lets it wait; those of `tags` (seen
    /// pointing at it) that still do point at it then name it real.
    pub(crate) async fn revisit(&self, repo: &RepoName, m: &Manifest, tags: &[Tag]) -> Result<()> {
        if tags.is_empty() && self.is_waiting(repo, m.digest()) {
            return Ok(());
        }
        let order = self.order.lock().await;
        // A tag seen before this lock may have moved on since.
        let mut still = Vec::with_capacity(tags.len());
        for tag in tags {
            if let Some((now, _)) = kept_tag(self.cache.as_ref(), repo, tag).await?
                && now.digest == *m.digest()
            {
                still.push(tag.clone());
            }
        }
        let tags = still.as_slice();
        self.retag(repo, m.digest(), tags);
        if self.is_waiting(repo, m.digest()) {
            // It carries the tags when made real.
            self.wait(repo, m, tags);
            return Ok(());
        }
        match self.cache.push_manifest(repo, m, tags).await {
            Ok(_) => {
                drop(order);
                self.landed(repo).await;
            }
            Err(e) if e.is(ErrorCode::ManifestBlobUnknown) => self.wait(repo, m, tags),
            Err(e) => {
                tracing::debug!(target: "oci_mirror", repository = %repo, digest = %m.digest(), error = %e, "the cache does not take this manifest as a manifest")
            }
        }
        Ok(())
    }

    /// After content arrived in `repo`: makes real every waiting manifest
    /// the store now takes, until none more is taken (a child made real
    /// may complete its index).
    pub(crate) async fn landed(&self, repo: &RepoName) {
        let _order = self.order.lock().await;
        loop {
            let digests: Vec<Digest> = match self.waiting().get(repo) {
                Some(list) => list.iter().map(|w| w.manifest.digest().clone()).collect(),
                None => return,
            };
            let mut progress = false;
            for digest in digests {
                // Its tags as they are now: a tag moved since it was seen
                // is no longer among them.
                let Some((m, tags)) = self.waiting().get(repo).and_then(|list| {
                    list.iter()
                        .find(|w| *w.manifest.digest() == digest)
                        .map(|w| (w.manifest.clone(), w.tags.clone()))
                }) else {
                    continue;
                };
                match self.cache.push_manifest(repo, &m, &tags).await {
                    Ok(_) => {
                        progress = true;
                        let mut waiting = self.waiting();
                        if let Some(list) = waiting.get_mut(repo) {
                            list.retain(|w| *w.manifest.digest() != digest);
                            if list.is_empty() {
                                waiting.remove(repo);
                            }
                        }
                        tracing::debug!(target: "oci_mirror", repository = %repo, %digest, "manifest made real");
                    }
                    Err(e) if e.is(ErrorCode::ManifestBlobUnknown) => {}
                    Err(e) => {
                        tracing::warn!(target: "oci_mirror", repository = %repo, %digest, error = %e, "making a cached manifest real failed")
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Whether the manifest `digest` waits in `repo`.
    fn is_waiting(&self, repo: &RepoName, digest: &Digest) -> bool {
        self.waiting()
            .get(repo)
            .is_some_and(|w| w.iter().any(|w| w.manifest.digest() == digest))
    }

    /// Remembers `m` as waiting in `repo`, with `tags` (added to those it
    /// waits with if it waits already), unless too much waits already.
    fn wait(&self, repo: &RepoName, m: &Manifest, tags: &[Tag]) {
        let mut waiting = self.waiting();
        let held: usize = waiting
            .values()
            .flatten()
            .map(|w| w.manifest.bytes.len())
            .sum();
        let list = waiting.entry(repo.clone()).or_default();
        if let Some(w) = list.iter_mut().find(|w| w.manifest.digest() == m.digest()) {
            for t in tags {
                if !w.tags.contains(t) {
                    w.tags.push(t.clone());
                }
            }
            return;
        }
        if held + m.bytes.len() > MAX_WAITING_BYTES {
            tracing::debug!(target: "oci_mirror", repository = %repo, digest = %m.digest(), "too many manifests wait; this one is made real when next requested");
            return;
        }
        list.push(Waiting {
            manifest: m.clone(),
            tags: tags.to_vec(),
        });
    }

    /// `tags` of `repo` now point at `digest`: no waiting manifest of
    /// another digest is to take them when made real.
    fn retag(&self, repo: &RepoName, digest: &Digest, tags: &[Tag]) {
        if tags.is_empty() {
            return;
        }
        if let Some(list) = self.waiting().get_mut(repo) {
            for w in list.iter_mut().filter(|w| w.manifest.digest() != digest) {
                w.tags.retain(|t| !tags.contains(t));
            }
        }
    }

    /// Points `tag` at a manifest the cache has (`kept`): the manifest
    /// itself if real, else its record.
    pub(crate) async fn tag(&self, repo: &RepoName, kept: &Kept, tag: &Tag) -> Result<()> {
        let tags = std::slice::from_ref(tag);
        let _order = self.order.lock().await;
        self.retag(repo, kept.manifest.digest(), tags);
        if kept.real {
            self.cache.push_manifest(repo, &kept.manifest, tags).await?;
            return Ok(());
        }
        keep_record(self.cache.as_ref(), repo, tags, &kept.manifest.descriptor).await?;
        if self.is_waiting(repo, kept.manifest.digest()) {
            self.wait(repo, &kept.manifest, tags);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
