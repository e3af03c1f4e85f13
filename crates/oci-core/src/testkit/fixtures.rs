//! Content for tests: random blobs, OCI and Docker images, indexes over
//! several platforms, and artifacts that refer to a subject.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::RngCore;
use serde_json::json;

use super::must;
use crate::descriptor::{Descriptor, Extra, Platform};
use crate::digest::Digest;
use crate::manifest::{ImageIndex, ImageManifest, Manifest};
use crate::media;
use crate::reference::{RepoName, Tag};
use crate::registry::{Registry, bytes_stream};

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data.into()
}

/// Pushes `data` as one blob (monolithic, with its size) and returns its
/// descriptor with `media_type`.
pub async fn push_bytes(
    reg: &dyn Registry,
    repo: &RepoName,
    media_type: &str,
    data: &Bytes,
) -> Descriptor {
    let digest = Digest::sha256(data);
    let size = data.len() as u64;
    let pushed = must(
        reg.push_blob(
            repo,
            &digest,
            Some(size),
            bytes_stream(data.clone(), 16 * 1024),
        )
        .await,
        &format!("push blob {digest} to {repo}"),
    );
    assert_eq!(pushed.digest, digest, "push_blob to {repo}: wrong digest");
    assert_eq!(pushed.size, size, "push_blob to {repo}: wrong size");
    Descriptor::new(media_type, digest, size)
}

/// The shape of a test image.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// How many layers.
    pub layers: usize,
    /// The size of each layer in bytes.
    pub layer_size: usize,
    /// The platform its config names.
    pub platform: Platform,
    /// Docker schema2 media types instead of OCI ones.
    pub docker: bool,
}

impl Default for ImageOptions {
    fn default() -> ImageOptions {
        ImageOptions {
            layers: 2,
            layer_size: 1024,
            platform: Platform::new("linux", "amd64", None),
            docker: false,
        }
    }
}

/// An image: its manifest and every blob it references, with their bytes.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest.
    pub manifest: Manifest,
    /// The config's descriptor.
    pub config: Descriptor,
    /// The config's bytes.
    pub config_bytes: Bytes,
    /// The layers' descriptors, base first.
    pub layers: Vec<Descriptor>,
    /// The layers' bytes, in the same order.
    pub layer_bytes: Vec<Bytes>,
}

/// An [`Image`] that has been pushed.
pub type PushedImage = Image;

/// Builds an image of random layers without pushing anything.
pub fn build_image(options: &ImageOptions) -> Image {
    let (config_type, layer_type, manifest_type) = if options.docker {
        (
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP,
            media::DOCKER_MANIFEST,
        )
    } else {
        (media::OCI_CONFIG, media::OCI_LAYER, media::OCI_MANIFEST)
    };
    let layers: Vec<(&str, Bytes)> = (0..options.layers)
        .map(|_| (layer_type, random_bytes(options.layer_size)))
        .collect();
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, b)| Digest::sha256(b)).collect();
    let config = image_config(&options.platform, &diff_ids, ImageConfigExtra::default());
    image_of(manifest_type, config_type, config, layers)
}

/// What an image config holds besides its platform and layers.
#[derive(Debug, Clone, Default)]
pub struct ImageConfigExtra {
    /// The `config` object (`Cmd`, `Env`, ...); `{}` when `None`.
    pub config: Option<serde_json::Value>,
    /// The `history` entries; left out when empty.
    pub history: Vec<serde_json::Value>,
}

/// An image config with its fields in the order Go's image-spec types
/// write them, as real images have: tools that re-encode a config (skopeo
/// converting docker to OCI) then reproduce the same bytes and digest.
#[derive(serde::Serialize)]
struct GoConfig<'a> {
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    config: serde_json::Value,
    rootfs: RootFs,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<serde_json::Value>,
}

#[derive(serde::Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// The bytes of an image config for `platform` over layers whose
/// uncompressed digests are `diff_ids`, fields in Go's order.
pub fn image_config(platform: &Platform, diff_ids: &[Digest], extra: ImageConfigExtra) -> Bytes {
    json_bytes(&GoConfig {
        architecture: &platform.architecture,
        variant: platform.variant.as_deref(),
        os: &platform.os,
        config: extra.config.unwrap_or_else(|| json!({})),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
        },
        history: extra.history,
    })
}

