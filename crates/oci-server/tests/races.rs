//! The PATCH/commit race over HTTP, 1,000 times on the in-memory store: a
//! second PATCH of an upload racing the `PUT ?digest=` commit of its
//! first. Whatever the interleaving, a digest answered 201 serves exactly
//! the bytes committed, and no answer is a 5xx. (The disk store, where an
//! acknowledged blob was once corrupted for good this way, runs the race
//! 1,000 times in process and 200 times over HTTP in
//! `oci-layout/tests/hostile.rs`, checking its files too.)

use std::sync::Arc;

use oci_server::TestServer;
use oci_testbed::load::patch_commit_race;

const ROUNDS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_racing_the_commit_never_corrupts_a_blob_in_memory() {
    let server = TestServer::start(Arc::new(oci_mem::MemRegistry::new())).await;
    let outcome = patch_commit_race(server.addr(), ROUNDS, "").await;
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
