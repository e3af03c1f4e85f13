//! An upstream that fails: what the cache serves, and what a client
//! gets when nothing cached can stand in.

use oci_core::registry::collect_list;
use oci_core::testkit::{Artifact, PushedImage, build_artifact};

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

/// What a client of the mirror meets when nothing is cached and the
/// upstream answers every call with one error: from a tag listing,
/// referrers, a tag and a blob.
async fn every_read(mirror: &Mirror, repo: &RepoName, image: &PushedImage) -> Vec<Error> {
    let tags = collect_list(mirror.tags(repo, &Default::default())).await;
    let referrers = collect_list(mirror.referrers(repo, image.digest(), None)).await;
    let tagged = mirror.get_tag(repo, &tag("3.20")).await;
    let blob = mirror.get_blob(repo, &image.layers[0].digest).await;
    vec![
        tags.unwrap_err(),
        referrers.unwrap_err(),
        tagged.unwrap_err(),
        blob.err().unwrap(),
    ]
}

/// A refusal of the mirror's credentials is the mirror's own `DENIED`
/// naming the upstream, from every read: a `401` would have the client
/// log in to the mirror, and the upstream's text (its login hints) and
/// detail are the upstream's business.
#[tokio::test]
async fn an_upstreams_refusal_is_the_mirrors_own_denial_from_every_read() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    for refusal in [ErrorCode::Unauthorized, ErrorCode::Denied] {
        let refused = Error::new(refusal, "log in at https://auth.upstream.example/token")
            .with_detail(serde_json::json!({ "realm": "upstream" }));
        *up.answer.lock().unwrap() = Some(refused);
        for err in every_read(&mirror, &repo, &image).await {
            assert!(err.is(ErrorCode::Denied), "{refusal}: {err}");
            assert_eq!(err.status(), 403, "{err}");
            assert!(err.message().contains("upstream docker.io"), "{err}");
            assert!(!err.message().contains("auth.upstream"), "{err}");
            assert!(err.detail().is_none(), "{err:?}");
        }
    }
}

#[tokio::test]
async fn an_upstreams_real_answers_reach_the_client_as_they_are() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);
    *up.answer.lock().unwrap() = Some(Error::name_unknown(&repo));
    for err in every_read(&mirror, &repo, &image).await {
        assert!(err.is(ErrorCode::NameUnknown), "{err}");
    }
}

/// A tag listing that fails on a later page fails as one failing on its
/// first does.
#[tokio::test]
async fn a_tag_listing_failing_midway_is_mapped_as_at_its_start() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    push_image(up.as_ref(), &repo, Some(&tag("3.21"))).await;
    let (mirror, _) = mirror(&up, Duration::ZERO);

    let refused = Error::new(ErrorCode::Unauthorized, "log in at auth.upstream.example");
    *up.later_page.lock().unwrap() = Some(refused);
    let err = collect_list(mirror.tags(&repo, &Default::default())).await;
    let err = err.unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
    assert!(!err.message().contains("auth.upstream"), "{err}");

    *up.later_page.lock().unwrap() = Some(Error::internal("upstream down"));
    let err = collect_list(mirror.tags(&repo, &Default::default())).await;
    let err = err.unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    assert!(err.message().contains("upstream docker.io failed"), "{err}");
}

/// A tag listing the cache answers because the upstream is down is
/// counted (and logged) stale, as a tag is.
#[tokio::test]
async fn a_tag_listing_from_the_cache_is_counted_stale() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let untagged = name("library/busybox");
    let by_digest = push_image(up.as_ref(), &untagged, None).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    let pulled = mirror.get_manifest(&untagged, by_digest.digest()).await;
    assert_eq!(pulled.unwrap().descriptor, *by_digest.descriptor());
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 0);

    up.offline.store(true, Ordering::SeqCst);
    let tags = collect_list(mirror.tags(&repo, &Default::default())).await;
    assert_eq!(tags.unwrap(), [tag("3.20")]);
    assert_eq!(up.calls("tags"), 1);
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 1);
    // A repository the cache does not have, or holds no tag of, is the
    // upstream's failure (not an empty list).
    for repo in [name("library/debian"), untagged] {
        let err = collect_list(mirror.tags(&repo, &Default::default())).await;
        let err = err.unwrap_err();
        assert_eq!(err.status(), 502, "{repo}: {err}");
    }
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 1);
}

