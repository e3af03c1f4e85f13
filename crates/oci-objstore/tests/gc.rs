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
    // file:// pushes fsync every object: a collection (grace 0) every 20
    // ms overlapped every attempt of a push and refused it each time.
    let (images, failures, runs) =
        common::gc_beside_pushes(regs, std::time::Duration::from_millis(150)).await;
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
/// repository in the catalog for ever: a collection removes it.
#[tokio::test]
async fn gc_removes_the_index_entry_an_interrupted_push_left() {
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
    common::stray_index_entry_is_collected(&reg, &raw, "").await;
}
