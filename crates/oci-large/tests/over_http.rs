//! Downloads and uploads through `oci-client` against `oci-server`: range
//! requests honoured end to end, chunked uploads resumed by URL ids.

mod support;

use std::sync::Arc;
use std::time::Duration;

use oci_client::{Client, ClientOptions, RetryConfig};
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::{push_bytes, random_bytes};
use oci_core::{Descriptor, Digest, ErrorCode, Registry, RepoName, media};
use oci_large::{DownloadOptions, UploadOptions, download, download_to_file, upload};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use support::{Counters, Quirk, Quirky, assert_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_goes_up_and_comes_down_in_pieces() {
    let server = TestServer::start(Arc::new(MemRegistry::new())).await;
    let client = Client::new(&server.addr().to_string(), ClientOptions::default()).unwrap();
    let reg: Arc<dyn Registry> = Arc::new(client);
    let repo: RepoName = "big/http".parse().unwrap();
    let data = random_bytes(3_000_000);
    let digest = Digest::sha256(&data);

    let up = UploadOptions {
        chunk: 500_000,
        ..UploadOptions::default()
    };
    upload(
        reg.as_ref(),
        &repo,
        bytes_stream(data.clone(), 65536),
        &digest,
        &up,
    )
    .await
    .unwrap();

    let descriptor = Descriptor::new(media::OCI_LAYER, digest, data.len() as u64);
    let down = DownloadOptions {
        initial_chunk: 256 * 1024,
        min_chunk: 64 * 1024,
        max_chunk: 512 * 1024,
        retry_delay: Duration::ZERO,
        ..DownloadOptions::default()
    };
    let pieces = collect_list(download(
        Arc::clone(&reg),
        repo.clone(),
        descriptor.clone(),
        down.clone(),
    ))
    .await
    .unwrap();
    assert!(pieces.len() > 1, "read as several ranges");
    assert!(pieces.concat() == data, "the downloaded bytes differ");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    download_to_file(reg, &repo, &descriptor, &path, down)
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "the file differs");
}

/// A client retrying each request `max_retries` times, without waiting.
fn client_retrying(server: &TestServer, max_retries: u32) -> Arc<dyn Registry> {
    let retry = RetryConfig {
        max_retries,
        initial_backoff: Duration::ZERO,
        ..RetryConfig::default()
    };
    let options = ClientOptions::default().anonymous().retry(retry);
    Arc::new(Client::new(&server.addr().to_string(), options).expect("client"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_registry_is_retried_by_the_client_alone() {
    let quirky = Quirky::new(Quirk::RangesUnavailable);
    let repo: RepoName = "big/busy".parse().unwrap();
    let data = random_bytes(300_000);
    let d = push_bytes(quirky.inner(), &repo, media::OCI_LAYER, &data).await;
    let server = TestServer::start(quirky.clone()).await;
    let reg = client_retrying(&server, 2);
    let options = DownloadOptions {
        retries: 3,
        retry_delay: Duration::ZERO,
        ..DownloadOptions::default()
    };
    let result = collect_list(download(reg, repo, d, options)).await;
    assert_code(result, ErrorCode::Unknown);
    assert_eq!(
        Counters::get(&quirky.counters.ranges),
        3,
        "the client's 1 try + 2 retries, not repeated by each of the chunk's 1 + 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_upload_is_retried_by_the_client_alone() {
    let quirky = Quirky::new(Quirk::WritesUnavailable);
    let repo: RepoName = "big/busy".parse().unwrap();
    let data = random_bytes(300_000);
    let digest = Digest::sha256(&data);
    let server = TestServer::start(quirky.clone()).await;
    let reg = client_retrying(&server, 2);
    let options = UploadOptions {
        chunk: 100_000,
        retries: 3,
        retry_delay: Duration::ZERO,
    };
    let result = upload(
        reg.as_ref(),
        &repo,
        bytes_stream(data, 65536),
        &digest,
        &options,
    )
    .await;
    assert_code(result, ErrorCode::Unknown);
    assert_eq!(
        Counters::get(&quirky.counters.writes),
        3,
        "the client's 1 try + 2 retries of the first chunk, not repeated by each of the chunk's 1 + 3"
    );
}
