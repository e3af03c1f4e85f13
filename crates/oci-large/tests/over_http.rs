//! Downloads and uploads through `oci-client` against `oci-server`: range
//! requests honoured end to end, chunked uploads resumed by URL ids.

use std::sync::Arc;
use std::time::Duration;

use oci_client::{Client, ClientOptions};
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::random_bytes;
use oci_core::{Descriptor, Digest, Registry, RepoName, media};
use oci_large::{DownloadOptions, UploadOptions, download, download_to_file, upload};
use oci_mem::MemRegistry;
use oci_server::TestServer;

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
