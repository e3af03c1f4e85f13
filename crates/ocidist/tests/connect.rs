//! The connection flags end to end: basic auth against Debian's
//! docker-registry with htpasswd (flags, stdin, docker config), and TLS
//! against `ocidist serve --tls-cert/--tls-key` (CA, insecure, failure),
//! mutual TLS (`--cert/--key`) against docker-registry requiring client
//! certificates.

#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use oci_client::{AuthOptions, Client, ClientOptions, Scheme};
use oci_core::testkit::push_image;
use oci_testbed::certs::TestCerts;
use oci_testbed::distribution::{Distribution, Setup};
use support::{fails, ocidist, ocidist_with, ok, serve};

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_from_flags_stdin_and_docker_config() {
    let registry = Distribution::start(Setup::htpasswd("tester", "s3cret"))
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    let options = ClientOptions {
        auth: AuthOptions::Basic {
            username: "tester".into(),
            password: "s3cret".into(),
        },
        ..ClientOptions::default()
    };
    let client = Client::new(&host, options).unwrap();
    push_image(
        &client,
        &"auth/app".parse().unwrap(),
        Some(&"v1".parse().unwrap()),
    )
    .await;
    let repo = format!("{host}/auth/app");

    fails(&ocidist(&["tags", &repo]).await, "UNAUTHORIZED");
    fails(
        &ocidist(&["-u", "tester", "-p", "wrong", "tags", &repo]).await,
        "UNAUTHORIZED",
    );
    assert_eq!(
        ok(&ocidist(&["-u", "tester", "-p", "s3cret", "tags", &repo]).await).trim(),
        "v1"
    );
    let out = ocidist_with(
        &["tags", "-u", "tester", "--password-stdin", &repo],
        &[("DOCKER_CONFIG", "/nonexistent-ocidist-test")],
        Some(b"s3cret\n"),
    )
    .await;
    assert_eq!(ok(&out).trim(), "v1");

    // Stored credentials from a docker config.json, and --anonymous to ignore them.
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:s3cret");
    let config = serde_json::json!({"auths": {host.clone(): {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let docker_config = dir.path().to_str().unwrap();
    let out = ocidist_with(&["tags", &repo], &[("DOCKER_CONFIG", docker_config)], None).await;
    assert_eq!(ok(&out).trim(), "v1");
    let out = ocidist_with(
        &["--anonymous", "tags", &repo],
        &[("DOCKER_CONFIG", docker_config)],
        None,
    )
    .await;
    fails(&out, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_ca_insecure_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    TestCerts::make(dir.path()).unwrap();
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let server = serve(&[
        "--demo",
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ])
    .unwrap();
    let repo = format!("{}/demo/hello", server.host);

    assert_eq!(
        ok(&ocidist(&[
            "--scheme",
            "https",
            "--cacert",
            &path("ca.pem"),
            "tags",
            &repo
        ])
        .await)
        .trim(),
        "latest"
    );
    assert_eq!(
        ok(&ocidist(&["--scheme", "https", "--insecure", "tags", &repo]).await).trim(),
        "latest"
    );
    let untrusted = ocidist(&["--scheme", "https", "tags", &repo]).await;
    fails(&untrusted, "certificate");
    // An untrusted certificate is final: no retries (visible with -v).
    let verbose = ocidist(&["-v", "--scheme", "https", "tags", &repo]).await;
    let said = String::from_utf8_lossy(&verbose.stderr);
    assert!(!said.contains("retrying"), "{said}");
    // Plain http to a TLS port fails clearly too.
    let plain = ocidist(&["tags", &repo]).await;
    assert!(!plain.status.success());
    assert_eq!(
        String::from_utf8_lossy(&plain.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    // A pull over TLS writes the image.
    let out = dir.path().join("hello.tar");
    ok(&ocidist(&[
        "--scheme",
        "https",
        "--cacert",
        &path("ca.pem"),
        "pull",
        &repo,
        "--platform",
        "linux/amd64",
        "-o",
        out.to_str().unwrap(),
    ])
    .await);
    assert!(out.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_cert_and_key() {
    let registry = Distribution::start(Setup {
        tls: true,
        mtls: true,
        ..Setup::default()
    })
    .expect("docker-registry (run .ci/install-deps)");
    let certs = registry.certs().unwrap();
    let host = registry.host().to_owned();
    let options = ClientOptions::default()
        .anonymous()
        .scheme(Scheme::Https)
        .ca_pem(certs.ca.clone())
        .client_cert(certs.client_cert.clone(), certs.client_key.clone());
    let client = Client::new(&host, options).unwrap();
    push_image(
        &client,
        &"mtls/app".parse().unwrap(),
        Some(&"v1".parse().unwrap()),
    )
    .await;
    let repo = format!("{host}/mtls/app");
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    let (ca, cert, key) = (
        path(certs.ca_path()),
        path(certs.client_cert_path()),
        path(certs.client_key_path()),
    );

    // 127.0.0.1 defaults to http: --scheme https, as for any TLS loopback registry.
    let tls = ["--scheme", "https", "--cacert", ca.as_str()];
    let with_cert = [&tls[..], &["--cert", &cert, "--key", &key, "tags", &repo]].concat();
    assert_eq!(ok(&ocidist(&with_cert).await).trim(), "v1");
    let insecure = [
        "--scheme",
        "https",
        "--insecure",
        "--cert",
        &cert,
        "--key",
        &key,
        "tags",
        &repo,
    ];
    assert_eq!(ok(&ocidist(&insecure).await).trim(), "v1");

    // Without the client certificate the registry ends the handshake
    // (with TLS 1.3 the client may see the alert or only the closed
    // connection, so the wording varies; it is one line either way).
    let without = ocidist(&[&tls[..], &["tags", &repo]].concat()).await;
    fails(&without, "https://127.0.0.1");
    // A certificate without its key is a usage error.
    let no_key = ocidist(&[&tls[..], &["--cert", &cert, "tags", &repo]].concat()).await;
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("--key"));
}
