//! The library face: `Puller::from_reference` / `Pusher::to_reference`
//! with options, getters, and a pull → push round trip through them.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use oci_client::AuthOptions;
use oci_server::TestServer;
use ocidist::connect::ConnectOptions;
use ocidist::puller::{Format, PullOptions, Puller};
use ocidist::pusher::Pusher;

#[tokio::test(flavor = "multi_thread")]
async fn pull_and_push_from_a_reference_string_and_options() {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    ocidist::demo::seed(mem.as_ref()).await.unwrap();
    let server = TestServer::start(mem).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    let connect = ConnectOptions {
        auth: AuthOptions::Anonymous,
        ..ConnectOptions::default()
    };
    let options = PullOptions {
        connect: connect.clone(),
        platform: Some("linux/aarch64".parse().unwrap()),
    };
    let puller = Puller::from_reference(&format!("{host}/demo/hello"), options).unwrap();
    assert_eq!(
        puller.reference().unwrap().to_string(),
        format!("{host}/demo/hello:latest")
    );
    assert_eq!(
        puller
            .options()
            .unwrap()
            .platform
            .as_ref()
            .unwrap()
            .to_string(),
        "linux/arm64"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello");
    let pulled = puller.pull_to(Format::OciDir, &out, false).await.unwrap();
    assert_eq!(pulled.resolved.image.layers.len(), 1);

    let pusher = Pusher::to_reference(&format!("{host}/back/hello:v1"), connect).unwrap();
    assert_eq!(pusher.target().unwrap().tag().unwrap().as_str(), "v1");
    let pushed = pusher.push_from(&out).await.unwrap();
    assert_eq!(pushed.digest.digest, *pulled.resolved.manifest.digest());
    assert_eq!((pushed.copied, pushed.skipped), (2, 0));
    // A puller made from a registry alone has no reference to pull.
    let bare = Puller::new(puller.registry().clone());
    assert!(
        bare.pull_to(Format::Oci, &dir.path().join("x"), false)
            .await
            .is_err()
    );
}
