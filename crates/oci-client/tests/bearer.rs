//! The bearer token flow against a token-issuing gate in front of our own
//! server: the whole shared suite, token caching, refresh tokens, refusals.

mod support;

use std::sync::atomic::Ordering;

use oci_client::{AuthOptions, Client, ClientOptions};
use oci_core::{ErrorCode, Registry, testkit};
use support::gate::{Gate, GateConfig};

mod suite {
    oci_core::testkit_tests!(super::support::gate_client().await);
}

fn config() -> GateConfig {
    GateConfig {
        username: "bob".into(),
        password: "pw".into(),
        refresh_token: Some("refresh-1".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn tokens_are_cached_per_scope() {
    let gate = Gate::start(config()).await;
    let client = Client::new(
        &gate.addr.to_string(),
        ClientOptions::default().basic_auth("bob", "pw"),
    )
    .unwrap();
    let repo = testkit::fresh_repo("token-cache");
    for _ in 0..3 {
        testkit::push_bytes(
            &client,
            &repo,
            oci_core::media::OCTET_STREAM,
            &testkit::random_bytes(100),
        )
        .await;
    }
    let after_push = gate.token_requests.load(Ordering::SeqCst);
    assert_eq!(after_push, 1, "one token for pull,push on the repository");
    let pushed = testkit::push_bytes(
        &client,
        &repo,
        oci_core::media::OCTET_STREAM,
        &testkit::random_bytes(10),
    )
    .await;
    for _ in 0..3 {
        client.resolve_blob(&repo, &pushed.digest).await.unwrap();
    }
    assert_eq!(
        gate.token_requests.load(Ordering::SeqCst),
        2,
        "one more token for pull"
    );
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let gate = Gate::start(config()).await;
    let client = Client::new(
        &gate.addr.to_string(),
        ClientOptions::default().basic_auth("bob", "nope"),
    )
    .unwrap();
    let repo = testkit::fresh_repo("wrong-password");
    let err = client
        .resolve_tag(&repo, &testkit::tag("x"))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");
    assert!(err.message().contains("token endpoint"), "{err}");
}

#[tokio::test]
async fn a_refused_fresh_token_is_denied() {
    let gate = Gate::start(GateConfig {
        refuse_tokens: true,
        ..config()
    })
    .await;
    let client = Client::new(
        &gate.addr.to_string(),
        ClientOptions::default().basic_auth("bob", "pw"),
    )
    .unwrap();
    let repo = testkit::fresh_repo("refused");
    let err = client
        .resolve_tag(&repo, &testkit::tag("x"))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
}

#[tokio::test]
async fn identity_tokens_use_the_oauth2_refresh_grant() {
    let gate = Gate::start(config()).await;
    let options = ClientOptions::default().auth(AuthOptions::IdentityToken("refresh-1".into()));
    let client = Client::new(&gate.addr.to_string(), options).unwrap();
    testkit::push_pull_blob(&client).await;

    let bad = ClientOptions::default().auth(AuthOptions::IdentityToken("stale".into()));
    let client = Client::new(&gate.addr.to_string(), bad).unwrap();
    let repo = testkit::fresh_repo("stale-refresh");
    let err = client
        .resolve_tag(&repo, &testkit::tag("x"))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");
}

#[tokio::test]
async fn anonymous_clients_get_no_access() {
    let gate = Gate::start(config()).await;
    let client = Client::new(&gate.addr.to_string(), ClientOptions::default().anonymous()).unwrap();
    let repo = testkit::fresh_repo("anonymous");
    let err = client
        .resolve_tag(&repo, &testkit::tag("x"))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");
}

#[tokio::test]
async fn a_refused_anonymous_token_does_not_blame_credentials() {
    let gate = Gate::start(GateConfig {
        anonymous_tokens: true,
        ..config()
    })
    .await;
    let client = Client::new(&gate.addr.to_string(), ClientOptions::default().anonymous()).unwrap();
    let repo = testkit::fresh_repo("anonymous-token");
    let err = client
        .resolve_tag(&repo, &testkit::tag("x"))
        .await
        .unwrap_err();
    assert!(err.message().contains("requires authentication"), "{err}");
    assert!(!err.message().contains("rejected the credentials"), "{err}");
}

#[tokio::test]
async fn credentials_from_a_docker_config_file() {
    let gate = Gate::start(config()).await;
    let host = gate.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    // "bob:pw" in base64.
    std::fs::write(
        &file,
        format!(r#"{{"auths":{{"{host}":{{"auth":"Ym9iOnB3"}}}}}}"#),
    )
    .unwrap();
    let options = ClientOptions::default().auth(AuthOptions::ConfigFiles(vec![file]));
    let client = Client::new(&host, options).unwrap();
    testkit::manifest_push_pull(&client).await;
}

#[tokio::test]
async fn a_busy_token_endpoint_is_retried() {
    let gate = Gate::start(GateConfig {
        busy_token_requests: 2,
        ..config()
    })
    .await;
    let retry = oci_client::RetryConfig {
        initial_backoff: std::time::Duration::from_millis(1),
        max_backoff: std::time::Duration::from_millis(5),
        ..Default::default()
    };
    let options = ClientOptions::default()
        .basic_auth("bob", "pw")
        .retry(retry);
    let client = Client::new(&gate.addr.to_string(), options).unwrap();
    testkit::push_pull_blob(&client).await;
    // Two busy answers, then one token to push and one to pull.
    assert_eq!(gate.token_requests.load(Ordering::SeqCst), 4);
}