/// Fetches an artifact through `registry` as a client does: its manifest
/// by digest and its blobs.
async fn fetch_artifact(registry: &dyn Registry, repo: &RepoName, artifact: &Artifact) {
    let manifest = registry
        .get_manifest(repo, artifact.digest())
        .await
        .unwrap();
    assert_eq!(manifest, artifact.manifest);
    let oci_core::ParsedManifest::Image(image) = manifest.parse().unwrap() else {
        panic!("an artifact is an image manifest");
    };
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        let bytes = registry.get_blob(repo, &blob.digest).await.unwrap();
        assert_eq!(Digest::sha256(&bytes.bytes().await.unwrap()), blob.digest);
    }
}

/// Referrers the cache holds are served, with the client's filter, and
/// counted stale, when the upstream is down or rate limited; for a
/// subject the cache holds nothing for, the upstream's failure (its 429
/// with its Retry-After) is the answer.
#[tokio::test]
async fn referrers_the_cache_holds_are_served_when_the_upstream_fails() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let other = push_image(up.as_ref(), &repo, Some(&tag("3.21"))).await;
    let sig = build_artifact(image.descriptor(), "application/vnd.example.sig");
    let sbom = build_artifact(image.descriptor(), "application/vnd.example.sbom");
    let unseen = build_artifact(other.descriptor(), "application/vnd.example.sig");
    for artifact in [&sig, &sbom, &unseen] {
        artifact.push(up.as_ref(), &repo).await;
    }
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    for artifact in [&sig, &sbom] {
        fetch_artifact(&mirror, &repo, artifact).await;
    }
    let online = collect_list(mirror.referrers(&repo, image.digest(), None)).await;
    let online = online.unwrap();
    assert_eq!(online.len(), 2);
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 0);

    for (n, failure) in ["offline", "limited"].into_iter().enumerate() {
        up.offline.store(failure == "offline", Ordering::SeqCst);
        up.limited.store(failure == "limited", Ordering::SeqCst);
        let all = collect_list(mirror.referrers(&repo, image.digest(), None)).await;
        assert_eq!(all.unwrap(), online, "{failure}");
        let sigs = mirror.referrers(&repo, image.digest(), Some("application/vnd.example.sig"));
        let sigs = collect_list(sigs).await.unwrap();
        let sigs: Vec<_> = sigs.iter().map(|d| &d.digest).collect();
        assert_eq!(sigs, [sig.digest()], "{failure}: the client's filter");
        let stale = mirror.stats("docker.io").unwrap().stale;
        assert_eq!(stale, 2 * (n as u64 + 1), "{failure}");

        // Nothing cached refers to `other`: the upstream's failure.
        let err = collect_list(mirror.referrers(&repo, other.digest(), None)).await;
        let err = err.unwrap_err();
        if failure == "offline" {
            assert_eq!(err.status(), 502, "{err}");
            assert!(err.message().contains("upstream docker.io failed"), "{err}");
        } else {
            assert!(err.is(ErrorCode::TooManyRequests), "{err}");
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
        assert_eq!(mirror.stats("docker.io").unwrap().stale, stale);
    }
}

/// A cache whose listings fail (as a disk can) while its reads work.
struct BrokenLists {
    inner: Arc<MemRegistry>,
}

#[oci_core::async_trait]
impl Registry for BrokenLists {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    fn tags(&self, _: &RepoName, _: &ListOptions) -> ListStream<Tag> {
        oci_core::registry::failed_list(Error::internal("reading /var/cache/tags failed"))
    }

    fn referrers(&self, _: &RepoName, _: &Digest, _: Option<&str>) -> ListStream<Descriptor> {
        oci_core::registry::failed_list(Error::internal("reading /var/cache/referrers failed"))
    }
}

/// When the upstream is down and the cache cannot list either, the client
/// learns that the upstream is down (not a detail of the cache), and
/// nothing is counted stale.
#[tokio::test]
async fn a_cache_failing_to_list_for_a_down_upstream_is_the_upstreams_failure() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let cache = Arc::new(MemRegistry::new());
    let mirror = Mirror::builder(Arc::new(BrokenLists {
        inner: cache.clone(),
    }))
    .upstream("docker.io", up.clone())
    .default_upstream("docker.io")
    .build()
    .unwrap();
    pull(&mirror, &repo, &tag("3.20")).await.unwrap();

    up.offline.store(true, Ordering::SeqCst);
    let tags = collect_list(mirror.tags(&repo, &Default::default())).await;
    let referrers = collect_list(mirror.referrers(&repo, image.digest(), None)).await;
    for err in [tags.unwrap_err(), referrers.unwrap_err()] {
        assert_eq!(err.status(), 502, "{err}");
        assert!(err.message().contains("upstream docker.io failed"), "{err}");
        assert!(!err.message().contains("/var/cache"), "{err}");
    }
    assert_eq!(mirror.stats("docker.io").unwrap().stale, 0);
}
