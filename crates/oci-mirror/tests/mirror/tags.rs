//! Tags: fresh, revalidated, moved, checked once, and after a restart.

use super::*;

#[tokio::test]
async fn a_tag_past_its_freshness_costs_one_head_and_follows_a_change() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    up.reset();

    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(up.calls("resolve_tag"), 1);
    assert_eq!(up.calls.lock().unwrap().len(), 1, "{:?}", up.calls);
    assert_eq!(mirror.stats("docker.io").unwrap().revalidated, 1);

    up.reset();
    let newer = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let got = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(got, newer.manifest);
    assert_eq!(
        (
            up.calls("resolve_tag"),
            up.calls("get_manifest"),
            up.calls("get_blob")
        ),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn a_fresh_tag_is_served_without_asking() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    mirror.get_tag(&repo, &tag("3.20")).await.unwrap();
    up.reset();
    mirror.resolve_tag(&repo, &tag("3.20")).await.unwrap();
    mirror.get_tag(&repo, &tag("3.20")).await.unwrap();
    assert!(up.calls.lock().unwrap().is_empty(), "{:?}", up.calls);
}

/// A cache whose mirror fetched `library/alpine:3.20` by tag (a manifest
/// that waits for its blobs) and then restarted: the mirror over it now,
/// the cache, and the image.
async fn restarted_with_a_recorded_tag(
    up: &Arc<Upstream>,
) -> (Mirror, Arc<MemRegistry>, oci_core::testkit::PushedImage) {
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (before, cache) = mirror(up, Duration::from_secs(3600));
    before.get_tag(&repo, &tag("3.20")).await.unwrap();
    let after = mirror_over(up, cache.clone(), Duration::from_secs(3600));
    (after, cache, image)
}

/// What the cache's tag names, as the store read directly shows it: once
/// the manifest is real, the manifest itself rather than its record.
async fn cached_tag(cache: &MemRegistry) -> Manifest {
    let cached = name("docker.io/library/alpine");
    cache.get_tag(&cached, &tag("3.20")).await.unwrap()
}

#[tokio::test]
async fn a_pull_after_a_restart_leaves_its_tag_naming_the_real_manifest() {
    let up = Upstream::new();
    let (mirror, cache, image) = restarted_with_a_recorded_tag(&up).await;
    let repo = name("library/alpine");
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(cached_tag(&cache).await, image.manifest);
}

#[tokio::test]
async fn a_tag_comes_to_name_its_manifest_made_real_by_digest() {
    let up = Upstream::new();
    let (mirror, cache, image) = restarted_with_a_recorded_tag(&up).await;
    let repo = name("library/alpine");
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        mirror
            .get_blob(&repo, &blob.digest)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    mirror.get_manifest(&repo, image.digest()).await.unwrap();
    assert_eq!(
        mirror.get_tag(&repo, &tag("3.20")).await.unwrap(),
        image.manifest
    );
    assert_eq!(cached_tag(&cache).await, image.manifest);
}

#[tokio::test]
async fn concurrent_pulls_of_a_stale_tag_check_it_once() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    mirror.get_tag(&repo, &tag("3.20")).await.unwrap();
    up.reset();
    let t = tag("3.20");
    up.hold.send_replace(true);
    let pulls = futures::future::join_all((0..10).map(|_| mirror.get_tag(&repo, &t)));
    let release = async {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        up.hold.send_replace(false);
    };
    let (got, ()) = tokio::join!(pulls, release);
    for got in got {
        assert_eq!(got.unwrap(), image.manifest);
    }
    assert_eq!(up.calls("resolve_tag"), 1);
}
