//! The Puller writes docker and OCI outputs that skopeo and umoci read
//! back with the same config digest.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_core::testkit::{ImageOptions, build_image};
use oci_core::{Platform, Reference, Registry, RepoName, Tag, media};
use oci_mem::MemRegistry;
use ocidist::puller::{Format, Puller};
use support::{run, skopeo_raw, skopeo_to_oci_config_digest, tar_image, tar_index};

struct Fixture {
    reg: Arc<MemRegistry>,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    Fixture {
        reg: Arc::new(MemRegistry::new()),
        dir: tempfile::tempdir().unwrap(),
    }
}

fn repo() -> RepoName {
    "library/app".parse().unwrap()
}

async fn pushed_index(reg: &dyn Registry) -> oci_core::testkit::Index {
    let index = tar_index();
    index.push_children(reg, &repo()).await;
    index.push_manifest(reg, &repo(), &[Tag::latest()]).await;
    index
}

fn reference() -> Reference {
    "localhost:5000/library/app:latest".parse().unwrap()
}

#[tokio::test]
async fn docker_archive_from_an_index_has_the_chosen_platform() {
    let f = fixture();
    let index = pushed_index(f.reg.as_ref()).await;
    let out = f.dir.path().join("app.tar");
    let arm: Platform = "linux/arm/v7".parse().unwrap();
    let report = Puller::new(f.reg.clone())
        .pull(&reference(), &arm, Format::Docker, &out, false)
        .await
        .unwrap();
    let want = &index.children[2];
    assert_eq!(
        report.resolved.index.as_ref().unwrap().digest(),
        index.digest()
    );
    assert_eq!(report.resolved.manifest.digest(), want.manifest.digest());
    assert_eq!(
        report.bytes,
        want.layers.iter().map(|l| l.size).sum::<u64>()
    );

    let archive = format!("docker-archive:{}", out.display());
    let config_digest = skopeo_to_oci_config_digest(&archive, &f.dir.path().join("oci"));
    assert_eq!(config_digest, want.config.digest.to_string());
    let inspected = run(Command::new("skopeo").args(["--insecure-policy", "inspect", &archive]));
    let v: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(v["Architecture"], "arm");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    // Nothing else was left beside the output.
    let names: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn oci_tar_and_directory_are_valid_layouts() {
    let f = fixture();
    let index = pushed_index(f.reg.as_ref()).await;
    let amd: Platform = "linux/amd64".parse().unwrap();
    let want = &index.children[0];
    let puller = Puller::new(f.reg.clone());

    let tar = f.dir.path().join("app.oci.tar");
    puller
        .pull(&reference(), &amd, Format::Oci, &tar, false)
        .await
        .unwrap();
    let raw = skopeo_raw(&format!("oci-archive:{}", tar.display()));
    assert_eq!(raw["config"]["digest"], want.config.digest.to_string());
    let cfg = skopeo_to_oci_config_digest(
        &format!("oci-archive:{}", tar.display()),
        &f.dir.path().join("a"),
    );
    assert_eq!(cfg, want.config.digest.to_string());

    let dir = f.dir.path().join("layout");
    puller
        .pull(&reference(), &amd, Format::OciDir, &dir, false)
        .await
        .unwrap();
    let raw = skopeo_raw(&format!("oci:{}:latest", dir.display()));
    assert_eq!(raw["config"]["digest"], want.config.digest.to_string());
    let stored =
        std::fs::read(dir.join("blobs/sha256").join(want.manifest.digest().hex())).unwrap();
    assert_eq!(
        stored, want.manifest.bytes,
        "manifest bytes are stored exactly as served"
    );
    let listed = run(Command::new("umoci").args(["ls", "--layout"]).arg(&dir));
    assert_eq!(listed.trim(), "latest");
}

#[tokio::test]
async fn docker_schema2_image_pulls_to_both_formats() {
    let f = fixture();
    let image = tar_image(&Platform::new("linux", "amd64", None), 3, 4096, true);
    image.push(f.reg.as_ref(), &repo(), &[Tag::latest()]).await;
    let puller = Puller::new(f.reg.clone());
    let any: Platform = "linux/s390x".parse().unwrap(); // a single image ignores the platform
    let out = f.dir.path().join("docker.tar");
    puller
        .pull(&reference(), &any, Format::Docker, &out, false)
        .await
        .unwrap();
    let cfg = skopeo_to_oci_config_digest(
        &format!("docker-archive:{}", out.display()),
        &f.dir.path().join("o"),
    );
    assert_eq!(cfg, image.config.digest.to_string());
    let out = f.dir.path().join("oci.tar");
    puller
        .pull(&reference(), &any, Format::Oci, &out, false)
        .await
        .unwrap();
    let raw = skopeo_raw(&format!("oci-archive:{}", out.display()));
    assert_eq!(raw["mediaType"], media::DOCKER_MANIFEST);
}

#[tokio::test]
async fn missing_platform_fails_and_leaves_nothing() {
    let f = fixture();
    pushed_index(f.reg.as_ref()).await;
    let out = f.dir.path().join("app.tar");
    let err = Puller::new(f.reg.clone())
        .pull(
            &reference(),
            &"windows/amd64".parse().unwrap(),
            Format::Docker,
            &out,
            false,
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("windows/amd64"), "{err}");
    assert!(
        err.message().contains("linux/arm/v7"),
        "names what exists: {err}"
    );
    assert_eq!(std::fs::read_dir(f.dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn existing_output_is_refused_unless_forced() {
    let f = fixture();
    pushed_index(f.reg.as_ref()).await;
    let out = f.dir.path().join("app.tar");
    std::fs::write(&out, b"precious").unwrap();
    let amd: Platform = "linux/amd64".parse().unwrap();
    let puller = Puller::new(f.reg.clone());
    let err = puller
        .pull(&reference(), &amd, Format::Docker, &out, false)
        .await
        .unwrap_err();
    assert!(err.message().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    puller
        .pull(&reference(), &amd, Format::Docker, &out, true)
        .await
        .unwrap();
    assert!(std::fs::metadata(&out).unwrap().len() > 1024);
}

#[tokio::test]
async fn a_blob_that_breaks_midway_leaves_no_output() {
    let f = fixture();
    let image = tar_image(&Platform::new("linux", "amd64", None), 2, 1024, false);
    // Push the manifest's blobs except the last layer, then the manifest
    // through a registry that does not check references: the pull must
    // fail on the missing layer and leave nothing behind.
    let reg = f.reg.as_ref();
    oci_core::testkit::push_bytes(reg, &repo(), media::OCI_CONFIG, &image.config_bytes).await;
    oci_core::testkit::push_bytes(reg, &repo(), media::OCI_LAYER, &image.layer_bytes[0]).await;
    let err = reg
        .push_manifest(&repo(), &image.manifest, &[Tag::latest()])
        .await
        .unwrap_err();
    assert!(err.is(oci_core::ErrorCode::ManifestBlobUnknown));
    oci_core::testkit::push_bytes(reg, &repo(), media::OCI_LAYER, &image.layer_bytes[1]).await;
    reg.push_manifest(&repo(), &image.manifest, &[Tag::latest()])
        .await
        .unwrap();
    reg.delete_blob(&repo(), &image.layers[1].digest)
        .await
        .unwrap();
    let out = f.dir.path().join("broken.tar");
    let err = Puller::new(f.reg.clone())
        .pull(&reference(), &Platform::host(), Format::Docker, &out, false)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(std::fs::read_dir(f.dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn zstd_layers_are_refused_for_docker_format() {
    let f = fixture();
    let mut image = build_image(&ImageOptions::default());
    for l in &mut image.layers {
        l.media_type = media::OCI_LAYER_ZSTD.to_owned();
    }
    let mut parsed: oci_core::ImageManifest =
        serde_json::from_slice(&image.manifest.bytes).unwrap();
    parsed.layers = image.layers.clone();
    image.manifest =
        oci_core::Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&parsed).unwrap());
    image.push(f.reg.as_ref(), &repo(), &[Tag::latest()]).await;
    let out = f.dir.path().join("z.tar");
    let err = Puller::new(f.reg.clone())
        .pull(&reference(), &Platform::host(), Format::Docker, &out, false)
        .await
        .unwrap_err();
    assert!(err.message().contains("zstd"), "{err}");
    assert!(!out.exists());
}

#[tokio::test]
async fn ranged_downloads_write_the_same_archive_as_single_streams() {
    let f = fixture();
    let image = tar_image(&Platform::new("linux", "amd64", None), 3, 300_000, false);
    image.push(f.reg.as_ref(), &repo(), &[Tag::latest()]).await;
    let amd: Platform = "linux/amd64".parse().unwrap();
    let one = f.dir.path().join("one.tar");
    let ranged = f.dir.path().join("ranged.tar");
    Puller::new(f.reg.clone())
        .ranged_above(None)
        .pull(&reference(), &amd, Format::Docker, &one, false)
        .await
        .unwrap();
    let counting = Arc::new(BoundedRanges {
        inner: f.reg.clone(),
        asked: AtomicUsize::new(0),
    });
    Puller::new(counting.clone())
        .ranged_above(Some(1))
        .pull(&reference(), &amd, Format::Docker, &ranged, false)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&one).unwrap(),
        std::fs::read(&ranged).unwrap()
    );
    // Each of the three layers came as bounded ranges.
    assert!(
        counting.asked.load(Ordering::SeqCst) >= 3,
        "{} bounded range requests",
        counting.asked.load(Ordering::SeqCst)
    );
}

/// Counts the range requests with an end: what parallel ranged downloads
/// ask for (a single stream asks for everything from byte 0).
struct BoundedRanges {
    inner: Arc<MemRegistry>,
    asked: AtomicUsize,
}

#[oci_core::async_trait]
impl Registry for BoundedRanges {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &oci_core::Digest,
        range: oci_core::RangeRequest,
    ) -> oci_core::Result<oci_core::BlobReader> {
        if range.end.is_some() {
            self.asked.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get_blob_range(repo, digest, range).await
    }
}

/// Serves one blob with its first byte changed, by every read.
struct Corrupting {
    inner: Arc<MemRegistry>,
    digest: oci_core::Digest,
}

impl Corrupting {
    fn spoil(
        &self,
        digest: &oci_core::Digest,
        mut reader: oci_core::BlobReader,
    ) -> oci_core::BlobReader {
        use futures::StreamExt;
        if digest == &self.digest {
            let mut first = true;
            reader.stream = reader
                .stream
                .map(move |chunk| {
                    let chunk = chunk?;
                    if !std::mem::take(&mut first) || chunk.is_empty() {
                        return Ok(chunk);
                    }
                    let mut spoilt = chunk.to_vec();
                    spoilt[0] ^= 0xff;
                    Ok(spoilt.into())
                })
                .boxed();
        }
        reader
    }
}

#[oci_core::async_trait]
impl Registry for Corrupting {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn get_blob(
        &self,
        repo: &RepoName,
        digest: &oci_core::Digest,
    ) -> oci_core::Result<oci_core::BlobReader> {
        let reader = self.inner.get_blob(repo, digest).await?;
        Ok(self.spoil(digest, reader))
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &oci_core::Digest,
        range: oci_core::RangeRequest,
    ) -> oci_core::Result<oci_core::BlobReader> {
        let reader = self.inner.get_blob_range(repo, digest, range).await?;
        Ok(self.spoil(digest, reader))
    }
}

#[tokio::test]
async fn a_layer_served_with_wrong_bytes_fails_the_pull_and_leaves_nothing() {
    let f = fixture();
    // Large enough to be written on the helper thread, which then checks
    // the digest; a registry that is not our client checks nothing.
    let image = tar_image(&Platform::new("linux", "amd64", None), 2, 3 << 20, false);
    image.push(f.reg.as_ref(), &repo(), &[Tag::latest()]).await;
    for (i, layer) in image.layers.iter().enumerate() {
        let reg = Arc::new(Corrupting {
            inner: f.reg.clone(),
            digest: layer.digest.clone(),
        });
        let out = f.dir.path().join(format!("bad{i}.tar"));
        let err = Puller::new(reg)
            .pull(&reference(), &Platform::host(), Format::Docker, &out, false)
            .await
            .unwrap_err();
        assert!(err.is(oci_core::ErrorCode::DigestInvalid), "{err}");
        assert_eq!(std::fs::read_dir(f.dir.path()).unwrap().count(), 0);
    }
}