/// Assembles an image of `manifest_type` from a config's bytes and each
/// layer's media type and bytes, without pushing anything.
pub fn image_of(
    manifest_type: &str,
    config_type: &str,
    config_bytes: Bytes,
    layers: Vec<(&str, Bytes)>,
) -> Image {
    let config = Descriptor::of(config_type, &config_bytes);
    let (layers, layer_bytes): (Vec<Descriptor>, Vec<Bytes>) = layers
        .into_iter()
        .map(|(media_type, bytes)| (Descriptor::of(media_type, &bytes), bytes))
        .unzip();
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_owned()),
        artifact_type: None,
        config: config.clone(),
        layers: layers.clone(),
        subject: None,
        annotations: None,
        extra: Extra::new(),
    };
    Image {
        manifest: Manifest::new(manifest_type, json_bytes(&manifest)),
        config,
        config_bytes,
        layers,
        layer_bytes,
    }
}

/// Serializes a fixture; the fixtures are plain data that always serialize.
fn json_bytes<T: serde::Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value)
        .unwrap_or_else(|e| panic!("testkit: cannot serialize a fixture: {e}"))
        .into()
}

impl Image {
    /// The manifest's descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.manifest.descriptor
    }

    /// The manifest's digest.
    pub fn digest(&self) -> &Digest {
        self.manifest.digest()
    }

    /// Pushes the config and the layers.
    pub async fn push_blobs(&self, reg: &dyn Registry, repo: &RepoName) {
        push_bytes(reg, repo, &self.config.media_type, &self.config_bytes).await;
        for (layer, bytes) in self.layers.iter().zip(&self.layer_bytes) {
            push_bytes(reg, repo, &layer.media_type, bytes).await;
        }
    }

    /// Pushes the manifest alone, pointing `tags` at it.
    pub async fn push_manifest(&self, reg: &dyn Registry, repo: &RepoName, tags: &[Tag]) {
        let pushed = must(
            reg.push_manifest(repo, &self.manifest, tags).await,
            &format!("push manifest {} to {repo}", self.digest()),
        );
        assert_eq!(
            pushed.digest,
            *self.digest(),
            "push_manifest to {repo}: wrong digest"
        );
    }

    /// Pushes the blobs, then the manifest with `tags`.
    pub async fn push(&self, reg: &dyn Registry, repo: &RepoName, tags: &[Tag]) {
        self.push_blobs(reg, repo).await;
        self.push_manifest(reg, repo, tags).await;
    }
}

/// The tags a push with an optional tag names.
fn tags_of(tag: Option<&Tag>) -> Vec<Tag> {
    tag.into_iter().cloned().collect()
}

/// Pushes an OCI image (a config and two layers), tagged `tag` if given.
pub async fn push_image(reg: &dyn Registry, repo: &RepoName, tag: Option<&Tag>) -> PushedImage {
    let image = build_image(&ImageOptions::default());
    image.push(reg, repo, &tags_of(tag)).await;
    image
}

/// Pushes a Docker schema2 image, tagged `tag` if given.
pub async fn push_docker_image(
    reg: &dyn Registry,
    repo: &RepoName,
    tag: Option<&Tag>,
) -> PushedImage {
    let image = build_image(&ImageOptions {
        docker: true,
        ..ImageOptions::default()
    });
    image.push(reg, repo, &tags_of(tag)).await;
    image
}

/// The platforms of a test index: linux/amd64, linux/arm64, linux/arm/v7.
pub fn platforms() -> Vec<Platform> {
    vec![
        Platform::new("linux", "amd64", None),
        Platform::new("linux", "arm64", None),
        Platform::new("linux", "arm", Some("v7")),
    ]
}

/// An index and its child images.
#[derive(Debug, Clone)]
pub struct Index {
    /// The index manifest.
    pub manifest: Manifest,
    /// One image per platform of [`platforms`], in the index's order.
    pub children: Vec<Image>,
}

/// An [`Index`] that has been pushed.
pub type PushedIndex = Index;

