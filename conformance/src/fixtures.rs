//! Random content for the checks: blobs, image manifests, indexes and
//! artifacts that refer to a subject. Every call makes fresh content, so
//! digests never collide across checks or runs.

use bytes::Bytes;
use oci_core::testkit::{self, ImageConfigExtra};
use oci_core::{Algorithm, Digest, Manifest, Platform, media};
use serde_json::{Value, json};

/// A blob and its sha256 digest.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The content.
    pub data: Bytes,
    /// Its digest.
    pub digest: Digest,
}

impl Blob {
    /// A blob holding `data`, digested with sha256.
    pub fn new(data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        let digest = Digest::sha256(&data);
        Blob { data, digest }
    }

    /// A blob of `len` random bytes.
    pub fn random(len: usize) -> Blob {
        Blob::new(random_bytes(len))
    }

    /// The OCI empty blob `{}` that artifacts use as their config.
    pub fn empty_json() -> Blob {
        Blob::new(Bytes::from_static(b"{}"))
    }

    /// The same content digested with another algorithm.
    pub fn digest_with(&self, algorithm: Algorithm) -> Digest {
        Digest::of(algorithm, &self.data)
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// A descriptor JSON object for this blob.
    pub fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest.to_string(), "size": self.size()})
    }
}

pub use oci_core::testkit::random_bytes;

/// A short random lower-case hex string, for unique names.
pub fn random_suffix() -> String {
    testkit::random_hex(4)
}

/// An image: a config blob, layer blobs and the manifest naming them.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config blob.
    pub config: Blob,
    /// The layer blobs.
    pub layers: Vec<Blob>,
    /// The manifest.
    pub manifest: Manifest,
}

impl Image {
    /// An OCI linux/amd64 image with two random layers.
    pub fn random() -> Image {
        let layers = vec![
            (media::OCI_LAYER, random_bytes(2048)),
            (media::OCI_LAYER, random_bytes(1500)),
        ];
        let diff_ids: Vec<Digest> = layers.iter().map(|(_, b)| Digest::sha256(b)).collect();
        let platform = Platform::new("linux", "amd64", None);
        let config = testkit::image_config(&platform, &diff_ids, ImageConfigExtra::default());
        let image = testkit::image_of(media::OCI_MANIFEST, media::OCI_CONFIG, config, layers);
        Image {
            config: Blob::new(image.config_bytes),
            layers: image.layer_bytes.into_iter().map(Blob::new).collect(),
            manifest: image.manifest,
        }
    }

    /// An artifact manifest of `artifact_type` whose subject is `subject`:
    /// the empty config, one random layer and one annotation
    /// ([`testkit::ARTIFACT_ANNOTATION`]).
    pub fn artifact(subject: &Manifest, artifact_type: &str) -> Image {
        let artifact = testkit::build_artifact(&subject.descriptor, artifact_type);
        Image {
            config: Blob::empty_json(),
            layers: vec![Blob::new(artifact.blob_bytes)],
            manifest: artifact.manifest,
        }
    }

    /// Every blob the manifest names, config first.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }
}

/// The artifact type [`index`] gives an index that has a subject.
pub const INDEX_ARTIFACT_TYPE: &str = "application/vnd.example.index-artifact";

/// An OCI index listing `children`, with an optional subject (and then
/// the artifact type [`INDEX_ARTIFACT_TYPE`]).
pub fn index(children: &[&Manifest], subject: Option<&Manifest>) -> Manifest {
    let manifests: Vec<Value> = children
        .iter()
        .map(|m| {
            let mut d = descriptor_of(m);
            d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            d
        })
        .collect();
    let mut body = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    if let Some(s) = subject {
        body["subject"] = descriptor_of(s);
        body["artifactType"] = json!(INDEX_ARTIFACT_TYPE);
    }
    manifest_of(media::OCI_INDEX, &body)
}

/// A descriptor JSON object naming a manifest.
pub fn descriptor_of(m: &Manifest) -> Value {
    json!({"mediaType": m.media_type(), "digest": m.digest().to_string(), "size": m.bytes.len()})
}

fn manifest_of(media_type: &str, body: &Value) -> Manifest {
    Manifest::new(media_type, body.to_string().into_bytes())
}
