//! The connection flags end to end: basic auth against Debian's
//! docker-registry with htpasswd (flags, stdin, docker config), and TLS
//! against `ocidist serve --tls-cert/--tls-key` (CA, insecure, failure).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use oci_client::{AuthOptions, Client, ClientOptions};
use oci_conformance::distribution::Distribution;
use oci_core::testkit::push_image;
use support::{fails, ocidist, ocidist_with, ok, run, serve};

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_from_flags_stdin_and_docker_config() {
    let registry = Distribution::start_with_htpasswd("tester", "s3cret")
        .await
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

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) {
    let sh = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ocidist test CA",
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_ca_insecure_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
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
