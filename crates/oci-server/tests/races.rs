//! The PATCH/commit race over HTTP, 1,000 times on each store: a second
//! PATCH of an upload racing the `PUT ?digest=` commit of its first.
//! Whatever the interleaving, a digest answered 201 serves exactly the
//! bytes committed (an acknowledged blob was once corrupted for good this
//! way on the disk store), and no answer is a 5xx or names a server path.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use oci_core::Registry;
use oci_server::TestServer;
use oci_testbed::load::patch_commit_race;

const ROUNDS: usize = 1_000;

async fn race(registry: Arc<dyn Registry>, root: &str) {
    let server = TestServer::start(registry).await;
    let outcome = patch_commit_race(server.addr(), ROUNDS, root).await;
    println!(
        "{ROUNDS} races: {} committed, {} refused, {} corrupted",
        outcome.committed,
        outcome.refused,
        outcome.corrupted.len()
    );
    assert!(outcome.corrupted.is_empty(), "{:?}", outcome.corrupted);
    assert!(outcome.bad_answers.is_empty(), "{:?}", outcome.bad_answers);
    assert_eq!(outcome.committed + outcome.refused, ROUNDS);
    assert!(outcome.committed > 0, "no commit won a race");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_racing_the_commit_never_corrupts_a_blob_in_memory() {
    race(Arc::new(oci_mem::MemRegistry::new()), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_racing_the_commit_never_corrupts_a_blob_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let registry = oci_layout::LayoutRegistry::open(dir.path()).await.unwrap();
    race(Arc::new(registry), &dir.path().display().to_string()).await;
}
