//! An upstream that fails: what the cache serves, and what a client
//! gets when nothing cached can stand in.

use super::*;

#[tokio::test]
async fn an_offline_upstream_leaves_the_cache_served_and_the_rest_failing() {
    let up = Upstream::new();
    let cached = name("library/alpine");
    let uncached = name("library/debian");
    push_image(up.as_ref(), &cached, Some(&tag("3.20"))).await;
    let debian = push_image(up.as_ref(), &uncached, Some(&tag("12"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    let before = pull(&mirror, &cached, &tag("3.20")).await.unwrap();

    up.offline.store(true, Ordering::SeqCst);
    assert_eq!(pull(&mirror, &cached, &tag("3.20")).await.unwrap(), before);
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 1);
    let err = pull(&mirror, &uncached, &tag("12")).await.unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    assert!(err.message().contains("upstream docker.io failed"), "{err}");
    assert!(err.detail().is_none(), "{err:?}");
    let layer = &debian.layers[0].digest;
    let err = mirror.resolve_blob(&uncached, layer).await.unwrap_err();
    assert_eq!(err.status(), 502, "a HEAD too: {err}");
    let tags = oci_core::registry::collect_list(mirror.tags(&cached, &Default::default()));
    assert_eq!(tags.await.unwrap(), [tag("3.20")]);

    up.offline.store(false, Ordering::SeqCst);
    pull(&mirror, &uncached, &tag("12")).await.unwrap();
}

/// The HEAD says the tag moved, but the upstream fails before the new
/// manifest arrives: the cached tag is served, as for a failed HEAD.
#[tokio::test]
async fn a_tag_moved_upstream_that_fails_midway_is_served_stale() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    let before = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;

    up.failing.lock().unwrap().push("get_manifest");
    let served = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(served, before);
    assert_eq!((up.calls("resolve_tag"), up.calls("get_manifest")), (1, 1));
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 1);

    up.failing.lock().unwrap().clear();
    let after = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_ne!(
        after, before,
        "the move is followed once the upstream is back"
    );
}

#[tokio::test]
async fn a_rate_limit_passes_back_only_when_nothing_is_cached() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    push_image(up.as_ref(), &repo, Some(&tag("3.21"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();

    up.limited.store(true, Ordering::SeqCst);
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    let err = mirror.get_tag(&repo, &tag("3.21")).await.unwrap_err();
    assert!(err.is(ErrorCode::TooManyRequests), "{err}");
    // The upstream's Retry-After goes back with it.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}
