//! `push`: what `pull` wrote goes back with the same digests, in all three
//! formats, to our server and to Debian's docker-registry (checked with
//! `skopeo inspect --raw`); a whole-index layout made by skopeo pushes as
//! the index; a docker tarball without a recorded manifest keeps its
//! config and layer digests.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use oci_client::{AuthOptions, Client, ClientOptions, Scheme};
use oci_core::testkit::Index;
use oci_core::{Registry, RepoName, Tag};
use oci_server::TestServer;
use oci_testbed::distribution::{Distribution, Setup};
use support::{ocidist, ok, run, skopeo_raw_http, tar_index};

const REPO: &str = "push/src";

async fn seed(reg: &dyn Registry) -> Index {
    let repo: RepoName = REPO.parse().unwrap();
    let index = tar_index();
    index.push_children(reg, &repo).await;
    index.push_manifest(reg, &repo, &[Tag::latest()]).await;
    index
}

/// Pulls the arm64 image in each of the three formats and pushes it back
/// under a new name: the same manifest digest and bytes, as ocidist and
/// skopeo read them. `flags` are ocidist's connection flags for `host`,
/// `skopeo` skopeo's.
async fn formats_round_trip(host: &str, index: &Index, flags: &[&str], skopeo: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{host}/{REPO}");
    let arm = &index.children[1];
    let with = |args: &[&str]| -> Vec<String> {
        flags.iter().chain(args).map(|a| a.to_string()).collect()
    };
    for (i, format) in ["docker", "oci", "oci-dir"].iter().enumerate() {
        let out = dir.path().join(format!("out-{format}"));
        let out = out.to_str().unwrap();
        let pull = with(&[
            "pull",
            &src,
            "--platform",
            "linux/arm64",
            "--format",
            format,
            "-o",
            out,
        ]);
        ok(&ocidist(&pull.iter().map(String::as_str).collect::<Vec<_>>()).await);
        let target = format!("{host}/push/back{i}:v1");
        let push = with(&["push", out, &target]);
        let push: Vec<&str> = push.iter().map(String::as_str).collect();
        let pushed = ok(&ocidist(&push).await);
        assert_eq!(pushed.trim(), arm.manifest.digest().to_string(), "{format}");
        let raw = with(&["manifest", "--raw", &target]);
        let raw = ocidist(&raw.iter().map(String::as_str).collect::<Vec<_>>()).await;
        assert_eq!(raw.stdout, arm.manifest.bytes, "{format}");
        let seen = skopeo_raw_http(skopeo, &target);
        assert_eq!(
            seen,
            serde_json::from_slice::<serde_json::Value>(&arm.manifest.bytes).unwrap()
        );
        // Again: everything is there already.
        let again = ocidist(&push).await;
        let said = String::from_utf8_lossy(&again.stderr);
        assert!(
            said.contains("0 blobs uploaded, 3 already present"),
            "{said}"
        );
    }
}

