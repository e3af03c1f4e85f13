//! The mirror over in-memory upstreams behind a counting wrapper: what
//! reaches the upstream, and what clients get, when things are cached,
//! concurrent, stale, offline or corrupt.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::testkit::{ImageOptions, build_image, push_image};
use oci_core::{
    BlobReader, Descriptor, Digest, Error, ErrorCode, Manifest, Registry, RepoName, Result, Tag,
};
use oci_mem::MemRegistry;
use oci_mirror::Mirror;
use tokio::sync::watch;

/// An upstream that counts the calls reaching it and can be switched
/// off (500s) for all calls or some, rate limited (429s), made to corrupt
/// blobs, or to hold blob bodies and tag checks until released.
struct Upstream {
    inner: MemRegistry,
    calls: Mutex<HashMap<&'static str, usize>>,
    offline: AtomicBool,
    /// Calls that fail as if the upstream were down.
    failing: Mutex<Vec<&'static str>>,
    limited: AtomicBool,
    corrupt: AtomicBool,
    /// Corrupt bytes come unchecked, as `ocidist serve`'s upstream clients
    /// send them (the cache being the check).
    unverified: AtomicBool,
    hold: watch::Sender<bool>,
}

impl Upstream {
    fn new() -> Arc<Upstream> {
        Arc::new(Upstream {
            inner: MemRegistry::new(),
            calls: Mutex::default(),
            offline: AtomicBool::new(false),
            failing: Mutex::default(),
            limited: AtomicBool::new(false),
            corrupt: AtomicBool::new(false),
            unverified: AtomicBool::new(false),
            hold: watch::channel(false).0,
        })
    }

    fn count(&self, call: &'static str) -> Result<()> {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
        if self.offline.load(Ordering::SeqCst) || self.failing.lock().unwrap().contains(&call) {
            return Err(Error::internal("upstream down"));
        }
        if self.limited.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::TooManyRequests, "slow down")
                .with_retry_after(Duration::from_secs(7)));
        }
        Ok(())
    }

    fn calls(&self, call: &str) -> usize {
        self.calls.lock().unwrap().get(call).copied().unwrap_or(0)
    }

    fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

#[oci_core::async_trait]
impl Registry for Upstream {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(&self.inner)
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.count("get_blob")?;
        let mut reader = self.inner.get_blob(repo, digest).await?;
        if self.corrupt.load(Ordering::SeqCst) {
            let mut bytes = reader.bytes().await?.to_vec();
            bytes[0] ^= 0xff;
            reader = self.inner.get_blob(repo, digest).await?;
            // Wrong bytes, checked as every registry's stream is (as
            // oci-client checks what a server sends).
            let wrong = oci_core::registry::bytes_stream(bytes.into(), 1000);
            let size = Some(reader.descriptor.size);
            reader.stream = if self.unverified.load(Ordering::SeqCst) {
                wrong
            } else {
                oci_core::VerifyStream::new(wrong, digest.clone(), size).boxed()
            };
        }
        let mut hold = self.hold.subscribe();
        let held = futures::stream::once(async move {
            let _ = hold.wait_for(|held| !held).await;
            futures::stream::empty()
        })
        .flatten();
        reader.stream = held.chain(reader.stream).boxed();
        Ok(reader)
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.count("resolve_blob")?;
        self.inner.resolve_blob(repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.count("get_manifest")?;
        self.inner.get_manifest(repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.count("get_tag")?;
        self.inner.get_tag(repo, tag).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.count("resolve_tag")?;
        let _ = self.hold.subscribe().wait_for(|held| !held).await;
        self.inner.resolve_tag(repo, tag).await
    }
}

fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn tag(s: &str) -> Tag {
    s.parse().unwrap()
}

/// A mirror of `docker.io` (the default) over `up`, caching in memory.
fn mirror(up: &Arc<Upstream>, freshness: Duration) -> (Mirror, Arc<MemRegistry>) {
    let cache = Arc::new(MemRegistry::new());
    (mirror_over(up, cache.clone(), freshness), cache)
}

/// A mirror of `docker.io` (the default) over `up`, caching in `cache`.
fn mirror_over(up: &Arc<Upstream>, cache: Arc<MemRegistry>, freshness: Duration) -> Mirror {
    Mirror::builder(cache)
        .upstream("docker.io", up.clone())
        .default_upstream("docker.io")
        .tag_freshness(freshness)
        .build()
        .unwrap()
}

/// Pulls an image by tag through `registry`: the manifest and every blob,
/// checked against the manifest.
async fn pull(registry: &dyn Registry, repo: &RepoName, t: &Tag) -> Result<Manifest> {
    let manifest = registry.get_tag(repo, t).await?;
    let oci_core::ParsedManifest::Image(image) = manifest.parse()? else {
        panic!("an image");
    };
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        let bytes = registry.get_blob(repo, &blob.digest).await?.bytes().await?;
        assert_eq!(Digest::sha256(&bytes), blob.digest);
    }
    Ok(manifest)
}

