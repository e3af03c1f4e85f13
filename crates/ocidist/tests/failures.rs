//! Failures end to end: each says what failed and what to do, on one
//! line, with an exit code a script can tell apart (2 usage, 3 not found,
//! 4 auth, 5 network/TLS, 1 anything else).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::testkit::push_image;
use oci_core::{Registry, Tag};
use oci_server::TestServer;
use oci_testbed::certs::TestCerts;
use oci_testbed::distribution::{Distribution, Setup};
use support::{ocidist, ocidist_with, ok, serve};

/// A failure with `code` whose one line mentions every needle and none
/// of the banned words.
fn failed(out: &std::process::Output, code: i32, needles: &[&str], banned: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "one line: {err}");
    assert!(line.starts_with("ocidist: "), "{err}");
    for n in needles {
        assert!(line.contains(n), "{line:?} should mention {n:?}");
    }
    for b in banned {
        assert!(!line.contains(b), "{line:?} should not mention {b:?}");
    }
}

async fn not_found(host: &str) {
    let app = format!("{host}/nf/app");
    // A missing tag, implied: says `latest`, that it was implied, the
    // registry, and the tags there are.
    failed(
        &ocidist(&["manifest", &format!("{host}/nf/app")]).await,
        3,
        &[
            "tag latest not found in",
            &format!("{host}/nf/app"),
            "v1",
            "no tag was given, so `latest` was used",
        ],
        &["UNKNOWN:"],
    );
    failed(
        &ocidist(&["pull", &format!("{app}:v9"), "-o", "/nonexistent/x.tar"]).await,
        3,
        &["tag v9 not found in", host, "(it has: v1)"],
        &[],
    );
    // A missing repository.
    failed(
        &ocidist(&["inspect", &format!("{host}/nf/absent:v1")]).await,
        3,
        &["repository nf/absent not found on", host],
        &["tag"],
    );
    failed(
        &ocidist(&["tags", &format!("{host}/nf/absent")]).await,
        3,
        &["repository nf/absent not found on", host],
        &[],
    );
    // A missing digest.
    let digest = format!("sha256:{}", "ab".repeat(32));
    failed(
        &ocidist(&["digest", &format!("{app}@{digest}")]).await,
        3,
        &[&format!("manifest {digest} not found in {host}/nf/app")],
        &[],
    );
    // A platform the image lacks.
    failed(
        &ocidist(&[
            "manifest",
            "--platform",
            "linux/s390x",
            &format!("{app}:v1"),
        ])
        .await,
        3,
        &["linux/s390x"],
        &[],
    );
}

