//! The keeper's order: tags, records made real and pushes held midway.

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
