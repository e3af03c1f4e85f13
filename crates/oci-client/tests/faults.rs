//! Pulls from Debian's docker-registry through a fault-injecting proxy on
//! loopback: answers cut off mid-body, 429 with Retry-After, 503. Within
//! the retry bounds a pull completes byte-identical; past them it fails
//! with the registry's status as the error.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use oci_client::{Client, ClientOptions, RetryConfig};
use oci_core::testkit::{self, ImageOptions};
use oci_core::{ErrorCode, ParsedManifest, Registry};
use support::faults::{Fault, FaultProxy};

fn retries(max_retries: u32) -> RetryConfig {
    RetryConfig {
        max_retries,
        max_elapsed: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        base: 2.0,
    }
}

fn through(proxy: &FaultProxy, max_retries: u32) -> Client {
    let options = ClientOptions::default()
        .anonymous()
        .retry(retries(max_retries));
    Client::new(&proxy.host(), options).unwrap()
}

async fn read_all(client: &Client, repo: &oci_core::RepoName, d: &oci_core::Digest) -> Bytes {
    client
        .get_blob(repo, d)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pull_through_cuts_throttling_and_outages_is_byte_identical() {
    let registry = support::distribution::shared();
    let direct = support::distribution_client();
    let repo = testkit::fresh_repo("faults");
    let tag = testkit::tag("v1");
    let image = testkit::build_image(&ImageOptions {
        layers: 4,
        layer_size: 300 << 10,
        ..ImageOptions::default()
    });
    image.push(&direct, &repo, std::slice::from_ref(&tag)).await;

    // Every third request is cut mid-body (when it has one), every fifth
    // throttled, every seventh refused: never three faults in a row, so
    // four retries always get through.
    let proxy = FaultProxy::start(registry.host(), |n, method, _path| match n {
        _ if method == "GET" && n % 3 == 0 => Fault::CutBody,
        _ if n % 5 == 1 => Fault::TooMany,
        _ if n % 7 == 2 => Fault::Unavailable,
        _ => Fault::Pass,
    })
    .await;
    let client = through(&proxy, 4);

    let manifest = client.get_tag(&repo, &tag).await.unwrap();
    assert_eq!(manifest.bytes, image.manifest.bytes);
    let ParsedManifest::Image(parsed) = manifest.parse().unwrap() else {
        panic!("not an image manifest");
    };
    assert_eq!(
        read_all(&client, &repo, &parsed.config.digest).await,
        image.config_bytes
    );
    for (layer, bytes) in parsed.layers.iter().zip(&image.layer_bytes) {
        assert_eq!(read_all(&client, &repo, &layer.digest).await, *bytes);
    }

    let injected = &proxy.injected;
    assert!(FaultProxy::count(&injected.cut) >= 2, "{injected:?}");
    assert!(FaultProxy::count(&injected.too_many) >= 1, "{injected:?}");
    assert!(
        FaultProxy::count(&injected.unavailable) >= 1,
        "{injected:?}"
    );
}

#[tokio::test]
async fn past_the_retry_bounds_the_registry_status_is_the_error() {
    let registry = support::distribution::shared();
    let repo = testkit::fresh_repo("faults-bounds");
    let tag = testkit::tag("v1");

    let down = FaultProxy::start(registry.host(), |_, _, _| Fault::Unavailable).await;
    let err = through(&down, 3).get_tag(&repo, &tag).await.unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert_eq!(
        FaultProxy::count(&down.injected.requests),
        4,
        "1 try + 3 retries"
    );

    let busy = FaultProxy::start(registry.host(), |_, _, _| Fault::TooMany).await;
    let err = through(&busy, 2).get_tag(&repo, &tag).await.unwrap_err();
    assert!(err.is(ErrorCode::TooManyRequests), "{err}");
    assert_eq!(
        FaultProxy::count(&busy.injected.requests),
        3,
        "1 try + 2 retries"
    );
}
