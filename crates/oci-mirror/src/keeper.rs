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
mod tests {
    use std::pin::pin;
    use std::task::Poll;

    use super::*;
    use oci_core::testkit;
    use oci_core::{Descriptor, media};
    use tokio::sync::Notify;

    /// A store that holds the push of one manifest, once asked to, until
    /// released: the point where one task waits while another goes on.
    struct HoldPush {
        inner: Arc<oci_mem::MemRegistry>,
        /// The manifest whose next push is held.
        hold: Mutex<Option<Digest>>,
        /// Told when that push is held.
        held: Notify,
        /// Lets it go on.
        release: Notify,
    }

    impl HoldPush {
        fn new(inner: Arc<oci_mem::MemRegistry>) -> HoldPush {
            HoldPush {
                inner,
                hold: Mutex::new(None),
                held: Notify::new(),
                release: Notify::new(),
            }
        }
    }

    #[async_trait::async_trait]
    impl Registry for HoldPush {
        fn forward_to(&self) -> Option<&dyn Registry> {
            Some(self.inner.as_ref())
        }

        async fn push_manifest(
            &self,
            repo: &RepoName,
            m: &Manifest,
            tags: &[Tag],
        ) -> Result<Descriptor> {
            let hold = {
                let mut hold = self.hold.lock().unwrap();
                hold.take_if(|d| d == m.digest()).is_some()
            };
            if hold {
                self.held.notify_one();
                self.release.notified().await;
            }
            self.inner.push_manifest(repo, m, tags).await
        }
    }

    fn repo() -> RepoName {
        "example.com/app".parse().unwrap()
    }

    #[tokio::test]
    async fn waiting_manifests_become_real_as_their_blobs_land_children_first() {
        let store = Arc::new(oci_mem::MemRegistry::new());
        let keeper = Keeper::new(store.clone());
        let tag: Tag = "v1".parse().unwrap();
        // An index of one child, so that pulling the child completes it.
        let index = testkit::index_of(
            media::OCI_INDEX,
            vec![(
                testkit::build_image(&testkit::ImageOptions::default()),
                "linux/amd64".parse().unwrap(),
            )],
        );
        let child = &index.children[0];
        keeper
            .keep(&repo(), &index.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        keeper.keep(&repo(), &child.manifest, &[]).await.unwrap();
        for (d, bytes) in std::iter::once((&child.config, &child.config_bytes))
            .chain(child.layers.iter().zip(&child.layer_bytes))
        {
            testkit::push_bytes(store.as_ref(), &repo(), &d.media_type, bytes).await;
            keeper.landed(&repo()).await;
        }
        let tagged = store.get_tag(&repo(), &tag).await.unwrap();
        assert_eq!(tagged, index.manifest, "the tag names the real index");
        assert!(store.get_manifest(&repo(), child.digest()).await.is_ok());
        assert!(keeper.waiting().is_empty());
    }

    /// A tag, and two images it names in turn: `old`, then `new`.
    fn a_tag_and_two_images() -> (Tag, testkit::Image, testkit::Image) {
        let old = testkit::build_image(&testkit::ImageOptions::default());
        let new = testkit::build_image(&testkit::ImageOptions {
            layers: 1,
            ..Default::default()
        });
        ("v1".parse().unwrap(), old, new)
    }

    #[tokio::test]
    async fn a_tag_moved_on_stays_moved_when_its_old_manifest_becomes_real() {
        let store = Arc::new(oci_mem::MemRegistry::new());
        let keeper = Keeper::new(store.clone());
        let (tag, old, new) = a_tag_and_two_images();
        keeper
            .keep(&repo(), &old.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        new.push_blobs(store.as_ref(), &repo()).await;
        let real = keeper
            .keep(&repo(), &new.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        assert!(real, "its blobs were there");
        old.push_blobs(store.as_ref(), &repo()).await;
        keeper.landed(&repo()).await;
        assert!(store.get_manifest(&repo(), old.digest()).await.is_ok());
        let tagged = store.get_tag(&repo(), &tag).await.unwrap();
        assert_eq!(tagged, new.manifest);
    }

    /// The race itself: a waiting manifest is being made real (its push
    /// held in the store) when its tag moves on to another manifest. The
    /// tag must end where it moved to, whichever push the store finishes
    /// first.
    #[tokio::test]
    async fn a_tag_moved_on_while_its_old_manifest_is_made_real_stays_moved() {
        let mem = Arc::new(oci_mem::MemRegistry::new());
        let store = Arc::new(HoldPush::new(mem.clone()));
        let keeper = Keeper::new(store.clone());
        let (tag, old, new) = a_tag_and_two_images();
        keeper
            .keep(&repo(), &old.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        old.push_blobs(mem.as_ref(), &repo()).await;
        new.push_blobs(mem.as_ref(), &repo()).await;
        *store.hold.lock().unwrap() = Some(old.digest().clone());
        let repo = repo();

        // `old` is being made real, with the tag it waited with, and is
        // held in the store's push.
        let mut making_real = pin!(keeper.landed(&repo));
        tokio::select! {
            () = &mut making_real => panic!("the push of the waiting manifest was not held"),
            () = store.held.notified() => {}
        }
        // Meanwhile the tag moves on to `new`, as far as it can while
        // `old`'s push is held: the store answers at once, so this one
        // poll either finishes the move or leaves it waiting for the
        // push of `old` to end.
        let mut moving_on = pin!(keeper.keep(&repo, &new.manifest, std::slice::from_ref(&tag)));
        let moved = futures::poll!(&mut moving_on);
        store.release.notify_one();
        let ((), real) = tokio::join!(making_real, async {
            match moved {
                Poll::Ready(real) => real,
                Poll::Pending => moving_on.await,
            }
        });
        assert!(real.unwrap(), "its blobs were there");

        assert!(mem.get_manifest(&repo, old.digest()).await.is_ok());
        let tagged = mem.get_tag(&repo, &tag).await.unwrap();
        assert_eq!(tagged, new.manifest, "the tag is where it moved to");
    }

    /// A request that read a tag (a recorded manifest, `old`) and then
    /// makes `old` real with it, after the tag moved on meanwhile, leaves
    /// the tag where it moved to.
    #[tokio::test]
    async fn a_tag_moved_on_is_not_moved_back_by_a_request_that_saw_it_before() {
        let store = Arc::new(oci_mem::MemRegistry::new());
        let (tag, old, new) = a_tag_and_two_images();
        // Recorded by an earlier run: nothing waits in this one.
        Keeper::new(store.clone())
            .keep(&repo(), &old.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        let keeper = Keeper::new(store.clone());
        old.push_blobs(store.as_ref(), &repo()).await;
        new.push_blobs(store.as_ref(), &repo()).await;
        let (seen, real) = kept_tag(store.as_ref(), &repo(), &tag)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&seen, real), (&old.manifest.descriptor, None));

        keeper
            .keep(&repo(), &new.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();
        keeper
            .revisit(&repo(), &old.manifest, std::slice::from_ref(&tag))
            .await
            .unwrap();

        assert!(store.get_manifest(&repo(), old.digest()).await.is_ok());
        let tagged = store.get_tag(&repo(), &tag).await.unwrap();
        assert_eq!(tagged, new.manifest, "the tag is where it moved to");
    }
}
