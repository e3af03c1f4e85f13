//! The S3 server stopped in the middle of pushes and started again: the
//! requests it breaks fail cleanly with a 503 (which clients retry),
//! nothing half-written is visible afterwards, and an upload continues
//! where its last acknowledged request left it.

// Helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oci_client::{Client, ClientOptions};
use oci_conformance::client::{Client as Raw, with_query};
use oci_core::registry::bytes_stream;
use oci_core::testkit::{ImageOptions, build_image, random_bytes};
use oci_core::{Digest, Registry, RepoName};
use oci_objstore::ObjRegistry;
use oci_testbed::s3::S3Server;

async fn patch(
    raw: &Raw,
    location: &str,
    at: usize,
    piece: &Bytes,
) -> oci_conformance::client::Response {
    raw.patch(location)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .header(
            http::header::CONTENT_RANGE,
            format!("{at}-{}", at + piece.len() - 1),
        )
        .body(piece.clone())
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_across_an_s3_outage_fail_cleanly_and_resume() {
    let mut s3 = S3Server::start().unwrap_or_else(|e| panic!("{e}"));
    let registry = ObjRegistry::open_with(&s3.url("fault"), s3.env())
        .await
        .unwrap();
    let server = oci_server::TestServer::start(Arc::new(registry)).await;
    let raw = Raw::new(&server.url());
    let repo = "fault/app";

    // An upload with one acknowledged piece.
    let data = random_bytes(2 * 1024 * 1024 + 3);
    let (head, tail) = (data.slice(..1024 * 1024), data.slice(1024 * 1024..));
    let started = raw.post(&format!("/v2/{repo}/blobs/uploads/")).send().await;
    started.expect_status(202);
    let first = patch(&raw, started.location(), 0, &head).await;
    first.expect_status(202);
    let location = first.location().to_owned();

    // The S3 server goes away.
    tokio::task::block_in_place(|| s3.stop());
    let broken = patch(&raw, &location, head.len(), &tail).await;
    broken.expect_status(503);
    // The 503 came before the PATCH body was read, so the server closes
    // that connection; the next requests go on a new one rather than race
    // the close on the pooled one.
    let raw = raw.fresh();
    let other = random_bytes(5000);
    let other_digest = Digest::sha256(&other);
    let monolithic = raw
        .post(&with_query(
            &format!("/v2/{repo}/blobs/uploads/"),
            &format!("digest={other_digest}"),
        ))
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(other.clone())
        .send()
        .await;
    monolithic.expect_status(503);
    let raw = raw.fresh();
    let image = build_image(&ImageOptions::default());
    let manifest = raw
        .put(&format!("/v2/{repo}/manifests/during-outage"))
        .header(
            http::header::CONTENT_TYPE,
            image.manifest.media_type().to_owned(),
        )
        .body(image.manifest.bytes.clone())
        .send()
        .await;
    manifest.expect_status(503);
    let raw = raw.fresh();

    // Back: nothing of the failed requests is visible.
    tokio::task::block_in_place(|| s3.restart()).unwrap();
    let status = raw.get(&location).send().await;
    status
        .expect_status(204)
        .expect_header("range", &format!("0-{}", head.len() - 1));
    raw.head(&format!("/v2/{repo}/blobs/{other_digest}"))
        .send()
        .await
        .expect_status(404);
    raw.get(&format!("/v2/{repo}/manifests/during-outage"))
        .send()
        .await
        .expect_status(404);

    // The upload continues where its last acknowledged request left it.
    let resumed = patch(&raw, status.location(), head.len(), &tail).await;
    resumed.expect_status(202);
    let digest = Digest::sha256(&data);
    raw.put(&with_query(resumed.location(), &format!("digest={digest}")))
        .send()
        .await
        .expect_status(201);
    let read = raw.get(&format!("/v2/{repo}/blobs/{digest}")).send().await;
    read.expect_status(200);
    assert!(read.body == data, "the resumed upload's blob differs");

    // A client pushing while the server is down retries the 503s and
    // succeeds once it is back.
    tokio::task::block_in_place(|| s3.stop());
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        s3.restart().map(|()| s3)
    });
    let host = server.url().trim_start_matches("http://").to_owned();
    let client = Client::new(&host, ClientOptions::default()).unwrap();
    let name: RepoName = repo.parse().unwrap();
    client
        .push_blob(
            &name,
            &other_digest,
            Some(other.len() as u64),
            bytes_stream(other.clone(), 1000),
        )
        .await
        .expect("a push retried across the outage");
    let _s3 = restarter.join().unwrap().unwrap();
    let read = client
        .get_blob(&name, &other_digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(read == other);
}
