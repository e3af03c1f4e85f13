//! The shared behavioural suite, run against a fresh `MemRegistry` per
//! behaviour, and all at once against one shared registry.

use oci_core::testkit;
use oci_mem::MemRegistry;

/// One test per behaviour, so that a failure names it.
macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                testkit::$name(&MemRegistry::new()).await;
            }
        )*
    };
}

behaviours!(
    push_pull_blob,
    blob_digest_mismatch,
    blob_size_mismatch,
    blob_range,
    chunked_upload,
    chunked_upload_resume,
    chunked_upload_cancel,
    upload_unknown_id,
    chunked_commit_wrong_digest,
    mount_blob,
    manifest_push_pull,
    manifest_multi_tag,
    manifest_missing_blobs,
    manifest_invalid,
    index_children,
    manifest_sha512,
    referrers,
    tag_pagination,
    catalog,
    delete_blob,
    delete_manifest,
    delete_tag,
    retag,
    unknown_things,
);

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
