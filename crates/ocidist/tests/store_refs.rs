//! Stores without a server: `copy`, `pull`, `push` (and `tags`,
//! `manifest`, `catalog`, `referrers`) take `STORE#REPO[:TAG]` where they
//! take a registry reference, and read or write the store itself. Against
//! the real S3 server (`s3s-fs`, installed by `.ci/install-deps`), a layout
//! store directory and our own server: images move registry -> bucket ->
//! layout directory -> registry with their digests unchanged, a bucket is
//! pulled to a tarball skopeo and podman read, a tarball pushed into a
//! bucket is served by `ocidist serve --storage s3://…`, and bad forms fail
//! in one line saying what to write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use oci_client::{Client, ClientOptions};
use oci_core::{Digest, Platform, Registry, RepoName, Tag};
use oci_testbed::s3::S3Server;
use support::{
    Served, fails, ocidist_with, ok, podman_load, run, serve, serve_env, skopeo_raw,
    skopeo_to_oci_config_digest, tar_image, tar_index,
};

/// An S3 server and our in-memory server, with what the CLI needs to
/// reach them.
struct Setup {
    s3: S3Server,
    server: Served,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let (s3, server) =
            tokio::task::spawn_blocking(|| (S3Server::start().unwrap(), serve(&[]).unwrap()))
                .await
                .unwrap();
        Setup {
            s3,
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The S3 server's environment plus no stored credentials.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.s3.env();
        env.push((
            "DOCKER_CONFIG".to_owned(),
            "/nonexistent-ocidist-test".to_owned(),
        ));
        env
    }