/// Builds an index over one image per platform of [`platforms`] without
/// pushing anything (an OCI index, or a Docker manifest list of Docker
/// images when `docker`).
pub fn build_index(docker: bool) -> Index {
    let children: Vec<(Image, Platform)> = platforms()
        .into_iter()
        .map(|platform| {
            let image = build_image(&ImageOptions {
                layers: 1,
                layer_size: 512,
                platform: platform.clone(),
                docker,
            });
            (image, platform)
        })
        .collect();
    let media_type = if docker {
        media::DOCKER_MANIFEST_LIST
    } else {
        media::OCI_INDEX
    };
    index_of(media_type, children)
}

/// Assembles an index of `media_type` listing each child image with its
/// platform, in order, without pushing anything.
pub fn index_of(media_type: &str, children: Vec<(Image, Platform)>) -> Index {
    let (children, platforms): (Vec<Image>, Vec<Platform>) = children.into_iter().unzip();
    let manifests = children
        .iter()
        .zip(platforms)
        .map(|(child, platform)| {
            let mut d = Descriptor::new(
                child.manifest.media_type(),
                child.digest().clone(),
                child.descriptor().size,
            );
            d.platform = Some(platform);
            d
        })
        .collect();
    let index = ImageIndex {
        media_type: Some(media_type.to_owned()),
        manifests,
        ..ImageIndex::empty()
    };
    Index {
        manifest: Manifest::new(media_type, json_bytes(&index)),
        children,
    }
}

impl Index {
    /// The index's digest.
    pub fn digest(&self) -> &Digest {
        self.manifest.digest()
    }

    /// Pushes every child image, untagged.
    pub async fn push_children(&self, reg: &dyn Registry, repo: &RepoName) {
        for child in &self.children {
            child.push(reg, repo, &[]).await;
        }
    }

    /// Pushes the index manifest alone, pointing `tags` at it.
    pub async fn push_manifest(&self, reg: &dyn Registry, repo: &RepoName, tags: &[Tag]) {
        let pushed = must(
            reg.push_manifest(repo, &self.manifest, tags).await,
            &format!("push index {} to {repo}", self.digest()),
        );
        assert_eq!(pushed.digest, *self.digest(), "push index: wrong digest");
    }
}

/// Pushes an OCI index over three platform images, tagged `tag` if given.
pub async fn push_index(reg: &dyn Registry, repo: &RepoName, tag: Option<&Tag>) -> PushedIndex {
    let index = build_index(false);
    index.push_children(reg, repo).await;
    index.push_manifest(reg, repo, &tags_of(tag)).await;
    index
}

/// An artifact: a manifest with an `artifactType` and a `subject`, the
/// empty config, and one blob of content.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// The content blob's descriptor.
    pub blob: Descriptor,
    /// The content blob's bytes.
    pub blob_bytes: Bytes,
    /// The annotations the manifest carries.
    pub annotations: BTreeMap<String, String>,
}

/// The annotation every [`build_artifact`] carries (a random value).
pub const ARTIFACT_ANNOTATION: &str = "org.example.testkit";

/// The bytes of the OCI empty descriptor's content.
const EMPTY_JSON: &[u8] = b"{}";

/// Builds an artifact of `artifact_type` referring to `subject`, with one
/// annotation, without pushing anything.
pub fn build_artifact(subject: &Descriptor, artifact_type: &str) -> Artifact {
    let blob_bytes = random_bytes(256);
    let blob = Descriptor::of(media::OCTET_STREAM, &blob_bytes);
    let annotations = BTreeMap::from([(ARTIFACT_ANNOTATION.to_owned(), super::random_hex(4))]);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact_type.to_owned()),
        config: Descriptor::of(media::OCI_EMPTY, EMPTY_JSON),
        layers: vec![blob.clone()],
        subject: Some(Descriptor::new(
            subject.media_type.clone(),
            subject.digest.clone(),
            subject.size,
        )),
        annotations: Some(annotations.clone()),
        extra: Extra::new(),
    };
    Artifact {
        manifest: Manifest::new(media::OCI_MANIFEST, json_bytes(&manifest)),
        blob,
        blob_bytes,
        annotations,
    }
}

