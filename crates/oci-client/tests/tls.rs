//! TLS, mutual TLS and basic auth against distribution 2.8 with a CA and
//! certificates made for the test.

mod support;

use oci_client::{Client, ClientOptions, Scheme};
use oci_core::{ErrorCode, Registry, testkit};
use support::distribution::{Distribution, Setup};

fn tls_setup(mtls: bool) -> Setup {
    Setup {
        tls: true,
        mtls,
        ..Setup::default()
    }
}

#[tokio::test]
async fn tls_with_the_test_ca() {
    let reg = Distribution::start(tls_setup(false));
    let certs = reg.certs().unwrap();
    let options = ClientOptions::default()
        .anonymous()
        .scheme(Scheme::Https)
        .ca_pem(certs.ca.clone());
    let client = Client::new(reg.host(), options).unwrap();
    client.ping().await.unwrap();
    testkit::push_pull_blob(&client).await;
    testkit::manifest_push_pull(&client).await;
}

#[tokio::test]
async fn tls_without_trust_fails_and_insecure_skips_verification() {
    let reg = Distribution::start(tls_setup(false));
    let untrusting = ClientOptions::default().anonymous().scheme(Scheme::Https);
    let err = Client::new(reg.host(), untrusting)
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(
        err.message().to_lowercase().contains("certificate"),
        "unexpected error: {err}"
    );
    let insecure = ClientOptions::default()
        .anonymous()
        .scheme(Scheme::Https)
        .insecure(true);
    let client = Client::new(reg.host(), insecure).unwrap();
    client.ping().await.unwrap();
    testkit::blob_range(&client).await;
}

#[tokio::test]
async fn plain_http_to_a_tls_registry_fails_clearly() {
    let reg = Distribution::start(tls_setup(false));
    let client = Client::new(reg.host(), ClientOptions::default().anonymous()).unwrap();
    assert!(client.ping().await.is_err());
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let reg = Distribution::start(tls_setup(true));
    let certs = reg.certs().unwrap();
    let base = ClientOptions::default()
        .anonymous()
        .scheme(Scheme::Https)
        .ca_pem(certs.ca.clone());
    let without = Client::new(reg.host(), base.clone()).unwrap();
    assert!(
        without.ping().await.is_err(),
        "a registry demanding mTLS answered"
    );
    let with = Client::new(
        reg.host(),
        base.client_cert(certs.client_cert.clone(), certs.client_key.clone()),
    )
    .unwrap();
    with.ping().await.unwrap();
    testkit::chunked_upload(&with).await;
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let setup = Setup {
        tls: true,
        htpasswd: Some(("alice".into(), "s3cret".into())),
        ..Setup::default()
    };
    let reg = Distribution::start(setup);
    let ca = reg.certs().unwrap().ca.clone();
    let base = ClientOptions::default().scheme(Scheme::Https).ca_pem(ca);

    let anonymous = Client::new(reg.host(), base.clone().anonymous()).unwrap();
    let err = anonymous.ping().await.unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");

    let wrong = Client::new(reg.host(), base.clone().basic_auth("alice", "nope")).unwrap();
    let err = wrong.ping().await.unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");

    let client = Client::new(reg.host(), base.basic_auth("alice", "s3cret")).unwrap();
    client.ping().await.unwrap();
    testkit::push_pull_blob(&client).await;
    testkit::chunked_upload_resume(&client).await;
    testkit::mount_blob(&client).await;
    testkit::referrers(&client).await;
    testkit::catalog(&client).await;
    let repo = testkit::fresh_repo("auth-tags");
    testkit::push_image(&client, &repo, Some(&testkit::tag("v1"))).await;
    let tags = oci_core::registry::collect_list(client.tags(&repo, &Default::default()))
        .await
        .unwrap();
    assert_eq!(tags, [testkit::tag("v1")]);
}