#[tokio::test]
async fn a_second_pull_reaches_the_upstream_not_at_all() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));

    let first = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(first, image.manifest);
    assert_eq!((up.calls("get_tag"), up.calls("get_blob")), (1, 3));
    up.reset();
    let second = pull(&mirror, &repo, &tag("3.20")).await.unwrap();
    assert_eq!(second.bytes, image.manifest.bytes);
    assert!(up.calls.lock().unwrap().is_empty(), "{:?}", up.calls);
    let stats = mirror.stats("docker.io").unwrap();
    assert_eq!((stats.misses, stats.hits), (4, 4));
    let sizes: u64 = image.layers.iter().map(|l| l.size).sum::<u64>()
        + image.config.size
        + image.manifest.bytes.len() as u64;
    assert_eq!(stats.upstream_bytes, sizes);
}

#[tokio::test]
async fn concurrent_pulls_of_an_uncached_blob_fetch_it_once() {
    let up = Upstream::new();
    let repo = name("library/big");
    let image = build_image(&ImageOptions {
        layers: 1,
        layer_size: 8 << 20,
        ..ImageOptions::default()
    });
    image.push(up.as_ref(), &repo, &[tag("v1")]).await;
    let (mirror, cache) = mirror(&up, Duration::from_secs(3600));
    let mirror = Arc::new(mirror);
    let layer = image.layers[0].digest.clone();

    up.hold.send_replace(true);
    let pulls: Vec<_> = (0..20)
        .map(|_| {
            let (mirror, repo, layer) = (mirror.clone(), repo.clone(), layer.clone());
            tokio::spawn(async move { mirror.get_blob(&repo, &layer).await?.bytes().await })
        })
        .collect();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    up.hold.send_replace(false);
    for pull in pulls {
        assert_eq!(pull.await.unwrap().unwrap(), image.layer_bytes[0]);
    }
    assert_eq!(up.calls("get_blob"), 1);
    let cached = cache.get_blob(&name("docker.io/library/big"), &layer).await;
    assert_eq!(cached.unwrap().bytes().await.unwrap(), image.layer_bytes[0]);
}

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

#[tokio::test]
async fn corrupt_upstream_bytes_never_reach_the_cache() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, cache) = mirror(&up, Duration::from_secs(3600));
    let layer = &image.layers[0].digest;

    up.corrupt.store(true, Ordering::SeqCst);
    let err = mirror
        .get_blob(&repo, layer)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(
        err.is(ErrorCode::DigestInvalid) || err.is(ErrorCode::SizeInvalid),
        "{err}"
    );
    // The cache is written beside the client; wait for its verdict.
    let cache_repo = name("docker.io/library/alpine");
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let missing = cache.resolve_blob(&cache_repo, layer).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    up.corrupt.store(false, Ordering::SeqCst);
    let bytes = mirror
        .get_blob(&repo, layer)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, image.layer_bytes[0]);
    assert_eq!(up.calls("get_blob"), 2);
}

