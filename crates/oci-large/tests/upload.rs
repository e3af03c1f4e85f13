//! Chunked uploads with per-chunk retries over a registry whose writes
//! break halfway.

mod support;

use std::time::Duration;

use oci_core::registry::bytes_stream;
use oci_core::testkit::forwarding::{Recorder, lost_calls};
use oci_core::testkit::must;
use oci_core::testkit::random_bytes;
use oci_core::{Digest, ErrorCode, RepoName};
use oci_large::{UploadOptions, upload, upload_file};
use support::{Counters, Quirk, Quirky, assert_code};

fn options() -> UploadOptions {
    UploadOptions {
        chunk: 100_000,
        retries: 2,
        retry_delay: Duration::ZERO,
    }
}

fn repo() -> RepoName {
    "big/upload"
        .parse()
        .unwrap_or_else(|e| panic!("repository name: {e}"))
}

async fn stored(reg: &Quirky, digest: &Digest) -> bytes::Bytes {
    let reader = must(reg.inner().get_blob(&repo(), digest).await, "get_blob");
    must(reader.bytes().await, "read the stored blob")
}

#[tokio::test]
async fn an_upload_arrives_whole_in_chunks() {
    let reg = Quirky::new(Quirk::None);
    let data = random_bytes(1_234_567);
    let digest = Digest::sha256(&data);
    let body = bytes_stream(data.clone(), 7000);
    let d = upload(reg.as_ref(), &repo(), body, &digest, &options())
        .await
        .unwrap();
    assert_eq!(d.size, data.len() as u64);
    assert!(stored(&reg, &digest).await == data);
    assert_eq!(
        Counters::get(&reg.counters.writes),
        13,
        "13 chunks of 100 000"
    );
}

#[tokio::test]
async fn broken_writes_resume_where_the_store_stands() {
    let reg = Quirky::new(Quirk::BreakEveryNthWrite(3));
    let data = random_bytes(1_000_000);
    let digest = Digest::sha256(&data);
    let body = bytes_stream(data.clone(), 4096);
    upload(reg.as_ref(), &repo(), body, &digest, &options())
        .await
        .unwrap();
    assert!(
        stored(&reg, &digest).await == data,
        "the stored bytes differ"
    );
    assert!(
        Counters::get(&reg.counters.resumes) >= 3,
        "resumed after breaks"
    );
}

#[tokio::test]
async fn writes_that_keep_breaking_fail_the_upload() {
    let reg = Quirky::new(Quirk::BreakEveryNthWrite(1));
    let data = random_bytes(300_000);
    let digest = Digest::sha256(&data);
    let body = bytes_stream(data, 4096);
    let result = upload(reg.as_ref(), &repo(), body, &digest, &options()).await;
    assert_code(result, ErrorCode::Unknown);
    let resumes = Counters::get(&reg.counters.resumes);
    assert_eq!(resumes, 3, "two retries, then one resume to cancel");
}

#[tokio::test]
async fn a_wrong_digest_is_refused_at_commit() {
    let reg = Quirky::new(Quirk::None);
    let data = random_bytes(250_000);
    let wrong = Digest::sha256(b"not this");
    let body = bytes_stream(data, 4096);
    let result = upload(reg.as_ref(), &repo(), body, &wrong, &options()).await;
    assert_code(result, ErrorCode::DigestInvalid);
}

#[tokio::test]
async fn a_file_uploads_with_retries() {
    let reg = Quirky::new(Quirk::BreakEveryNthWrite(4));
    let data = random_bytes(777_777);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &data).unwrap();
    let digest = Digest::sha256(&data);
    upload_file(reg.as_ref(), &repo(), &path, &digest, &options())
        .await
        .unwrap();
    assert!(
        stored(&reg, &digest).await == data,
        "the stored bytes differ"
    );
}

#[tokio::test]
async fn the_quirky_double_keeps_what_its_quirk_does_not_touch() {
    // Its writers used to drop the store's minimum chunk size.
    let reg = Quirky::over(std::sync::Arc::new(Recorder::new()), Quirk::None);
    assert_eq!(lost_calls(reg.as_ref()).await, Vec::<&str>::new());
}
