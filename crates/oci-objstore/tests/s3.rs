//! The store on a real S3 server (`s3s-fs` on loopback, installed by
//! `scripts/install-s3s`): the shared testkit, online garbage collection
//! beside pushes, verified reads. A missing server fails these tests with
//! a message naming the install script; nothing is skipped.

// Helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use object_store::ObjectStore;
use oci_core::testkit;
use oci_objstore::{ObjRegistry, StorageUrl};
use oci_testbed::s3::S3Server;

/// One S3 server for this test binary, started on first use.
fn server() -> &'static S3Server {
    static SERVER: std::sync::OnceLock<S3Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| S3Server::start().unwrap_or_else(|e| panic!("{e}")))
}

/// A registry on a fresh prefix of the bucket, the bucket's raw backend
/// (to change objects behind the registry) and the prefix's key start.
async fn fresh_prefix() -> (ObjRegistry, Arc<dyn ObjectStore>, String) {
    let s3 = server();
    let prefix = format!("t{}", testkit::random_hex(2));
    let reg = ObjRegistry::open_with(&s3.url(&prefix), s3.env())
        .await
        .unwrap();
    let bucket: StorageUrl = s3.url("").parse().unwrap();
    let raw: Arc<dyn ObjectStore> = bucket.backend(s3.env()).unwrap();
    (reg, raw, format!("{prefix}/"))
}

/// A registry under a fresh prefix of the server's bucket.
async fn fresh() -> ObjRegistry {
    let s3 = server();
    let url = s3.url(&format!("t{}", testkit::random_hex(2)));
    ObjRegistry::open_with(&url, s3.env()).await.unwrap()
}

oci_core::testkit_tests!(fresh().await);

#[tokio::test]
async fn the_s3_server_honours_conditional_writes() {
    let registry = fresh().await;
    let conditional = registry.conditional();
    assert!(conditional.create && conditional.update, "{conditional:?}");
}

#[tokio::test]
async fn gc_removes_only_garbage() {
    common::gc_removes_only_garbage(&fresh().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_beside_pushes_through_two_servers_loses_nothing() {
    let s3 = server();
    let url = s3.url(&format!("t{}", testkit::random_hex(2)));
    let regs = vec![
        ObjRegistry::open_with(&url, s3.env()).await.unwrap(),
        ObjRegistry::open_with(&url, s3.env()).await.unwrap(),
    ];
    let (images, failures, runs) =
        common::gc_beside_pushes(regs, std::time::Duration::from_millis(500)).await;
    eprintln!("{images} images pushed beside {runs} collections ({failures} attempts retried)");
    assert!(runs >= 2, "collections ran while pushing");
}

#[tokio::test]
async fn a_corrupt_blob_is_cut_before_its_last_byte() {
    let (reg, raw, prefix) = fresh_prefix().await;
    common::corrupt_blob_is_cut(&reg, &raw, &prefix).await;
}

#[tokio::test]
async fn a_large_blob_goes_up_as_a_multipart_upload_and_reads_back_verified() {
    use oci_core::registry::bytes_stream;
    use oci_core::{Digest, Registry};
    let reg = fresh().await;
    let repo = testkit::fresh_repo("large");
    let data = testkit::random_bytes(20 << 20);
    let digest = Digest::sha256(&data);
    reg.push_blob(
        &repo,
        &digest,
        Some(data.len() as u64),
        bytes_stream(data.clone(), 1 << 20),
    )
    .await
    .unwrap();
    let read = reg
        .get_blob(&repo, &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(read == data, "20 MiB read back differ");
    // A wrong digest leaves nothing behind.
    let wrong = Digest::sha256(b"not it");
    assert!(
        reg.push_blob(&repo, &wrong, None, bytes_stream(data, 1 << 20))
            .await
            .is_err()
    );
    assert!(reg.resolve_blob(&repo, &wrong).await.is_err());
}

#[tokio::test]
async fn gc_removes_the_index_entry_an_interrupted_push_left() {
    let (reg, raw, prefix) = fresh_prefix().await;
    common::stray_index_entry_is_collected(&reg, &raw, &prefix).await;
}
