//! The shared behavioural suite, run against a fresh `MemRegistry` per
//! behaviour, and all at once against one shared registry.

use oci_core::testkit;
use oci_mem::MemRegistry;

oci_core::testkit_tests!(MemRegistry::new());

#[tokio::test]
async fn run_all_in_sequence() {
    testkit::run_all(&MemRegistry::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_behaviour_at_once_on_one_registry() {
    let registry = MemRegistry::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let registry = registry.clone();
        tasks.spawn(async move { testkit::run_all(&registry).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}