#[tokio::test]
async fn unchecked_corrupt_upstream_bytes_fail_the_client_before_its_last_chunk() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, cache) = mirror(&up, Duration::from_secs(3600));
    let layer = &image.layers[0];

    up.corrupt.store(true, Ordering::SeqCst);
    up.unverified.store(true, Ordering::SeqCst);
    let stream = mirror.get_blob(&repo, &layer.digest).await.unwrap().stream;
    let (received, err) = cut_short(stream).await;
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    assert!(received < layer.size, "{received} of {} bytes", layer.size);
    let missing = cache
        .resolve_blob(&name("docker.io/library/alpine"), &layer.digest)
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    up.corrupt.store(false, Ordering::SeqCst);
    let bytes = mirror
        .get_blob(&repo, &layer.digest)
        .await
        .unwrap()
        .bytes()
        .await;
    assert_eq!(bytes.unwrap(), image.layer_bytes[0]);
}

#[tokio::test]
async fn upstreams_are_kept_apart_and_only_those_configured_are_reached() {
    let docker = Upstream::new();
    let quay = Upstream::new();
    let repo = name("library/alpine");
    let a = push_image(docker.as_ref(), &repo, Some(&tag("3.20"))).await;
    let b = push_image(quay.as_ref(), &repo, Some(&tag("3.20"))).await;
    let cache = Arc::new(MemRegistry::new());
    let mirror = Mirror::builder(cache.clone())
        .upstream("docker.io", docker.clone())
        .upstream("quay.io:8443", quay.clone())
        .default_upstream("docker.io")
        .build()
        .unwrap();

    let at_docker = repo.in_namespace("docker.io").unwrap();
    let at_quay = repo.in_namespace("quay.io:8443").unwrap();
    let from_docker = mirror.get_tag(&at_docker, &tag("3.20")).await;
    assert_eq!(from_docker.unwrap(), a.manifest);
    let from_quay = mirror.get_tag(&at_quay, &tag("3.20")).await;
    assert_eq!(from_quay.unwrap(), b.manifest);
    // The default upstream for a name without a host; its hub form.
    assert_eq!(
        mirror.get_tag(&name("alpine"), &tag("3.20")).await.unwrap(),
        a.manifest
    );
    let listed = oci_core::registry::collect_list(cache.repositories(&Default::default()));
    let listed: Vec<String> = listed
        .await
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        listed,
        ["docker.io/library/alpine", "quay.io_8443/library/alpine"]
    );

    let elsewhere = repo.in_namespace("evil.example").unwrap();
    let err = mirror.get_tag(&elsewhere, &tag("3.20")).await.unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
}

#[tokio::test]
async fn any_upstream_connects_on_first_use() {
    let up = Upstream::new();
    let repo = name("team/app");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let opened = Arc::new(Mutex::new(Vec::<String>::new()));
    let (up2, opened2) = (up.clone(), opened.clone());
    let mirror = Mirror::builder(Arc::new(MemRegistry::new()))
        .any_upstream(Arc::new(move |host: &str| {
            opened2.lock().unwrap().push(host.to_owned());
            Ok(up2.clone() as Arc<dyn Registry>)
        }))
        .build()
        .unwrap();
    let qualified = repo.in_namespace("registry.example:5000").unwrap();
    assert_eq!(
        pull(&mirror, &qualified, &tag("v1")).await.unwrap(),
        image.manifest
    );
    assert_eq!(*opened.lock().unwrap(), ["registry.example:5000"]);
    let err = mirror.get_tag(&repo, &tag("v1")).await.unwrap_err();
    assert!(err.is(ErrorCode::NameUnknown), "{err}");
}

#[tokio::test]
async fn the_mirror_is_read_only() {
    let up = Upstream::new();
    let (mirror, _) = mirror(&up, Duration::ZERO);
    let repo = name("library/alpine");
    let data = Bytes::from_static(b"x");
    let body = oci_core::registry::bytes_stream(data.clone(), 1);
    let err = mirror
        .push_blob(&repo, &Digest::sha256(&data), None, body)
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Denied));
    assert!(
        mirror
            .push_blob_chunked(&repo)
            .await
            .err()
            .unwrap()
            .is(ErrorCode::Denied)
    );
    let m = build_image(&ImageOptions::default()).manifest;
    assert!(
        mirror
            .push_manifest(&repo, &m, &[])
            .await
            .unwrap_err()
            .is(ErrorCode::Denied)
    );
    assert!(
        mirror
            .delete_tag(&repo, &tag("x"))
            .await
            .unwrap_err()
            .is(ErrorCode::Denied)
    );
}

