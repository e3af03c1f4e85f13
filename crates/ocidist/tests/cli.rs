//! The `ocidist` binary end to end, against our server and Debian's
//! `docker-registry` on loopback, outputs checked with skopeo.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::testkit::{Image, Index};
use oci_core::{Platform, Registry, RepoName, Tag};
use oci_server::TestServer;
use oci_testbed::distribution::{Distribution, Setup};
use support::{
    fails, ocidist, ok, podman_load, raw_request, serve, skopeo_raw, skopeo_to_oci_config_digest,
    tar_image, tar_index,
};

/// A registry under test, seeded with the images the tests use.
struct Seeded {
    host: String,
    index: Index,
    docker: Image,
    _keep: Box<dyn std::any::Any + Send>,
}

const REPO: &str = "e2e/app";
const DOCKER_REPO: &str = "e2e/docker";

async fn seed(reg: &dyn Registry) -> (Index, Image) {
    let repo: RepoName = REPO.parse().unwrap();
    let index = tar_index();
    index.push_children(reg, &repo).await;
    index
        .push_manifest(reg, &repo, &[Tag::latest(), "v1".parse().unwrap()])
        .await;
    let docker = tar_image(&Platform::new("linux", "amd64", None), 3, 3000, true);
    docker
        .push(reg, &DOCKER_REPO.parse().unwrap(), &[Tag::latest()])
        .await;
    (index, docker)
}

async fn ours() -> Seeded {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    let (index, docker) = seed(mem.as_ref()).await;
    let server = TestServer::start(mem).await;
    Seeded {
        host: server.url().trim_start_matches("http://").to_owned(),
        index,
        docker,
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
    let (index, docker) = seed(&client).await;
    Seeded {
        host,
        index,
        docker,
        _keep: Box::new(registry),
    }
}

async fn inspects(s: &Seeded) {
    let app = format!("{}/{REPO}", s.host);
    let tags = ok(&ocidist(&["tags", &app]).await);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["latest", "v1"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&ocidist(&["tags", "--json", &app]).await)).unwrap();
    assert_eq!(json["name"], REPO);

    // The index exactly as served, and pretty by default.
    let out = ocidist(&["manifest", "--raw", &app]).await;
    assert_eq!(out.stdout, s.index.manifest.bytes);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&s.index.digest().to_string()));
    let pretty = ok(&ocidist(&["manifest", &app]).await);
    assert!(pretty.lines().count() > 5);
    let v: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(
        v,
        serde_json::from_slice::<serde_json::Value>(&s.index.manifest.bytes).unwrap()
    );
    // Resolved to a platform, by --platform or by parts.
    let arm = &s.index.children[2];
    let out = ocidist(&["manifest", "--raw", "--platform", "linux/arm/v7", &app]).await;
    assert_eq!(out.stdout, arm.manifest.bytes);
    let out = ocidist(&[
        "manifest",
        "--raw",
        "--os",
        "linux",
        "--arch",
        "arm64",
        &format!("{app}:v1"),
    ])
    .await;
    assert_eq!(out.stdout, s.index.children[1].manifest.bytes);
    let out = ocidist(&["manifest", "--raw", "--manifest", "list", &app]).await;
    assert_eq!(out.stdout, s.index.manifest.bytes);
    let docker = format!("{}/{DOCKER_REPO}", s.host);
    fails(
        &ocidist(&["manifest", "--manifest", "list", &docker]).await,
        "single-platform",
    );
    fails(
        &ocidist(&["manifest", "--platform", "linux/s390x", &app]).await,
        "no image for platform linux/s390x",
    );

    // Config and blobs.
    let out = ocidist(&["config", "--platform", "linux/arm/v7", &app]).await;
    assert_eq!(out.stdout, arm.config_bytes);
    let layer = format!("{app}@{}", arm.layers[1].digest);
    let out = ocidist(&["blob", &layer]).await;
    assert_eq!(out.stdout, arm.layer_bytes[1]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("layer");
    ok(&ocidist(&["blob", &layer, "-o", file.to_str().unwrap()]).await);
    assert_eq!(std::fs::read(&file).unwrap(), arm.layer_bytes[1]);
    fails(
        &ocidist(&["blob", &layer, "-o", file.to_str().unwrap()]).await,
        "already exists",
    );
    fails(&ocidist(&["blob", &app]).await, "names no digest");

    // Bad input.
    fails(
        &ocidist(&["tags", &format!("{app}:v1")]).await,
        "give a repository only",
    );
    fails(
        &ocidist(&["manifest", &format!("{}/e2e/absent", s.host)]).await,
        "repository e2e/absent not found",
    );
    fails(
        &ocidist(&["manifest", &format!("{}/Bad//name", s.host)]).await,
        "invalid",
    );
    fails(
        &ocidist(&["catalog", &format!("{}/x", s.host)]).await,
        "give only the host",
    );
}

