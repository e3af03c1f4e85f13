//! Garbage collection while the store is in use: from this process, and
//! beside it (as `ocidist gc` does beside a running server), with pushes,
//! deletes and re-pushes running meanwhile and no grace period at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oci_core::testkit::{ImageOptions, build_image, push_image, tag};
use oci_core::{ErrorCode, Registry, RepoName};
use oci_layout::{GcOptions, GcReport, LayoutRegistry};

fn repo(name: &str) -> RepoName {
    name.parse().expect("repository name")
}

/// A grace period barely longer than a push takes from blob to manifest
/// here: the collections beside the pushes take blobs of deleted images
/// and of pushes that were slow.
fn short_grace() -> GcOptions {
    GcOptions {
        grace: Duration::from_secs(2),
        ..GcOptions::default()
    }
}

/// No grace: only the locks protect what pushes are doing.
fn no_grace() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    }
}

/// Pushes `rounds` images to `repo`, each tagged, deleting and pushing
/// again every other one (its blobs referenced anew). A manifest push
/// refused because a collection took its blobs first is retried with the
/// blobs pushed again, as a client would. Returns the images kept.
async fn pusher(
    reg: Arc<LayoutRegistry>,
    repo: RepoName,
    rounds: usize,
) -> Vec<oci_core::testkit::Image> {
    let mut kept = Vec::new();
    for round in 0..rounds {
        let image = build_image(&ImageOptions {
            layer_size: 20_000,
            ..ImageOptions::default()
        });
        let tags = [tag(&format!("r{round}"))];
        let times = if round % 2 == 0 { 2 } else { 1 };
        for time in 0..times {
            if time == 1 {
                reg.delete_manifest(&repo, image.digest())
                    .await
                    .expect("delete a manifest");
            }
            let mut tries = 0;
            loop {
                image.push_blobs(reg.as_ref(), &repo).await;
                match reg.push_manifest(&repo, &image.manifest, &tags).await {
                    Ok(_) => break,
                    Err(err) if err.is(ErrorCode::ManifestBlobUnknown) && tries < 50 => {
                        tries += 1;
                    }
                    Err(err) => panic!("push manifest to {repo}: {err}"),
                }
            }
        }
        kept.push(image);
    }
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_beside_pushes_never_removes_what_a_manifest_references() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let reg = Arc::new(LayoutRegistry::open(dir.path()).await.unwrap());
    let garbage_repo = repo("gc/garbage");
    let garbage = push_image(reg.as_ref(), &garbage_repo, None).await;
    reg.delete_manifest(&garbage_repo, garbage.digest())
        .await
        .unwrap();

    let pushers: Vec<_> = (0..3)
        .map(|i| tokio::spawn(pusher(reg.clone(), repo(&format!("gc/app{i}")), 12)))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let collector = {
        let (reg, done, root) = (reg.clone(), done.clone(), root.clone());
        tokio::spawn(async move {
            let mut total = GcReport::default();
            let mut runs = 0;
            while !done.load(Ordering::SeqCst) || runs < 2 {
                // Alternately beside the store (another "process": the
                // store's lock is held, so it goes through the file locks)
                // and inside it.
                let report = match runs % 10 {
                    0..=4 => LayoutRegistry::gc_at(&root, &short_grace()).await.unwrap(),
                    5..=8 => reg.gc_with(&short_grace()).await.unwrap(),
                    // Now and then none at all: pushes may then be told a
                    // blob is unknown (and push it again), never lose one
                    // a manifest references.
                    _ => LayoutRegistry::gc_at(&root, &no_grace()).await.unwrap(),
                };
                total.links_removed += report.links_removed;
                total.blobs_removed += report.blobs_removed;
                runs += 1;
                // Pacing, so that pushes get through between the runs
                // without grace.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (total, runs)
        })
    };
    let mut kept = Vec::new();
    for (i, pusher) in pushers.into_iter().enumerate() {
        kept.push((repo(&format!("gc/app{i}")), pusher.await.unwrap()));
    }
    done.store(true, Ordering::SeqCst);
    let (total, runs) = collector.await.unwrap();
    let last = LayoutRegistry::gc_at(&root, &no_grace()).await.unwrap();

    for (repo, images) in &kept {
        for (round, image) in images.iter().enumerate() {
            let got = reg.get_tag(repo, &tag(&format!("r{round}"))).await.unwrap();
            assert_eq!(got.bytes, image.manifest.bytes);
            let blobs = std::iter::once((&image.config, &image.config_bytes))
                .chain(image.layers.iter().zip(&image.layer_bytes));
            for (desc, bytes) in blobs {
                let read = reg.get_blob(repo, &desc.digest).await;
                let read = match read {
                    Ok(reader) => reader.bytes().await,
                    Err(err) => Err(err),
                };
                assert_eq!(
                    read.as_ref().ok(),
                    Some(bytes),
                    "{repo} round {round}: blob {} of an acknowledged manifest ({runs} collections ran)",
                    desc.digest
                );
            }
        }
    }
    // The deleted image's blobs went, in one of the runs.
    assert!(
        total.blobs_removed + last.blobs_removed >= 3,
        "{total:?} then {last:?}"
    );
    for layer in &garbage.layers {
        assert!(
            reg.resolve_blob(&garbage_repo, &layer.digest)
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn gc_beside_a_running_store_keeps_young_blobs_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let app = repo("gc/young");
    let image = push_image(&reg, &app, Some(&tag("v1"))).await;
    reg.delete_manifest(&app, image.digest()).await.unwrap();
    let mut writer = reg.push_blob_chunked(&app).await.unwrap();
    writer
        .write(bytes::Bytes::from_static(b"half"))
        .await
        .unwrap();
    let id = writer.id().to_owned();
    writer.close().await.unwrap();

    // A server holds the store; a collection beside it with a grace
    // period spares what was just written.
    assert!(LayoutRegistry::in_use(dir.path()));
    let hour = GcOptions {
        grace: Duration::from_secs(3_600),
        ..GcOptions::default()
    };
    let report = LayoutRegistry::gc_at(dir.path(), &hour).await.unwrap();
    assert_eq!(report, GcReport::default());
    for layer in &image.layers {
        reg.resolve_blob(&app, &layer.digest).await.unwrap();
    }
    reg.push_blob_chunked_resume(&app, &id).await.unwrap();

    // Without grace the unreferenced blobs go; the store keeps serving.
    let report = LayoutRegistry::gc_at(dir.path(), &no_grace())
        .await
        .unwrap();
    assert!(report.blobs_removed >= 3, "{report:?}");
    for layer in &image.layers {
        assert!(reg.resolve_blob(&app, &layer.digest).await.is_err());
    }
    image.push(&reg, &app, &[tag("v1")]).await;
    assert_eq!(
        reg.get_tag(&app, &tag("v1")).await.unwrap().bytes,
        image.manifest.bytes
    );
}