async fn round_trips(host: &str, index: &Index) {
    formats_round_trip(host, index, &[], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{host}/{REPO}");
    let arm = &index.children[1];

    // A layout holding the whole index (skopeo copy --all) pushes as the index.
    let layout = dir.path().join("all");
    run(std::process::Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{src}:latest"),
        &format!("oci:{}:latest", layout.display()),
    ]));
    // (skopeo rewrites the manifests it copies: the layout's own digests
    // are the ones to keep.)
    let target = format!("{host}/push/index:latest");
    let pushed = ok(&ocidist(&["push", layout.to_str().unwrap(), &target]).await);
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = listed["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(pushed.trim(), digest);
    let stored = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(
        ocidist(&["manifest", "--raw", &target]).await.stdout,
        stored
    );
    let seen = skopeo_raw_http(&[], &target);
    assert_eq!(seen["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(seen["manifests"].as_array().unwrap().len(), 3);
    ok(&ocidist(&[
        "pull",
        "--platform",
        "linux/arm/v7",
        "--format",
        "oci-dir",
        "-o",
        dir.path().join("v7").to_str().unwrap(),
        &target,
    ])
    .await);

    // skopeo's docker-archive records no manifest: same config and layers.
    let archive = dir.path().join("skopeo.tar");
    run(std::process::Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--override-arch",
        "arm64",
        &format!("docker://{src}:latest"),
        &format!("docker-archive:{}", archive.display()),
    ]));
    let target = format!("{host}/push/rebuilt:v1");
    ok(&ocidist(&["push", archive.to_str().unwrap(), &target]).await);
    let seen = skopeo_raw_http(&[], &target);
    // skopeo re-encodes the config for the docker format; it is kept as written.
    let listed: serde_json::Value = serde_json::from_str(&run(std::process::Command::new("tar")
        .args(["-xOf", archive.to_str().unwrap(), "manifest.json"])))
    .unwrap();
    let config = listed[0]["Config"].as_str().unwrap();
    let hex = config
        .trim_end_matches(".json")
        .trim_start_matches("blobs/sha256/");
    assert_eq!(seen["config"]["digest"], format!("sha256:{hex}"));
    let layers: Vec<String> = arm.layers.iter().map(|l| l.digest.to_string()).collect();
    let got: Vec<String> = seen["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, layers);

    // Not an image at all.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    let out = ocidist(&["push", junk.to_str().unwrap(), &target]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither an OCI layout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_then_push_round_trips_to_our_server() {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    let index = seed(mem.as_ref()).await;
    let server = TestServer::start(mem).await;
    round_trips(server.url().trim_start_matches("http://"), &index).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_then_push_round_trips_to_distribution() {
    let registry = tokio::task::spawn_blocking(|| Distribution::start(Setup::default()))
        .await
        .unwrap()
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.host().to_owned();
    let index = seed(&Client::new(&host, ClientOptions::default()).unwrap()).await;
    round_trips(&host, &index).await;
}

/// Starts docker-registry with `setup` and seeds it through oci-client
/// over TLS (the test's own CA), with basic credentials when it has them.
async fn seeded_tls(setup: Setup) -> (Distribution, Index) {
    let registry = tokio::task::spawn_blocking(move || Distribution::start(setup))
        .await
        .unwrap()
        .expect("docker-registry (run .ci/install-deps)");
    let certs = registry.certs().expect("a TLS registry has certificates");
    let mut options = ClientOptions {
        scheme: Some(Scheme::Https),
        ..ClientOptions::default()
    };
    options.tls.ca_pem = Some(std::fs::read(certs.ca_path()).unwrap());
    options.tls.client_cert_pem = Some(std::fs::read(certs.client_cert_path()).unwrap());
    options.tls.client_key_pem = Some(std::fs::read(certs.client_key_path()).unwrap());
    options.auth = AuthOptions::Basic {
        username: "alice".into(),
        password: "a-pass".into(),
    };
    let index = seed(&Client::new(registry.host(), options).unwrap()).await;
    (registry, index)
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_then_push_round_trips_over_tls_with_basic_auth() {
    let (registry, index) = seeded_tls(Setup {
        tls: true,
        ..Setup::htpasswd("alice", "a-pass")
    })
    .await;
    let ca = registry.certs().unwrap().ca_path();
    let ca = ca.to_str().unwrap();
    let flags = [
        "--scheme", "https", "--cacert", ca, "-u", "alice", "-p", "a-pass",
    ];
    formats_round_trip(
        registry.host(),
        &index,
        &flags,
        &["--creds", "alice:a-pass"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_then_push_round_trips_over_mutual_tls() {
    let (registry, index) = seeded_tls(Setup {
        tls: true,
        mtls: true,
        ..Setup::default()
    })
    .await;
    let certs = registry.certs().unwrap();
    let (ca, cert, key) = (
        certs.ca_path(),
        certs.client_cert_path(),
        certs.client_key_path(),
    );
    // skopeo takes a directory of `*.cert` / `*.key` pairs and `*.crt` CAs.
    let cert_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&cert, cert_dir.path().join("client.cert")).unwrap();
    std::fs::copy(&key, cert_dir.path().join("client.key")).unwrap();
    std::fs::copy(&ca, cert_dir.path().join("ca.crt")).unwrap();
    let flags = [
        "--scheme",
        "https",
        "--cacert",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let skopeo = ["--cert-dir", cert_dir.path().to_str().unwrap()];
    formats_round_trip(registry.host(), &index, &flags, &skopeo).await;
}
