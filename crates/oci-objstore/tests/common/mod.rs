//! Scenarios every backend runs (local directory, the S3 server): online
//! garbage collection beside pushes, and reads of a corrupt object.

// Helpers outside #[test] functions: a failed step is a failed test.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use oci_core::registry::bytes_stream;
use oci_core::testkit::{self, Image, ImageOptions, build_image, fresh_repo, random_bytes};
use oci_core::{Digest, Registry, RepoName, Result, Tag};
use oci_objstore::{GcOptions, ObjRegistry};

/// Pushes an image's blobs and manifest, failing (not panicking) as a
/// client would see it.
pub async fn try_push(reg: &dyn Registry, repo: &RepoName, image: &Image, tag: &Tag) -> Result<()> {
    let blobs = std::iter::once((&image.config, &image.config_bytes))
        .chain(image.layers.iter().zip(&image.layer_bytes));
    for (descriptor, bytes) in blobs {
        reg.push_blob(
            repo,
            &descriptor.digest,
            Some(bytes.len() as u64),
            bytes_stream(bytes.clone(), 1000),
        )
        .await?;
    }
    reg.push_manifest(repo, &image.manifest, std::slice::from_ref(tag))
        .await?;
    Ok(())
}

/// Reads an image back through its tag, every byte verified.
pub async fn pull_intact(reg: &dyn Registry, repo: &RepoName, image: &Image, tag: &Tag) {
    let manifest = reg
        .get_tag(repo, tag)
        .await
        .unwrap_or_else(|e| panic!("{repo}:{tag}: {e}"));
    assert_eq!(manifest.digest(), image.digest(), "{repo}:{tag} manifest");
    let blobs = std::iter::once((&image.config, &image.config_bytes))
        .chain(image.layers.iter().zip(&image.layer_bytes));
    for (descriptor, bytes) in blobs {
        let read = reg
            .get_blob(repo, &descriptor.digest)
            .await
            .unwrap_or_else(|e| panic!("{repo} blob {}: {e}", descriptor.digest))
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{repo} blob {} read: {e}", descriptor.digest));
        assert!(read == *bytes, "{repo} blob {} differs", descriptor.digest);
    }
}

/// A collection removes what no manifest references (once past the grace
/// period) and keeps the rest.
pub async fn gc_removes_only_garbage(reg: &ObjRegistry) {
    let repo = fresh_repo("gc-garbage");
    let tag = testkit::tag("kept");
    let image = build_image(&ImageOptions::default());
    try_push(reg, &repo, &image, &tag).await.unwrap();
    let garbage = random_bytes(3000);
    let garbage_digest = Digest::sha256(&garbage);
    reg.push_blob(&repo, &garbage_digest, None, bytes_stream(garbage, 100))
        .await
        .unwrap();
    let mut idle = reg.push_blob_chunked(&repo).await.unwrap();
    idle.write(random_bytes(10)).await.unwrap();

    // Within the grace period, nothing goes.
    let patient = GcOptions {
        grace: Duration::from_secs(3600),
        upload_age: Duration::from_secs(3600),
    };
    let report = reg.gc_with(&patient).await.unwrap();
    assert_eq!(report.links_removed, 0, "{report:?}");
    reg.resolve_blob(&repo, &garbage_digest).await.unwrap();

    let now = GcOptions {
        grace: Duration::ZERO,
        upload_age: Duration::ZERO,
    };
    let report = reg.gc_with(&now).await.unwrap();
    assert!(
        report.links_removed >= 1 && report.blobs_removed >= 1,
        "{report:?}"
    );
    assert!(report.uploads_removed >= 1, "{report:?}");
    assert!(
        reg.resolve_blob(&repo, &garbage_digest).await.is_err(),
        "garbage unlinked"
    );
    assert!(
        reg.push_blob_chunked_resume(&repo, idle.id())
            .await
            .is_err(),
        "idle upload removed"
    );
    pull_intact(reg, &repo, &image, &tag).await;
}