async fn pulls(s: &Seeded) {
    let dir = tempfile::tempdir().unwrap();
    let app = format!("{}/{REPO}:v1", s.host);
    let arm = &s.index.children[2];

    let tar = dir.path().join("app.tar");
    let pulled = ocidist(&[
        "pull",
        &app,
        "--platform",
        "linux/arm/v7",
        "-o",
        tar.to_str().unwrap(),
    ])
    .await;
    // The digest of what was written alone on stdout, as push and copy
    // print theirs; the index it came from on stderr.
    let out = ok(&pulled);
    assert_eq!(out, format!("{}\n", arm.manifest.digest()));
    let err = String::from_utf8_lossy(&pulled.stderr);
    assert!(
        err.contains(&format!(
            "index {} resolved to manifest {}",
            s.index.digest(),
            arm.manifest.digest()
        )),
        "{err}"
    );
    let cfg = skopeo_to_oci_config_digest(
        &format!("docker-archive:{}", tar.display()),
        &dir.path().join("check1"),
    );
    assert_eq!(cfg, arm.config.digest.to_string());
    // podman load takes it, as the image whose ID is the config digest.
    let (id, name) = podman_load(&tar, dir.path());
    assert_eq!(id, arm.config.digest.hex());
    assert_eq!(name, format!("{}/{REPO}:v1", s.host));
    fails(
        &ocidist(&[
            "pull",
            &app,
            "--platform",
            "linux/arm/v7",
            "-o",
            tar.to_str().unwrap(),
        ])
        .await,
        "already exists",
    );

    let oci = dir.path().join("app.oci.tar");
    ok(&ocidist(&[
        "pull",
        &app,
        "--platform",
        "linux/arm64",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
    ])
    .await);
    let raw = skopeo_raw(&format!("oci-archive:{}", oci.display()));
    assert_eq!(
        raw["config"]["digest"],
        s.index.children[1].config.digest.to_string()
    );

    let layout = dir.path().join("layout");
    ok(&ocidist(&[
        "pull",
        &app,
        "--platform",
        "linux/amd64",
        "--format",
        "oci-dir",
        "-o",
        layout.to_str().unwrap(),
    ])
    .await);
    let raw = skopeo_raw(&format!("oci:{}:v1", layout.display()));
    assert_eq!(
        raw["config"]["digest"],
        s.index.children[0].config.digest.to_string()
    );

    let docker = format!("{}/{DOCKER_REPO}", s.host);
    let dtar = dir.path().join("docker.tar");
    ok(&ocidist(&["pull", &docker, "-o", dtar.to_str().unwrap()]).await);
    let cfg = skopeo_to_oci_config_digest(
        &format!("docker-archive:{}", dtar.display()),
        &dir.path().join("check2"),
    );
    assert_eq!(cfg, s.docker.config.digest.to_string());

    fails(
        &ocidist(&[
            "pull",
            &app,
            "--platform",
            "windows/amd64",
            "-o",
            dir.path().join("no.tar").to_str().unwrap(),
        ])
        .await,
        "windows/amd64",
    );
    assert!(!dir.path().join("no.tar").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_commands_against_our_server() {
    inspects(&ours().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_commands_against_distribution() {
    inspects(&distribution().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_formats_against_our_server() {
    pulls(&ours().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_formats_against_distribution() {
    pulls(&distribution().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_between_our_server_and_distribution_keeps_digests() {
    let src = ours().await;
    let dst = distribution().await;
    let from = format!("{}/{REPO}:v1", src.host);
    let to = format!("{}/copied/app", dst.host);
    let out = ok(&ocidist(&["copy", "--all-platforms", &from, &to]).await);
    assert_eq!(out.trim(), src.index.digest().to_string());
    // Every platform arrived: the copied index resolves to each child.
    for (i, p) in ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .enumerate()
    {
        let out = ocidist(&["manifest", "--raw", "--platform", p, &format!("{to}:v1")]).await;
        assert_eq!(out.stdout, src.index.children[i].manifest.bytes, "{p}");
    }
    // One platform back into our server, under another name: a single image.
    let back = format!("{}/single/app:arm", src.host);
    ok(&ocidist(&[
        "copy",
        "--platform",
        "linux/arm/v7",
        &format!("{to}:v1"),
        &back,
    ])
    .await);
    let out = ocidist(&["manifest", "--raw", &back]).await;
    assert_eq!(out.stdout, src.index.children[2].manifest.bytes);
    // Within one registry, blobs are mounted, not copied.
    let err = ocidist(&["copy", &back, &format!("{}/mounted/app:arm", src.host)]).await;
    let said = String::from_utf8_lossy(&err.stderr);
    assert!(
        said.contains("0 blobs copied, 3 mounted, 0 already present"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_and_catalog() {
    for s in [ours().await, distribution().await] {
        let catalog = ok(&ocidist(&["catalog", &s.host]).await);
        assert!(catalog.lines().any(|l| l == REPO), "{catalog}");
        let child = &s.index.children[0];
        let by_digest = format!("{}/{REPO}@{}", s.host, child.manifest.digest());
        ok(&ocidist(&["delete", &by_digest]).await);
        fails(
            &ocidist(&["manifest", &by_digest]).await,
            "MANIFEST_UNKNOWN",
        );
    }
    // Tags alone: our server deletes them; distribution cannot and says how.
    let s = ours().await;
    ok(&ocidist(&["delete", &format!("{}/{REPO}:v1", s.host)]).await);
    let tags = ok(&ocidist(&["tags", &format!("{}/{REPO}", s.host)]).await);
    assert_eq!(tags.trim(), "latest");
    let d = distribution().await;
    let out = ocidist(&["delete", &format!("{}/{REPO}:v1", d.host)]).await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_traces_every_registry_call_on_stderr() {
    let s = ours().await;
    let out = ocidist(&["-v", "manifest", "--raw", &format!("{}/{REPO}:v1", s.host)]).await;
    assert_eq!(out.stdout, s.index.manifest.bytes);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oci_debug") && err.contains("get_tag") && err.contains(REPO),
        "{err}"
    );
    assert!(
        !err.contains("\u{1b}["),
        "no colour codes off a terminal: {err}"
    );
}

#[tokio::test]
async fn parsed_prints_the_command_line_without_secrets() {
    let out = ocidist(&[
        "--parsed",
        "-u",
        "me",
        "-p",
        "hunter2",
        "--ns",
        "docker.io",
        "tags",
        "localhost:5000/a",
    ])
    .await;
    let text = ok(&out);
    assert!(
        text.contains("Tags") && text.contains("docker.io") && text.contains("me"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_storage_survives_restarts_and_gc_frees_what_is_unreferenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let first = serve(&["--storage", store_arg, "--demo"]).unwrap();
    let hello = format!("{}/demo/hello:latest", first.host);
    let index = ocidist(&["manifest", "--raw", &hello]).await;
    assert!(index.status.success());
    // A second server on the same directory is refused.
    let err = serve(&["--storage", store_arg])
        .err()
        .expect("second server refused");
    assert!(
        err.contains("ocidist:") && err.to_lowercase().contains("lock"),
        "{err}"
    );
    drop(first);

    // Everything is still there after a restart, and reads back exactly.
    let second = serve(&["--storage", store_arg]).unwrap();
    let hello = format!("{}/demo/hello:latest", second.host);
    let again = ocidist(&["manifest", "--raw", &hello]).await;
    assert_eq!(again.stdout, index.stdout);
    let out = dir.path().join("hello.tar");
    ok(&ocidist(&[
        "pull",
        &hello,
        "--platform",
        "linux/arm64",
        "-o",
        out.to_str().unwrap(),
    ])
    .await);
    // The directory is an OCI layout skopeo reads.
    let raw = skopeo_raw(&format!(
        "oci:{}:latest",
        store.join("demo/hello").display()
    ));
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);

    // Deleting the index and its images leaves their blobs unreferenced...
    let digest = String::from_utf8_lossy(&again.stderr);
    let digest = digest.trim().strip_prefix("Digest: ").unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    for child in v["manifests"].as_array().unwrap() {
        ok(&ocidist(&[
            "delete",
            &format!(
                "{}/demo/hello@{}",
                second.host,
                child["digest"].as_str().unwrap()
            ),
        ])
        .await);
    }
    ok(&ocidist(&["delete", &format!("{}/demo/hello@{digest}", second.host)]).await);
    // ...which gc removes while the server still runs, and says so: at
    // least the two layers and two configs (manifests may be counted too,
    // depending on the layout).
    let report = ok(&ocidist(&["gc", "--storage", store_arg, "--grace", "0"]).await);
    let removed: usize = report
        .strip_prefix("removed ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected report {report:?}"));
    assert!(removed >= 4, "{report}");
    // The server goes on serving the store.
    ok(&ocidist(&["catalog", &second.host]).await);
    drop(second);
    let report = ok(&ocidist(&["gc", "--storage", store_arg]).await);
    assert!(report.starts_with("removed 0 blobs"), "{report}");
}

#[tokio::test]
async fn serve_limit_flags_take_effect() {
    let served = serve(&["--max-uploads-per-repo", "1", "--max-headers", "300"]).unwrap();
    let post = "POST /v2/limited/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let first = raw_request(&served.host, post).await;
    assert!(first.starts_with("HTTP/1.1 202"), "{first}");
    let second = raw_request(&served.host, post).await;
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    assert!(second.contains("TOOMANYREQUESTS"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("retry-after:"),
        "{second}"
    );
    let many: String = (0..280).map(|i| format!("X-Hop-{i}: p\r\n")).collect();
    let get = format!("GET /v2/ HTTP/1.1\r\nHost: r\r\n{many}Connection: close\r\n\r\n");
    let answer = raw_request(&served.host, &get).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