    /// Runs `ocidist ARGS` with the S3 server's environment.
    async fn ocidist(&self, args: &[&str]) -> Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ocidist_with(args, &env, None).await
    }

    /// A client of our server.
    fn client(&self) -> Client {
        Client::new(&self.server.host, ClientOptions::default()).unwrap()
    }

    /// `s3://ocidist/<prefix>`.
    fn bucket(&self, prefix: &str) -> String {
        self.s3.url(prefix)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// The exact manifest bytes `ocidist manifest --raw` reads at `reference`.
async fn raw_manifest(setup: &Setup, reference: &str) -> Vec<u8> {
    let out = setup.ocidist(&["manifest", "--raw", reference]).await;
    ok(&out);
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_registry_to_bucket_to_layout_dir_and_back_keeps_every_digest() {
    let setup = Setup::start().await;
    let index = tar_index();
    let repo: RepoName = "demo/app".parse().unwrap();
    let client = setup.client();
    index.push_children(&client, &repo).await;
    index
        .push_manifest(&client, &repo, &["v1".parse().unwrap()])
        .await;
    let want = index.digest().to_string();
    let host = &setup.server.host;

    // Registry -> bucket (the tag defaults to the source's).
    let in_bucket = format!("{}#mirrored/app", setup.bucket("cli"));
    let out = setup
        .ocidist(&["copy", &format!("{host}/demo/app:v1"), &in_bucket])
        .await;
    assert_eq!(ok(&out).trim(), want);
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains(&format!("to {in_bucket}:v1: ")),
        "the target is shown as written: {told}"
    );
    assert_eq!(
        raw_manifest(&setup, &format!("{in_bucket}:v1")).await,
        index.manifest.bytes.to_vec()
    );
    for child in &index.children {
        let by_digest = format!("{in_bucket}@{}", child.manifest.digest());
        assert_eq!(
            raw_manifest(&setup, &by_digest).await,
            child.manifest.bytes.to_vec()
        );
    }
    assert_eq!(
        ok(&setup.ocidist(&["tags", &in_bucket]).await),
        "v1\n",
        "tags lists the bucket's repository"
    );
    assert_eq!(
        ok(&setup.ocidist(&["catalog", &setup.bucket("cli")]).await),
        "mirrored/app\n"
    );
    let tagged = format!("{in_bucket}:v1");
    let inspected = ok(&setup.ocidist(&["inspect", "--json", &tagged]).await);
    let v: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(v["reference"], tagged, "shown as written");
    assert_eq!(v["digest"], want.as_str());

    // Bucket -> layout store directory (created), as JSON.
    let layouts = setup.path("layouts");
    let in_dir = format!("{layouts}#local/app:v2");
    let out = setup
        .ocidist(&["copy", "--json", &format!("{in_bucket}:v1"), &in_dir])
        .await;
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["digest"], want.as_str());
    assert_eq!(v["source"], format!("{in_bucket}:v1"));
    assert_eq!(v["target"], in_dir);
    assert_eq!(v["copied"], 9, "3 configs and 6 layers: {v}");
    // Each repository of the store is an OCI layout skopeo reads.
    let arm = &index.children[1];
    assert_eq!(
        skopeo_raw(&format!("oci:{layouts}/local/app:v2")),
        serde_json::from_slice::<serde_json::Value>(&index.manifest.bytes).unwrap()
    );
    assert_eq!(
        ok(&setup
            .ocidist(&[
                "digest",
                "--platform",
                "linux/arm64",
                &format!("{layouts}#local/app:v2")
            ])
            .await)
        .trim(),
        arm.manifest.digest().to_string()
    );

    // Layout directory -> registry.
    let out = setup
        .ocidist(&["copy", &in_dir, &format!("{host}/back/app:v3")])
        .await;
    assert_eq!(ok(&out).trim(), want);
    let back_repo: RepoName = "back/app".parse().unwrap();
    let tagged = client
        .resolve_tag(&back_repo, &"v3".parse().unwrap())
        .await
        .unwrap();
    let back = client
        .get_manifest(&back_repo, &tagged.digest)
        .await
        .unwrap();
    assert_eq!(back.bytes, index.manifest.bytes);
    for child in &index.children {
        for layer in &child.layers {
            let blob = client
                .get_blob(&"back/app".parse().unwrap(), &layer.digest)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(Digest::sha256(&blob), layer.digest);
        }
    }

    // Within one bucket, blobs mount instead of being copied again.
    let out = setup
        .ocidist(&[
            "copy",
            "--json",
            &format!("{in_bucket}:v1"),
            &format!("{}#other/app", setup.bucket("cli")),
        ])
        .await;
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        (v["copied"].as_u64(), v["mounted"].as_u64()),
        (Some(0), Some(9))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_from_a_bucket_writes_a_tarball_skopeo_and_podman_read() {
    let setup = Setup::start().await;
    let image = tar_image(&Platform::new("linux", "arm64", None), 2, 3000, false);
    let repo: RepoName = "demo/hello".parse().unwrap();
    image
        .push(&setup.client(), &repo, &["1.0".parse().unwrap()])
        .await;
    let in_bucket = format!("{}#demo/hello:1.0", setup.bucket("pull"));
    ok(&setup
        .ocidist(&[
            "copy",
            &format!("{}/demo/hello:1.0", setup.server.host),
            &in_bucket,
        ])
        .await);

    let tar = setup.path("hello.tar");
    let out = setup
        .ocidist(&["pull", "--no-progress", &in_bucket, "-o", &tar])
        .await;
    assert_eq!(ok(&out).trim(), image.manifest.digest().to_string());
    let archive = format!("docker-archive:{tar}");
    let inspected = run(Command::new("skopeo").args(["--insecure-policy", "inspect", &archive]));
    let v: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        skopeo_to_oci_config_digest(&archive, &setup.dir.path().join("oci")),
        image.config.digest.to_string()
    );
    // Named as a local image, not by the bucket's URL.
    let (id, name) = podman_load(Path::new(&tar), setup.dir.path());
    assert_eq!(id, image.config.digest.hex());
    assert_eq!(name, "localhost/demo/hello:1.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tarball_pushed_into_a_bucket_is_served_by_serve_storage_s3() {
    let setup = Setup::start().await;
    let image = tar_image(&Platform::new("linux", "amd64", None), 3, 2000, true);
    let repo: RepoName = "src/app".parse().unwrap();
    image.push(&setup.client(), &repo, &[Tag::latest()]).await;
    let tar = setup.path("app.tar");
    ok(&setup
        .ocidist(&[
            "pull",
            "--no-progress",
            "--platform",
            "linux/amd64",
            &format!("{}/src/app", setup.server.host),
            "-o",
            &tar,
        ])
        .await);

    let bucket = setup.bucket("pushed");
    let out = setup
        .ocidist(&[
            "push",
            "--no-progress",
            &tar,
            &format!("{bucket}#team/app:v3"),
        ])
        .await;
    let pushed = ok(&out).trim().to_owned();
    assert_eq!(pushed, image.manifest.digest().to_string());

    let env = setup.env();
    let served =
        tokio::task::spawn_blocking(move || serve_env(&["--storage", &bucket], &env).unwrap())
            .await
            .unwrap();
    let again = setup.path("again.tar");
    let out = setup
        .ocidist(&[
            "pull",
            "--no-progress",
            &format!("{}/team/app:v3", served.host),
            "-o",
            &again,
        ])
        .await;
    assert_eq!(ok(&out).trim(), pushed);
    assert_eq!(
        skopeo_to_oci_config_digest(
            &format!("docker-archive:{again}"),
            &setup.dir.path().join("oci")
        ),
        image.config.digest.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_with_referrers_carries_them_into_a_bucket() {
    let setup = Setup::start().await;
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, 1000, false);
    let repo: RepoName = "signed/app".parse().unwrap();
    image.push(&setup.client(), &repo, &[Tag::latest()]).await;
    let source = format!("{}/signed/app:latest", setup.server.host);
    let sig = setup.path("sig.json");
    std::fs::write(&sig, br#"{"signed":true}"#).unwrap();
    let attached = ok(&setup
        .ocidist(&[
            "attach",
            &source,
            "--artifact-type",
            "application/vnd.example.signature",
            &sig,
        ])
        .await)
    .trim()
    .to_owned();

    let in_bucket = format!("{}#signed/app", setup.bucket("refs"));
    let out = setup
        .ocidist(&["copy", "--json", "--with-referrers", &source, &in_bucket])
        .await;
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["referrers"], 1, "{v}");
    let listed = ok(&setup
        .ocidist(&["referrers", &format!("{in_bucket}:latest")])
        .await);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.starts_with(&format!("{attached} application/vnd.example.signature ")),
        "{listed}"
    );
    // The referrer's file comes back out of the bucket.
    let out_dir = setup.path("sig-out");
    ok(&setup
        .ocidist(&[
            "artifact",
            "pull",
            &format!("{in_bucket}@{attached}"),
            "-o",
            &out_dir,
        ])
        .await);
    assert_eq!(
        std::fs::read(Path::new(&out_dir).join("sig.json")).unwrap(),
        br#"{"signed":true}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_in_the_bucket_fails_the_pull() {
    let setup = Setup::start().await;
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, 4000, false);
    let repo: RepoName = "bad/app".parse().unwrap();
    image.push(&setup.client(), &repo, &[Tag::latest()]).await;
    let in_bucket = format!("{}#bad/app", setup.bucket("corrupt"));
    ok(&setup
        .ocidist(&[
            "copy",
            &format!("{}/bad/app", setup.server.host),
            &in_bucket,
        ])
        .await);
    // Flip a byte of the layer's object behind the store's back.
    let layer = &image.layers[0].digest;
    let data = setup
        .s3
        .bucket_dir()
        .join("corrupt/blobs/sha256")
        .join(layer.hex())
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let tar = setup.path("bad.tar");
    let out = setup
        .ocidist(&[
            "pull",
            "--no-progress",
            &format!("{in_bucket}:latest"),
            "-o",
            &tar,
        ])
        .await;
    fails(&out, "digest");
    assert!(!Path::new(&tar).exists(), "nothing unverified is written");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_store_references_and_a_missing_bucket_fail_in_one_line() {
    let setup = Setup::start().await;
    let host = &setup.server.host;
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, 100, false);
    image
        .push(
            &setup.client(),
            &"x/y".parse().unwrap(),
            &["1".parse().unwrap()],
        )
        .await;
    let source = format!("{host}/x/y:1");
    let bucket = setup.bucket("p");
    for (args, says, code) in [
        (
            vec!["copy", source.as_str(), bucket.as_str()],
            format!("write {bucket}#REPO[:TAG]"),
            2,
        ),
        (
            vec!["pull", "ftp://bucket/p#x/y:1"],
            "ftp:// stores are not supported".to_owned(),
            2,
        ),
        (
            vec!["copy", source.as_str(), "memory://#x/y"],
            "gone when the command ends".to_owned(),
            2,
        ),
        (
            vec!["tags", "s3://ocidist/p#x/y:1"],
            "give a repository only".to_owned(),
            2,
        ),
        (
            vec!["manifest", "s3://ocidist/p#Bad/Name"],
            "is not REPO[:TAG][@DIGEST]".to_owned(),
            2,
        ),
        // A side's registry flags on a store side are refused, not ignored.
        (
            vec![
                "copy",
                "--src-username",
                "u",
                "--src-password",
                "p",
                "s3://ocidist/p#x/y:1",
                source.as_str(),
            ],
            "--src-username is for a registry, but s3://ocidist/p#x/y:1 is a store".to_owned(),
            2,
        ),
        (
            vec![
                "copy",
                "--dest-insecure",
                source.as_str(),
                "s3://ocidist/p#x/y:1",
            ],
            "drop --dest-insecure".to_owned(),
            2,
        ),
    ] {
        let out = setup.ocidist(&args).await;
        fails(&out, &says);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }

    // A directory that is not there is not created by reading it.
    let missing = setup.path("no-such-store");
    let out = setup
        .ocidist(&[
            "pull",
            &format!("{missing}#x/y:1"),
            "-o",
            &setup.path("o.tar"),
        ])
        .await;
    fails(&out, &format!("there is no store at {missing}"));
    assert!(!Path::new(&missing).exists());

    // A layout directory a server holds is refused by its lock, saying
    // what to do; a bare directory is no registry host.
    let held = setup.path("held");
    let holder = {
        let held = held.clone();
        tokio::task::spawn_blocking(move || serve(&["--storage", &held]).unwrap())
            .await
            .unwrap()
    };
    let out = setup.ocidist(&["tags", &format!("{held}#x/y")]).await;
    fails(&out, "is open in another process");
    fails(&out, "go through that server");
    drop(holder);
    let out = setup.ocidist(&["catalog", &held]).await;
    fails(&out, &format!("write {held}#"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        ok(&setup.ocidist(&["catalog", &format!("{held}#")]).await),
        ""
    );

    // A bucket the S3 server does not have: told before anything is
    // read or written, and not made by the attempt (s3s-fs would create
    // it on the first write).
    let in_bucket = format!("{bucket}#x/y:1");
    ok(&setup.ocidist(&["copy", &source, &in_bucket]).await);
    for args in [
        vec!["manifest", "s3://no-such-bucket/p#x/y:1"],
        vec!["copy", in_bucket.as_str(), "s3://no-such-bucket/p#x/y"],
    ] {
        let out = setup.ocidist(&args).await;
        fails(&out, "the S3 bucket no-such-bucket does not exist");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
    assert!(!setup.s3.root().join("data/no-such-bucket").exists());
    // Credentials the S3 server refuses.
    let mut env = setup.env();
    env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY".into(), "wrong".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = ocidist_with(&["tags", &format!("{bucket}#x/y")], &env, None).await;
    fails(&out, "refused the credentials");
    assert_eq!(out.status.code(), Some(4));

    // Something that is not in the store.
    let out = setup
        .ocidist(&["manifest", &format!("{bucket}#x/z:1")])
        .await;
    fails(&out, &format!("repository x/z not found on {bucket}"));
    assert_eq!(out.status.code(), Some(3));
    let out = setup
        .ocidist(&["manifest", &format!("{bucket}#x/y:2")])
        .await;
    fails(
        &out,
        &format!("tag 2 not found in {bucket}/x/y (it has: 1)"),
    );
}