/// Clients push images, retrying what fails, while collections with no
/// grace period run back to back: every acknowledged image reads back
/// whole afterwards. Returns (images, failed attempts, collections).
pub async fn gc_beside_pushes(
    url_or_regs: Vec<ObjRegistry>,
    pause: Duration,
) -> (usize, usize, usize) {
    let clients = 6;
    let images_each = 4;
    let gc_reg = url_or_regs[0].clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let options = GcOptions {
                grace: Duration::ZERO,
                upload_age: Duration::from_secs(3600),
            };
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                gc_reg.gc_with(&options).await.unwrap();
                runs += 1;
                tokio::time::sleep(pause).await;
            }
            runs
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let reg = url_or_regs[client % url_or_regs.len()].clone();
        tasks.spawn(async move {
            let repo = fresh_repo("gc-beside-pushes");
            let mut pushed = Vec::new();
            let mut failures = 0;
            for n in 0..images_each {
                let tag = testkit::tag(&format!("v{n}"));
                let image = build_image(&ImageOptions {
                    layers: 2,
                    layer_size: 2000,
                    ..ImageOptions::default()
                });
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match try_push(&reg, &repo, &image, &tag).await {
                        Ok(()) => break,
                        Err(e) if attempts < 50 => {
                            failures += 1;
                            tracing::debug!(error = %e, "push failed beside gc; retried");
                        }
                        Err(e) => panic!("push kept failing beside gc: {e}"),
                    }
                }
                pushed.push((repo.clone(), image, tag));
            }
            (pushed, failures)
        });
    }
    let mut all = Vec::new();
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        let (pushed, failed) = done.unwrap();
        all.extend(pushed);
        failures += failed;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = gc.await.unwrap();
    // One more collection after the pushes: it must keep everything.
    url_or_regs[0]
        .gc_with(&GcOptions {
            grace: Duration::ZERO,
            upload_age: Duration::from_secs(3600),
        })
        .await
        .unwrap();
    let reader = &url_or_regs[url_or_regs.len() - 1];
    for (repo, image, tag) in &all {
        pull_intact(reader, repo, image, tag).await;
    }
    (all.len(), failures, runs + 1)
}

/// A blob object changed behind the store's back never reads as a clean,
/// complete answer: the stream fails before its last byte.
pub async fn corrupt_blob_is_cut(reg: &ObjRegistry, raw: &Arc<dyn ObjectStore>, prefix: &str) {
    for size in [100usize, 3 << 20] {
        let repo = fresh_repo("corrupt");
        let data = random_bytes(size);
        let digest = Digest::sha256(&data);
        reg.push_blob(&repo, &digest, None, bytes_stream(data.clone(), 64 * 1024))
            .await
            .unwrap();
        // The object this registry wrote is served as it is (by its ETag,
        // without hashing it again) ...
        let mut served = Vec::new();
        let mut stream = reg.get_blob(&repo, &digest).await.unwrap().stream;
        while let Some(chunk) = stream.next().await {
            served.extend_from_slice(&chunk.unwrap());
        }
        assert!(
            served == data.as_ref(),
            "the {size}-byte blob read back differs"
        );
        // ... until the object changes behind its back (a new ETag).
        let mut bad = data.to_vec();
        bad[size / 2] ^= 0xff;
        let key = Path::from(format!("{prefix}blobs/sha256/{}/data", digest.hex()));
        raw.put(&key, Bytes::from(bad).into()).await.unwrap();

        let reader = reg.get_blob(&repo, &digest).await.unwrap();
        let mut stream = reader.stream;
        let mut received = 0usize;
        let mut failed = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => received += chunk.len(),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "a corrupt {size}-byte blob read without an error");
        assert!(
            received < size,
            "all {size} bytes of a corrupt blob were served"
        );
        let range = reg
            .get_blob_range(&repo, &digest, oci_core::RangeRequest::bounded(0, 9))
            .await;
        assert!(range.is_err(), "a range of a corrupt blob was served");
    }
}

/// A blob index entry with no link behind it, as a push interrupted
/// between the two leaves, keeps its repository in the catalog until a
/// collection past the grace period removes it; a pushed image stays.
pub async fn stray_index_entry_is_collected(
    reg: &ObjRegistry,
    raw: &Arc<dyn ObjectStore>,
    prefix: &str,
) {
    use oci_core::registry::{ListOptions, collect_list};
    let kept = fresh_repo("gc-kept");
    let image = build_image(&ImageOptions::default());
    let tag = testkit::tag("v1");
    try_push(reg, &kept, &image, &tag).await.unwrap();
    // What the interrupted push wrote: the index entry, no link, no bytes.
    let stray: RepoName = "interrupted/app".parse().unwrap();
    let never = Digest::sha256(b"never linked");
    let entry = Path::from(format!(
        "{prefix}repos/interrupted!app/blobs/sha256-{}",
        never.hex()
    ));
    raw.put(&entry, Bytes::new().into()).await.unwrap();
    let catalog = || async {
        collect_list(reg.repositories(&ListOptions::all()))
            .await
            .unwrap()
    };
    assert!(catalog().await.contains(&stray), "the stray entry shows");

    // Debris of a push, as an idle upload is: kept while younger than
    // upload_age even with no grace at all (pushes running beside a
    // collection with grace 0 write entries just before their links).
    let patient = GcOptions {
        grace: Duration::ZERO,
        upload_age: Duration::from_secs(3600),
    };
    reg.gc_with(&patient).await.unwrap();
    assert!(
        catalog().await.contains(&stray),
        "kept while younger than upload_age"
    );

    let now = GcOptions {
        grace: Duration::ZERO,
        upload_age: Duration::ZERO,
    };
    let report = reg.gc_with(&now).await.unwrap();
    let listed = catalog().await;
    assert!(!listed.contains(&stray), "{listed:?} after {report:?}");
    assert!(listed.contains(&kept), "{listed:?}");
    assert!(raw.head(&entry).await.is_err(), "the entry is gone");
    pull_intact(reg, &kept, &image, &tag).await;
}
