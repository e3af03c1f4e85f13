//! The shared behavioural suite on `object_store`'s in-memory and
//! local-filesystem backends, and everything at once on one bucket
//! through two registry handles (two "servers").

// Helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oci_core::testkit;
use oci_objstore::ObjRegistry;

/// A registry over a fresh local directory, which lives as long as the
/// process (the suite's behaviours each take a new one).
async fn on_disk() -> ObjRegistry {
    let dir = tempfile::tempdir().unwrap().keep();
    ObjRegistry::open(&format!("file://{}", dir.display()))
        .await
        .unwrap()
}

mod memory {
    use super::*;
    oci_core::testkit_tests!(ObjRegistry::open("memory://").await.unwrap());
}

mod local_filesystem {
    use super::*;
    oci_core::testkit_tests!(on_disk().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_behaviour_at_once_through_two_handles_on_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let registry = ObjRegistry::open(&url).await.unwrap();
        tasks.spawn(async move { testkit::run_all(&registry).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn the_backends_report_their_conditional_writes() {
    let memory = ObjRegistry::open("memory://").await.unwrap();
    assert!(memory.conditional().create && memory.conditional().update);
    let disk = on_disk().await;
    assert!(
        disk.conditional().create,
        "local files can be created exclusively"
    );
    assert!(
        !disk.conditional().update,
        "object_store's local backend has no conditional update"
    );
}
