//! OCI 1.1 artifacts and referrers end to end: `artifact push/pull`,
//! `attach`, `referrers` and `copy --with-referrers` against our server
//! (the referrers API) and Debian's docker-registry 2.8 (no API: the
//! referrers tag schema), with oras (PyPI `oras`) reading what we push and
//! pushing what we pull.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use oci_client::{Client, ClientOptions};
use oci_core::{Digest, Manifest, Platform, Registry, RepoName, Tag, media};
use oci_server::TestServer;
use oci_testbed::distribution::{Distribution, Setup};
use support::{fails, ocidist, ok, run, tar_image};

/// A registry for a test: its host and what keeps it running.
struct Peer {
    host: String,
    client: Client,
    /// Whether it serves the referrers API.
    native: bool,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn ours() -> Peer {
    let server = TestServer::start(Arc::new(oci_mem::MemRegistry::new())).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    Peer {
        client: Client::new(&host, ClientOptions::default()).unwrap(),
        host,
        native: true,
        _keep: Box::new(server),
    }
}

async fn distribution() -> Peer {
    let registry = tokio::task::spawn_blocking(|| Distribution::start(Setup::default()))
        .await
        .unwrap()
        .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    Peer {
        client: Client::new(&host, ClientOptions::default()).unwrap(),
        host,
        native: false,
        _keep: Box::new(registry),
    }
}

/// The python of the virtualenv `.ci/install-deps` puts oras in.
fn oras_python() -> PathBuf {
    let venv = std::env::var_os("OCIDIST_ORAS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/ocidist/oras-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing (run .ci/install-deps)",
        python.display()
    );
    python
}

/// Runs a few lines of Python with oras imported and `client` an
/// OrasClient over plain http, in `dir`; returns what it printed.
fn oras(dir: &Path, body: &str) -> String {
    let script = format!(
        "import json, sys\nimport oras.client, oras.oci\nclient = oras.client.OrasClient(insecure=True)\n{body}\n"
    );
    let python = oras_python();
    tokio::task::block_in_place(|| run(Command::new(python).current_dir(dir).args(["-c", &script])))
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    std::fs::write(dir.join(name), data).unwrap();
    dir.join(name).to_str().unwrap().to_owned()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap()
}

/// Referrer digests that `ocidist referrers --json` lists.
async fn referrer_digests(reference: &str, artifact_type: Option<&str>) -> Vec<String> {
    let mut args = vec!["referrers", "--json", reference];
    if let Some(t) = artifact_type {
        args.extend(["--artifact-type", t]);
    }
    let listed = json(&ok(&ocidist(&args).await));
    listed["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect()
}

async fn tags(reference: &str) -> Vec<String> {
    ok(&ocidist(&["tags", reference]).await)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `artifact push` read back by oras, oras's push pulled by us.
async fn files_both_ways(peer: &Peer) {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.txt", b"first file\n");
    let b = write(dir.path(), "b.json", br#"{"sbom":true}"#);
    let target = format!("{}/art/files:v1", peer.host);
    let pushed = json(&ok(&ocidist(&[
        "artifact",
        "push",
        "--json",
        "--artifact-type",
        "application/vnd.test.files",
        &target,
        &a,
        &format!("{b}:application/json"),
    ])
    .await));
    assert_eq!(pushed["artifactType"], "application/vnd.test.files");
    // oras reads it: the files by their titles, byte for byte.
    let got = dir.path().join("by-oras");
    oras(
        dir.path(),
        &format!(
            "client.pull(target={target:?}, outdir={:?})",
            got.to_str().unwrap()
        ),
    );
    assert_eq!(std::fs::read(got.join("a.txt")).unwrap(), b"first file\n");
    assert_eq!(
        std::fs::read(got.join("b.json")).unwrap(),
        br#"{"sbom":true}"#
    );
    let manifest = oras(
        dir.path(),
        &format!("print(json.dumps(client.get_manifest({target:?})))"),
    );
    let manifest = json(&manifest);
    assert_eq!(manifest["artifactType"], "application/vnd.test.files");
    assert_eq!(manifest["config"]["mediaType"], media::OCI_EMPTY);
    assert_eq!(manifest["layers"][1]["mediaType"], "application/json");

    // What oras pushed, we pull.
    write(dir.path(), "from-oras.bin", &[7u8; 3000]);
    let theirs = format!("{}/art/oras:v1", peer.host);
    oras(
        dir.path(),
        &format!("client.push(target={theirs:?}, files=['from-oras.bin'])"),
    );
    let out = dir.path().join("ours");
    let pulled = json(&ok(&ocidist(&[
        "artifact",
        "pull",
        "--json",
        &theirs,
        "-o",
        out.to_str().unwrap(),
    ])
    .await));
    assert_eq!(pulled["files"][0]["title"], "from-oras.bin");
    assert_eq!(
        std::fs::read(out.join("from-oras.bin")).unwrap(),
        [7u8; 3000]
    );
    // Pulled again, the file is not silently replaced.
    fails(
        &ocidist(&["artifact", "pull", &theirs, "-o", out.to_str().unwrap()]).await,
        "already exists",
    );
}

/// Pushes an artifact whose layer titles are `titles` (bypassing our CLI,
/// which would refuse them) and returns its reference.
async fn hostile(peer: &Peer, tag: &str, titles: &[&str]) -> String {
    let repo: RepoName = "art/hostile".parse().unwrap();
    let body = Bytes::from_static(b"owned\n");
    let digest = Digest::sha256(&body);
    peer.client
        .push_blob(
            &repo,
            &digest,
            Some(body.len() as u64),
            oci_core::registry::bytes_stream(body.clone(), 1024),
        )
        .await
        .unwrap();
    let empty = Bytes::from_static(b"{}");
    peer.client
        .push_blob(
            &repo,
            &Digest::sha256(&empty),
            Some(2),
            oci_core::registry::bytes_stream(empty, 1024),
        )
        .await
        .unwrap();
    let layers: Vec<serde_json::Value> = titles
        .iter()
        .map(|t| {
            serde_json::json!({
                "mediaType": media::OCI_LAYER, "digest": digest.to_string(), "size": body.len(),
                "annotations": {"org.opencontainers.image.title": t}
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.test.hostile",
        "config": {"mediaType": media::OCI_EMPTY, "digest": Digest::sha256(b"{}").to_string(), "size": 2},
        "layers": layers,
    });
    let m = Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap());
    peer.client
        .push_manifest(&repo, &m, &[tag.parse::<Tag>().unwrap()])
        .await
        .unwrap();
    format!("{}/{repo}:{tag}", peer.host)
}

/// Titles that would write outside the directory, or twice, are refused
/// before anything is written.
async fn hostile_titles_are_refused(peer: &Peer) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (tag, titles, needle) in [
        ("dotdot", &["../escaped"][..], "leads out of the directory"),
        (
            "deep",
            &["a/../../escaped"][..],
            "leads out of the directory",
        ),
        ("absolute", &["/tmp/escaped-ocidist"][..], "absolute path"),
        ("twice", &["same", "same"][..], "two files are named"),
        ("nested", &["x", "x/y"][..], "inside another file"),
    ] {
        let reference = hostile(peer, tag, titles).await;
        fails(
            &ocidist(&["artifact", "pull", &reference, "-o", out.to_str().unwrap()]).await,
            needle,
        );
    }
    assert!(!dir.path().join("escaped").exists());
    assert!(!Path::new("/tmp/escaped-ocidist").exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.iter().all(|n| n == "out"), "{left:?}");
    // A symlink inside the output is not followed.
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(dir.path(), out.join("link")).unwrap();
    let reference = hostile(peer, "through-link", &["link/escaped"]).await;
    fails(
        &ocidist(&["artifact", "pull", &reference, "-o", out.to_str().unwrap()]).await,
        "not a directory",
    );
    assert!(!dir.path().join("escaped").exists());
}

/// `attach` and `referrers`: the native API on our server, the fallback
/// tag on docker-registry; oras sees the subject.
async fn attach_and_list(peer: &Peer) -> (String, String) {
    let repo: RepoName = "art/app".parse().unwrap();
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, 700, false);
    image.push(&peer.client, &repo, &[Tag::latest()]).await;
    let app = format!("{}/{repo}:latest", peer.host);
    let dir = tempfile::tempdir().unwrap();
    let sig = write(dir.path(), "sig.txt", b"signature");
    let sbom = write(dir.path(), "sbom.json", b"{}");
    let attached = json(&ok(&ocidist(&[
        "attach",
        "--json",
        "--artifact-type",
        "application/vnd.test.sig",
        &app,
        &sig,
    ])
    .await));
    assert_eq!(attached["subject"], image.manifest.digest().to_string());
    let sig_digest = attached["digest"].as_str().unwrap().to_owned();
    let sbom_digest = ok(&ocidist(&[
        "attach",
        "--artifact-type",
        "application/vnd.test.sbom",
        &app,
        &sbom,
    ])
    .await)
    .trim()
    .to_owned();

    let mut all = referrer_digests(&app, None).await;
    all.sort();
    let mut want = vec![sig_digest.clone(), sbom_digest.clone()];
    want.sort();
    assert_eq!(all, want);
    assert_eq!(
        referrer_digests(&app, Some("application/vnd.test.sbom")).await,
        [sbom_digest]
    );
    let text = ok(&ocidist(&[
        "referrers",
        "--artifact-type",
        "application/vnd.test.sig",
        &app,
    ])
    .await);
    assert_eq!(
        text,
        format!(
            "{sig_digest} application/vnd.test.sig {}\n",
            attached["size"]
        )
    );
    // The fallback tag exists exactly where the registry has no API.
    let fallback = Tag::referrers_fallback(image.manifest.digest()).to_string();
    let listed = tags(&format!("{}/{repo}", peer.host)).await;
    assert_eq!(listed.contains(&fallback), !peer.native, "{listed:?}");

    // oras reads the attached artifact and its subject.
    let seen = oras(
        dir.path(),
        &format!(
            "print(json.dumps(client.get_manifest('{}/{repo}@{sig_digest}')))",
            peer.host
        ),
    );
    let seen = json(&seen);
    assert_eq!(
        seen["subject"]["digest"],
        image.manifest.digest().to_string()
    );
    assert_eq!(
        seen["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "sig.txt"
    );

    if peer.native {
        // A referrer oras pushed (it does not keep the fallback tag, so
        // only where the API lists it) shows up too.
        write(dir.path(), "note.txt", b"by oras");
        let d = image.manifest.digest();
        oras(
            dir.path(),
            &format!(
                "s = oras.oci.Subject(mediaType={mt:?}, digest={d:?}, size={size})\n\
                 client.push(target='{}/{repo}:oras-note', files=['note.txt'], subject=s)",
                peer.host,
                mt = media::OCI_MANIFEST,
                d = d.to_string(),
                size = image.manifest.bytes.len()
            ),
        );
        assert_eq!(referrer_digests(&app, None).await.len(), 3);
    }
    (app, sig_digest)
}

/// `copy --with-referrers` carries the attached artifacts (and the
/// fallback tag where the target has no API); a plain copy does not.
async fn copy_carries_referrers(dst: &Peer, app: &str, sig: &str) {
    let source_referrers = {
        let mut d = referrer_digests(app, None).await;
        d.sort();
        d
    };
    let plain = format!("{}/plain/app:latest", dst.host);
    ok(&ocidist(&["copy", app, &plain]).await);
    assert!(referrer_digests(&plain, None).await.is_empty());

    let target = format!("{}/carried/app:latest", dst.host);
    let out = json(&ok(&ocidist(&[
        "copy",
        "--json",
        "--with-referrers",
        app,
        &target,
    ])
    .await));
    assert_eq!(out["referrers"], source_referrers.len());
    let mut carried = referrer_digests(&target, None).await;
    carried.sort();
    assert_eq!(carried, source_referrers);
    let subject = out["digest"].as_str().unwrap().parse::<Digest>().unwrap();
    let listed = tags(&format!("{}/carried/app", dst.host)).await;
    let fallback = Tag::referrers_fallback(&subject).to_string();
    assert_eq!(listed.contains(&fallback), !dst.native, "{listed:?}");
    // The artifacts' files came along: pull one back.
    let dir = tempfile::tempdir().unwrap();
    ok(&ocidist(&[
        "artifact",
        "pull",
        &format!("{}/carried/app@{sig}", dst.host),
        "-o",
        dir.path().to_str().unwrap(),
    ])
    .await);
    assert_eq!(
        std::fs::read(dir.path().join("sig.txt")).unwrap(),
        b"signature"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_and_referrers_on_our_server() {
    let (src, dst) = (ours().await, ours().await);
    files_both_ways(&src).await;
    hostile_titles_are_refused(&src).await;
    let (app, sig) = attach_and_list(&src).await;
    copy_carries_referrers(&dst, &app, &sig).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_and_referrers_on_docker_registry_use_the_fallback_tag() {
    let (src, dst) = (distribution().await, distribution().await);
    files_both_ways(&src).await;
    hostile_titles_are_refused(&src).await;
    let (app, sig) = attach_and_list(&src).await;
    copy_carries_referrers(&dst, &app, &sig).await;
}