#[tokio::test]
async fn a_range_of_an_uncached_blob_caches_the_whole_blob_once() {
    let up = Upstream::new();
    let repo = name("library/big");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    let layer = &image.layers[0].digest;
    let ranges = [(0, 99), (100, 511), (512, 1023)];
    for (start, end) in ranges {
        let range = oci_core::RangeRequest::bounded(start, end);
        let part = mirror.get_blob_range(&repo, layer, range).await.unwrap();
        let part = part.bytes().await.unwrap();
        assert_eq!(
            part,
            image.layer_bytes[0].slice(start as usize..=end as usize)
        );
    }
    assert_eq!(up.calls("get_blob"), 1);
    assert!(up.calls("get_blob_range") == 0);
}

/// An operator's hit count counts answers, not refusals: a range past a
/// cached blob's end is refused, and is no hit.
#[tokio::test]
async fn a_refused_range_of_a_cached_blob_is_not_counted_as_a_hit() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    pull(&mirror, &repo, &tag("v1")).await.unwrap();
    let before = mirror.stats("docker.io").unwrap();
    let layer = &image.layers[0];

    let past_the_end = oci_core::RangeRequest::bounded(layer.size + 10, layer.size + 20);
    let refused = mirror
        .get_blob_range(&repo, &layer.digest, past_the_end)
        .await;
    assert!(refused.is_err());
    let whole = oci_core::RangeRequest::bounded(0, layer.size - 1);
    mirror
        .get_blob_range(&repo, &layer.digest, whole)
        .await
        .unwrap();

    let after = mirror.stats("docker.io").unwrap();
    assert_eq!(
        after.hits,
        before.hits + 1,
        "only the answered range is a hit"
    );
    assert_eq!(up.calls("get_blob"), 3, "all from the cache");
}

#[tokio::test]
async fn a_range_to_the_end_of_an_uncached_blob_streams_as_it_arrives() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("3.20"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    let [first, second] = [&image.layers[0], &image.layers[1]];

    // `bytes=0-`, as `ocidist pull` asks: the bytes come from the one
    // fetch as they arrive, and a corrupt blob fails at its end, as the
    // whole blob's stream does.
    up.corrupt.store(true, Ordering::SeqCst);
    up.unverified.store(true, Ordering::SeqCst);
    let whole = oci_core::RangeRequest::from(0);
    let reader = mirror.get_blob_range(&repo, &first.digest, whole).await;
    let (received, err) = cut_short(reader.unwrap().stream).await;
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    assert!(received > 0 && received < first.size, "{received} bytes");
    // A range that ends before the blob does is served only once the
    // whole blob verified, so it is never a part of a corrupt blob.
    let part = oci_core::RangeRequest::bounded(0, 99);
    assert!(
        mirror
            .get_blob_range(&repo, &second.digest, part)
            .await
            .is_err()
    );

    up.corrupt.store(false, Ordering::SeqCst);
    up.reset();
    let rest = oci_core::RangeRequest::from(24);
    let reader = mirror
        .get_blob_range(&repo, &first.digest, rest)
        .await
        .unwrap();
    assert_eq!(
        reader.range.map(|r| (r.start, r.end)),
        Some((24, first.size - 1))
    );
    assert_eq!(
        reader.bytes().await.unwrap(),
        image.layer_bytes[0].slice(24..)
    );
    let reader = mirror
        .get_blob_range(&repo, &first.digest, whole)
        .await
        .unwrap();
    assert_eq!(reader.bytes().await.unwrap(), image.layer_bytes[0]);
    assert_eq!(up.calls("get_blob"), 1);
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

/// Reads a stream that must fail before its end: the bytes received first
/// and the error.
async fn cut_short(mut stream: oci_core::BlobStream) -> (u64, oci_core::Error) {
    let mut received = 0;
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => received += chunk.len() as u64,
            Some(Err(e)) => return (received, e),
            None => panic!("the corrupt blob ended as if complete"),
        }
    }
}