impl Artifact {
    /// The artifact manifest's digest.
    pub fn digest(&self) -> &Digest {
        self.manifest.digest()
    }

    /// Pushes the empty config, the content blob and the manifest.
    pub async fn push(&self, reg: &dyn Registry, repo: &RepoName) {
        push_bytes(reg, repo, media::OCI_EMPTY, &Bytes::from_static(EMPTY_JSON)).await;
        push_bytes(reg, repo, &self.blob.media_type, &self.blob_bytes).await;
        let pushed = must(
            reg.push_manifest(repo, &self.manifest, &[]).await,
            &format!("push artifact {} to {repo}", self.digest()),
        );
        assert_eq!(pushed.digest, *self.digest(), "push artifact: wrong digest");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ParsedManifest;

    #[test]
    fn images_are_valid_and_reference_their_blobs() {
        for docker in [false, true] {
            let image = build_image(&ImageOptions {
                docker,
                layers: 3,
                ..ImageOptions::default()
            });
            let parsed = image.manifest.parse().unwrap();
            assert_eq!(parsed.blobs().len(), 4);
            assert_eq!(parsed.blobs()[0], &image.config);
            assert!(image.config.digest.matches(&image.config_bytes));
            for (layer, bytes) in image.layers.iter().zip(&image.layer_bytes) {
                assert!(layer.digest.matches(bytes));
            }
            let want = if docker {
                media::DOCKER_MANIFEST
            } else {
                media::OCI_MANIFEST
            };
            assert_eq!(image.manifest.media_type(), want);
        }
        let a = build_image(&ImageOptions::default());
        let b = build_image(&ImageOptions::default());
        assert_ne!(a.digest(), b.digest(), "every image is new");
    }

    #[test]
    fn an_index_lists_its_children_with_their_platforms() {
        let index = build_index(false);
        let parsed = index.manifest.parse().unwrap();
        let children = parsed.children();
        assert_eq!(children.len(), 3);
        for ((d, child), platform) in children.iter().zip(&index.children).zip(platforms()) {
            assert_eq!(d.digest, *child.digest());
            assert_eq!(d.platform.as_ref(), Some(&platform));
            let config: serde_json::Value = serde_json::from_slice(&child.config_bytes).unwrap();
            assert_eq!(config["architecture"], platform.architecture);
        }
        let list = build_index(true);
        assert_eq!(list.manifest.media_type(), media::DOCKER_MANIFEST_LIST);
        assert_eq!(
            list.children[0].manifest.media_type(),
            media::DOCKER_MANIFEST
        );
    }

    #[test]
    fn an_artifact_names_its_subject_and_type() {
        let subject = build_image(&ImageOptions::default());
        let artifact = build_artifact(subject.descriptor(), "application/vnd.example.sig");
        let ParsedManifest::Image(parsed) = artifact.manifest.parse().unwrap() else {
            panic!("an artifact is an image manifest");
        };
        assert_eq!(parsed.subject.unwrap().digest, *subject.digest());
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.example.sig")
        );
        assert_eq!(parsed.config.media_type, media::OCI_EMPTY);
        assert_eq!(parsed.config.size, 2);
        assert_eq!(parsed.layers, [artifact.blob]);
    }

    #[test]
    fn a_config_keeps_gos_field_order() {
        let platform = Platform::new("linux", "arm", Some("v7"));
        let layer = Digest::sha256(b"layer");
        let extra = ImageConfigExtra {
            config: Some(json!({"Cmd": ["/bin/true"]})),
            history: vec![json!({"created_by": "test"})],
        };
        let config = image_config(&platform, std::slice::from_ref(&layer), extra);
        let want = format!(
            r#"{{"architecture":"arm","variant":"v7","os":"linux","config":{{"Cmd":["/bin/true"]}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"history":[{{"created_by":"test"}}]}}"#
        );
        assert_eq!(std::str::from_utf8(&config).unwrap(), want);
    }

    #[test]
    fn fresh_names_differ() {
        let a = super::super::fresh_repo("x");
        let b = super::super::fresh_repo("x");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("testkit/x-"));
    }
}
