//! `digest`, `tag` and `inspect` end to end, against our server and
//! Debian's `docker-registry`.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::testkit::{Image, Index};
use oci_core::{Platform, Registry, RepoName, Tag};
use oci_server::TestServer;
use oci_testbed::distribution::{Distribution, Setup};
use support::{fails, ocidist, ok, skopeo_raw_http, tar_image, tar_index};

const REPO: &str = "img/app";
const SINGLE: &str = "img/single";

struct Seeded {
    host: String,
    index: Index,
    single: Image,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn seed(reg: &dyn Registry) -> (Index, Image) {
    let repo: RepoName = REPO.parse().unwrap();
    let index = tar_index();
    index.push_children(reg, &repo).await;
    index
        .push_manifest(reg, &repo, &[Tag::latest(), "v1".parse().unwrap()])
        .await;
    let single = tar_image(&Platform::new("linux", "amd64", None), 2, 1000, true);
    single
        .push(reg, &SINGLE.parse().unwrap(), &[Tag::latest()])
        .await;
    (index, single)
}

async fn ours() -> Seeded {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    let (index, single) = seed(mem.as_ref()).await;
    let server = TestServer::start(mem).await;
    Seeded {
        host: server.url().trim_start_matches("http://").to_owned(),
        index,
        single,
        _keep: Box::new(server),
    }
}

async fn distribution() -> Seeded {
    let registry = tokio::task::spawn_blocking(|| Distribution::start(Setup::default()))
        .await
        .unwrap()
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    let client = Client::new(&host, ClientOptions::default()).unwrap();
    let (index, single) = seed(&client).await;
    Seeded {
        host,
        index,
        single,
        _keep: Box::new(registry),
    }
}

async fn digest_tag_inspect(s: &Seeded) {
    let app = format!("{}/{REPO}", s.host);
    // digest: the digest alone, of the index or of one platform's image.
    assert_eq!(
        ok(&ocidist(&["digest", &app]).await),
        format!("{}\n", s.index.digest())
    );
    let arm = &s.index.children[1];
    assert_eq!(
        ok(&ocidist(&["digest", "--platform", "linux/arm64", &app]).await),
        format!("{}\n", arm.manifest.digest())
    );
    let by_digest = format!("{app}@{}", arm.manifest.digest());
    assert_eq!(
        ok(&ocidist(&["digest", &by_digest]).await).trim(),
        arm.manifest.digest().to_string()
    );

    // tag: the index stays an index, byte for byte; a child can be tagged too.
    let out = ok(&ocidist(&["tag", &format!("{app}:v1"), "copy"]).await);
    assert_eq!(out.trim(), s.index.digest().to_string());
    let raw = ocidist(&["manifest", "--raw", &format!("{app}:copy")]).await;
    assert_eq!(raw.stdout, s.index.manifest.bytes);
    let seen = skopeo_raw_http(&[], &format!("{app}:copy"));
    assert_eq!(seen["manifests"].as_array().unwrap().len(), 3);
    ok(&ocidist(&["tag", &by_digest, "arm"]).await);
    let raw = ocidist(&["manifest", "--raw", &format!("{app}:arm")]).await;
    assert_eq!(raw.stdout, arm.manifest.bytes);
    fails(&ocidist(&["tag", &app, "a/b"]).await, "is not a tag");

    // inspect: the index's platforms and the chosen image's facts.
    let text = ok(&ocidist(&["inspect", "--platform", "linux/arm/v7", &app]).await);
    assert!(
        text.contains(&format!("Reference:    {app}:latest")),
        "{text}"
    );
    assert!(
        text.contains("Platforms:    linux/amd64, linux/arm64, linux/arm/v7"),
        "{text}"
    );
    assert!(text.contains("Platform:     linux/arm/v7"), "{text}");
    assert!(text.contains("Layers:       2 ("), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(&ocidist(&[
        "inspect",
        "--json",
        "--platform",
        "linux/arm/v7",
        &app,
    ])
    .await))
    .unwrap();
    let child = &s.index.children[2];
    assert_eq!(v["digest"], s.index.digest().to_string());
    assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(v["platforms"].as_array().unwrap().len(), 3);
    assert_eq!(v["platforms"][2]["platform"], "linux/arm/v7");
    assert_eq!(v["image"]["digest"], child.manifest.digest().to_string());
    assert_eq!(v["image"]["architecture"], "arm");
    assert_eq!(v["image"]["variant"], "v7");
    assert_eq!(v["image"]["os"], "linux");
    assert_eq!(v["image"]["layers"], 2);
    let total: u64 = child.layers.iter().map(|l| l.size).sum();
    assert_eq!(v["image"]["layersSize"], total);
    assert!(v["image"]["created"].is_null());

    // A single image: no platforms, its own facts.
    let single = format!("{}/{SINGLE}", s.host);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&ocidist(&["inspect", "--json", &single]).await)).unwrap();
    assert!(v["platforms"].is_null());
    assert_eq!(v["digest"], s.single.manifest.digest().to_string());
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(v["image"]["digest"], v["digest"]);
    assert_eq!(v["image"]["layers"], 2);
    // A platform the index lacks is an error when asked for.
    fails(
        &ocidist(&["inspect", "--platform", "linux/s390x", &app]).await,
        "linux/s390x",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_tag_inspect_against_our_server() {
    digest_tag_inspect(&ours().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_tag_inspect_against_distribution() {
    digest_tag_inspect(&distribution().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_is_refused_as_a_docker_tarball_but_pulls_as_oci() {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    let repo: RepoName = "art/app".parse().unwrap();
    let subject = oci_core::testkit::push_image(mem.as_ref(), &repo, Some(&Tag::latest())).await;
    let artifact =
        oci_core::testkit::build_artifact(&subject.manifest.descriptor, "application/example.sbom");
    artifact.push(mem.as_ref(), &repo).await;
    let server = TestServer::start(mem).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    let reference = format!("{host}/art/app@{}", artifact.digest());
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("a.tar");
    fails(
        &ocidist(&["pull", &reference, "-o", tar.to_str().unwrap()]).await,
        "is an artifact (config application/vnd.oci.empty.v1+json), not an image",
    );
    assert!(!tar.exists());
    let oci = dir.path().join("a.oci.tar");
    ok(&ocidist(&[
        "pull",
        &reference,
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
    ])
    .await);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&ocidist(&["inspect", "--json", &reference]).await)).unwrap();
    assert_eq!(v["image"]["artifactType"], "application/example.sbom");
    assert!(v["image"]["os"].is_null());
}
