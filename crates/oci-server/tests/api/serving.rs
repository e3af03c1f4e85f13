use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oci_core::Digest;

use crate::support::Harness;

#[tokio::test]
async fn speaks_cleartext_http2_both_ways() {
    let h = Harness::new().await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let data: Bytes = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = Digest::sha256(&data);

    let push = http::Request::post(format!(
        "{}/v2/a/blobs/uploads/?digest={digest}",
        h.server.url()
    ))
    .body(Full::new(data.clone()))
    .unwrap();
    let resp = client.request(push).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 201);

    let uri = format!("{}/v2/a/blobs/{digest}", h.server.url());
    let resp = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, data);
}

#[tokio::test]
async fn stops_listening_when_dropped() {
    let h = Harness::new().await;
    let addr = h.server.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(h);
    // The aborted accept loop drops its listener the next time the runtime
    // gets to it; from then on connections are refused.
    for _ in 0..1000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{addr} still accepts connections after the server was dropped");
}
