//! Blobs: fetched once, streamed while cached, never cached corrupt;
//! ranges of them.

use super::*;

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

/// A blob's HEAD is an answer like its GET: a miss when the upstream
/// answers it, a hit when the cache does.
#[tokio::test]
async fn blob_heads_are_counted_as_hits_and_misses() {
    let up = Upstream::new();
    let repo = name("library/alpine");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let (mirror, _) = mirror(&up, Duration::from_secs(3600));
    let layer = &image.layers[0];
    let counts = || {
        let s = mirror.stats("docker.io").unwrap();
        (s.hits, s.misses)
    };

    let head = mirror.resolve_blob(&repo, &layer.digest).await.unwrap();
    assert_eq!(head.size, layer.size);
    assert_eq!(counts(), (0, 1));
    let got = mirror.get_blob(&repo, &layer.digest).await.unwrap();
    got.bytes().await.unwrap();
    assert_eq!(counts(), (0, 2));
    mirror.resolve_blob(&repo, &layer.digest).await.unwrap();
    assert_eq!(counts(), (1, 2));
    assert_eq!(up.calls("resolve_blob"), 1);
}
