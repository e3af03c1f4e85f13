//! Online garbage collection and verified reads on the local-filesystem
//! backend (the S3 server runs the same scenarios in `s3.rs`).

// Helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use object_store::ObjectStore;
use oci_objstore::ObjRegistry;

#[tokio::test]
async fn gc_removes_only_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let reg = ObjRegistry::open(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    common::gc_removes_only_garbage(&reg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_beside_pushes_through_two_handles_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let regs = vec![
        ObjRegistry::open(&url).await.unwrap(),
        ObjRegistry::open(&url).await.unwrap(),
    ];
    let (images, failures, runs) =
        common::gc_beside_pushes(regs, std::time::Duration::from_millis(20)).await;
    eprintln!("{images} images pushed beside {runs} collections ({failures} attempts retried)");
    assert!(runs >= 2, "collections ran while pushing");
}

#[tokio::test]
async fn a_corrupt_blob_is_cut_before_its_last_byte() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let reg = ObjRegistry::with_backend(raw.clone(), "local")
        .await
        .unwrap();
    common::corrupt_blob_is_cut(&reg, &raw, "").await;
}

/// A push interrupted between its blob's index entry and the link (a
/// server killed there) leaves the entry behind, which kept its
/// repository in the catalog for ever: a collection removes it once past
/// the grace period, and leaves a pushed image alone.
#[tokio::test]
async fn gc_removes_the_index_entry_an_interrupted_push_left() {
    use object_store::ObjectStoreExt;
    use oci_core::registry::{ListOptions, collect_list};
    use oci_core::testkit::{ImageOptions, build_image, fresh_repo, tag};
    use oci_core::{Digest, Registry, RepoName};
    use oci_objstore::GcOptions;

    let dir = tempfile::tempdir().unwrap();
    // As `file://` opens it: empty directories go with their last object.
    let raw: Arc<dyn ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true),
    );
    let reg = ObjRegistry::with_backend(raw.clone(), "local")
        .await
        .unwrap();
    let kept = fresh_repo("gc-kept");
    let image = build_image(&ImageOptions::default());
    common::try_push(&reg, &kept, &image, &tag("v1"))
        .await
        .unwrap();
    // What the interrupted push wrote: the index entry, no link, no bytes.
    let stray: RepoName = "interrupted/app".parse().unwrap();
    let never = Digest::sha256(b"never linked");
    let entry = format!("repos/interrupted!app/blobs/sha256-{}", never.hex());
    raw.put(&entry.as_str().into(), bytes::Bytes::new().into())
        .await
        .unwrap();
    let catalog = || async {
        collect_list(reg.repositories(&ListOptions::all()))
            .await
            .unwrap()
    };
    assert!(catalog().await.contains(&stray), "the stray entry shows");

    let patient = GcOptions {
        grace: std::time::Duration::from_secs(3600),
        upload_age: std::time::Duration::from_secs(3600),
    };
    reg.gc_with(&patient).await.unwrap();
    assert!(
        catalog().await.contains(&stray),
        "kept within the grace period"
    );

    let now = GcOptions {
        grace: std::time::Duration::ZERO,
        upload_age: std::time::Duration::ZERO,
    };
    let report = reg.gc_with(&now).await.unwrap();
    let listed = catalog().await;
    assert!(!listed.contains(&stray), "{listed:?} after {report:?}");
    assert!(listed.contains(&kept), "{listed:?}");
    assert!(raw.head(&entry.as_str().into()).await.is_err());
    common::pull_intact(&reg, &kept, &image, &tag("v1")).await;
}