async fn seed(reg: &dyn Registry) {
    push_image(
        reg,
        &"nf/app".parse().unwrap(),
        Some(&"v1".parse().unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_names_what_is_missing_and_where() {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    seed(mem.as_ref()).await;
    let server = TestServer::start(mem).await;
    not_found(server.url().trim_start_matches("http://")).await;

    let registry = tokio::task::spawn_blocking(|| Distribution::start(Setup::default()))
        .await
        .unwrap()
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    seed(&Client::new(&host, ClientOptions::default()).unwrap()).await;
    not_found(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_and_local_errors_1() {
    failed(
        &ocidist(&["manifest", "127.0.0.1:1/Bad//name"]).await,
        2,
        &["invalid reference"],
        &["NAME_INVALID"],
    );
    let out = ocidist(&["manifest", "--no-such-flag", "x"]).await;
    assert_eq!(out.status.code(), Some(2));
    failed(
        &ocidist(&["manifest", "--platform", "linux", "127.0.0.1:1/a"]).await,
        2,
        &["invalid platform"],
        &[],
    );
    failed(
        &ocidist(&["tag", "127.0.0.1:1/a:v1", "b/c"]).await,
        2,
        &["is not a tag"],
        &[],
    );
    failed(
        &ocidist(&["blob", "127.0.0.1:1/a:v1"]).await,
        2,
        &["names no digest"],
        &[],
    );
    // A local failure: exit 1, no registry code, no temporary names.
    let s = serve(&["--demo"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello.tar");
    std::fs::write(&out, b"keep").unwrap();
    failed(
        &ocidist(&[
            "pull",
            &format!("{}/demo/hello", s.host),
            "-o",
            out.to_str().unwrap(),
        ])
        .await,
        1,
        &["already exists", "--force"],
        &["UNKNOWN", "partial"],
    );
    // The exit codes are documented in --help.
    let help = ok(&ocidist(&["--help"]).await);
    assert!(
        help.contains("3 not found") && help.contains("5 network"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_failures_exit_4_and_say_whether_credentials_were_sent() {
    let registry = Distribution::start(Setup::htpasswd("tester", "s3cret"))
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    let repo = format!("{host}/auth/app");
    failed(
        &ocidist(&["tags", &repo]).await,
        4,
        &[
            "UNAUTHORIZED",
            "no credentials were sent",
            "ocidist login",
            "--username",
        ],
        &["rejected"],
    );
    failed(
        &ocidist(&["-u", "tester", "-p", "wrong", "tags", &repo]).await,
        4,
        &[
            "rejected the credentials",
            "check the user name and password",
        ],
        &["no credentials were sent"],
    );
    // A malformed config.json is a warning: anonymous reads still run.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), b"{not json").unwrap();
    let s = serve(&["--demo"]).unwrap();
    let out = ocidist_with(
        &["tags", &format!("{}/demo/hello", s.host)],
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap())],
        None,
    )
    .await;
    assert_eq!(ok(&out).trim(), "latest");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("warning") && said.contains("config.json"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn network_and_tls_failures_exit_5_with_the_flag_to_use() {
    let dir = tempfile::tempdir().unwrap();
    TestCerts::make(dir.path()).unwrap();
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let tls = serve(&[
        "--demo",
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ])
    .unwrap();
    let repo = format!("{}/demo/hello", tls.host);
    // An untrusted certificate: --cacert or --insecure.
    failed(
        &ocidist(&["--scheme", "https", "tags", &repo]).await,
        5,
        &["certificate", "--cacert", "--insecure"],
        &["UNKNOWN:"],
    );
    // Plain http to a TLS server (loopback defaults to http).
    failed(
        &ocidist(&["tags", &repo]).await,
        5,
        &["speaks https, not plain http", "--scheme https"],
        &[],
    );
    // https to a plain server.
    let plain = serve(&["--demo"]).unwrap();
    failed(
        &ocidist(&[
            "--scheme",
            "https",
            "tags",
            &format!("{}/demo/hello", plain.host),
        ])
        .await,
        5,
        &["speaks plain http, not https", "--scheme http"],
        &[],
    );
    // The same against docker-registry with TLS (Go answers plain http with a 400).
    let registry = Distribution::start(Setup {
        tls: true,
        ..Setup::default()
    })
    .expect("docker-registry (run .ci/install-deps)");
    let client = Client::new(
        registry.host(),
        ClientOptions::default()
            .anonymous()
            .scheme(oci_client::Scheme::Https)
            .insecure(true),
    )
    .unwrap();
    push_image(&client, &"t/app".parse().unwrap(), Some(&Tag::latest())).await;
    failed(
        &ocidist(&["tags", &format!("{}/t/app", registry.host())]).await,
        5,
        &["speaks https, not plain http", "--scheme https"],
        &[],
    );
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    failed(
        &ocidist(&["tags", &format!("{closed}/a")]).await,
        5,
        &[&closed.to_string()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_client_certificate_hints_cert_and_key() {
    let registry = tokio::task::spawn_blocking(|| {
        Distribution::start(Setup {
            tls: true,
            mtls: true,
            ..Setup::default()
        })
    })
    .await
    .unwrap()
    .expect("docker-registry (run .ci/install-deps)");
    let ca = registry.certs().unwrap().ca_path();
    let out = ocidist(&[
        "--scheme",
        "https",
        "--cacert",
        ca.to_str().unwrap(),
        "tags",
        &format!("{}/m/app", registry.host()),
    ])
    .await;
    failed(&out, 5, &["--cert FILE --key FILE"], &["UNKNOWN:"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_write_exits_4() {
    let s = serve(&["--demo", "--read-only"]).unwrap();
    failed(
        &ocidist(&["tag", &format!("{}/demo/hello", s.host), "again"]).await,
        4,
        &["(DENIED)", "no credentials were sent to"],
        &["UNKNOWN:"],
    );
}
