//! [`Summary`]: what `ocidist inspect` shows of a reference — the manifest
//! it names, the platforms of an index, and one image's config facts
//! (created, platform, layer count and size).
//!
//! The JSON form is stable: every key is always present, `null` when it
//! does not apply.
//!
//! ```json
//! {
//!   "reference": "127.0.0.1:5000/demo/hello:latest",
//!   "digest": "sha256:…",
//!   "mediaType": "application/vnd.oci.image.index.v1+json",
//!   "size": 489,
//!   "platforms": [
//!     {"platform": "linux/amd64", "digest": "sha256:…", "mediaType": "…", "size": 401}
//!   ],
//!   "image": {
//!     "digest": "sha256:…", "mediaType": "…", "artifactType": null,
//!     "config": {"digest": "sha256:…", "mediaType": "…", "size": 254},
//!     "created": "2024-01-01T00:00:00Z", "os": "linux", "architecture": "amd64",
//!     "variant": null, "layers": 1, "layersSize": 2048
//!   }
//! }
//! ```
//!
//! `platforms` is `null` for a single image; `image` is `null` when an
//! index has no image for the platform (only when none was asked for).

use oci_core::{Descriptor, ParsedManifest, Platform, Reference, Result, media};
use serde::Serialize;

use crate::puller::{Puller, Resolved};

/// A reference's summary (see the module docs for the JSON shape).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The reference as resolved (`latest` filled in when implied).
    pub reference: String,
    /// The digest of the manifest the reference names.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// An index's children (`None` for a single image).
    pub platforms: Option<Vec<PlatformEntry>>,
    /// The image (the platform's, for an index).
    pub image: Option<ImageSummary>,
}

/// One child of an index.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformEntry {
    /// `os/arch[/variant]`, or `unknown` when the entry names none.
    pub platform: String,
    /// The child manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

/// One image manifest and what its config says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The image manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The manifest's `artifactType`, if any.
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: BlobEntry,
    /// The config's `created` time, as written.
    pub created: Option<String>,
    /// The config's `os`.
    pub os: Option<String>,
    /// The config's `architecture`.
    pub architecture: Option<String>,
    /// The config's `variant`.
    pub variant: Option<String>,
    /// How many layers.
    pub layers: usize,
    /// Their total size in bytes (compressed, as stored).
    pub layers_size: u64,
}

/// A blob's descriptor, reduced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobEntry {
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

impl From<&Descriptor> for BlobEntry {
    fn from(d: &Descriptor) -> BlobEntry {
        BlobEntry {
            digest: d.digest.to_string(),
            media_type: d.media_type.clone(),
            size: d.size,
        }
    }
}

/// The config fields a summary shows.
#[derive(Debug, Default, serde::Deserialize)]
struct ConfigFacts {
    created: Option<String>,
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

/// Whether a config media type is an image config (docker or OCI).
pub fn is_image_config(media_type: &str) -> bool {
    media_type == media::OCI_CONFIG || media_type == media::DOCKER_CONFIG
}

impl Puller {
    /// Summarises `reference`. An index's image is chosen for `platform`,
    /// which a single image must match too; with `None` an index's image
    /// is the host's, and its absence is not an error.
    pub async fn summary(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Summary> {
        let top = self.manifest(reference).await?;
        let shown = match reference.manifest_ref() {
            oci_core::ManifestRef::Tag(t) if reference.digest().is_none() => reference.with_tag(t),
            _ => reference.clone(),
        };
        let mut summary = Summary {
            reference: shown.to_string(),
            digest: top.digest().to_string(),
            media_type: top.media_type().to_owned(),
            size: top.bytes.len() as u64,
            platforms: None,
            image: None,
        };
        let resolved = match top.parse()? {
            ParsedManifest::Image(image) => {
                let r = Resolved {
                    index: None,
                    manifest: top,
                    image,
                };
                if let Some(p) = platform {
                    self.check_platform(reference, &r, p).await?;
                }
                Some(r)
            }
            ParsedManifest::Index(index) => {
                summary.platforms = Some(
                    index
                        .manifests
                        .iter()
                        .map(|d| PlatformEntry {
                            platform: d
                                .platform
                                .as_ref()
                                .map_or_else(|| "unknown".to_owned(), ToString::to_string),
                            digest: d.digest.to_string(),
                            media_type: d.media_type.clone(),
                            size: d.size,
                        })
                        .collect(),
                );
                let host = Platform::host();
                let want = platform.unwrap_or(&host);
                match self.resolve(reference, want).await {
                    Ok(r) => Some(r),
                    Err(e) if platform.is_none() && e.is_not_found() => None,
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(r) = resolved {
            summary.image = Some(self.image_summary(reference, &r).await?);
        }
        Ok(summary)
    }

    async fn image_summary(&self, reference: &Reference, r: &Resolved) -> Result<ImageSummary> {
        let config = &r.image.config;
        // Only an image config is read: an artifact's config may be large
        // or not JSON, and says nothing about platforms.
        let facts = if is_image_config(&config.media_type) {
            let bytes = self.config(reference, r).await?;
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::debug!(error = %e, "config is not the JSON expected");
                ConfigFacts::default()
            })
        } else {
            ConfigFacts::default()
        };
        Ok(ImageSummary {
            digest: r.manifest.digest().to_string(),
            media_type: r.manifest.media_type().to_owned(),
            artifact_type: r.image.artifact_type.clone(),
            config: BlobEntry::from(config),
            created: facts.created,
            os: facts.os,
            architecture: facts.architecture,
            variant: facts.variant,
            layers: r.image.layers.len(),
            layers_size: r.image.layers.iter().map(|l| l.size).sum(),
        })
    }
}

impl Summary {
    /// The human-readable form, one `Key: value` a line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<13} {v}\n"));
        line("Reference:", &self.reference);
        line("Digest:", &self.digest);
        line("Media type:", &self.media_type);
        if let Some(platforms) = &self.platforms {
            let names: Vec<&str> = platforms.iter().map(|p| p.platform.as_str()).collect();
            line("Platforms:", &names.join(", "));
        }
        if let Some(image) = &self.image {
            if self.platforms.is_some() {
                line("Image:", &image.digest);
            }
            if let Some(t) = &image.artifact_type {
                line("Artifact:", t);
            }
            let platform = match (&image.os, &image.architecture) {
                (Some(os), Some(arch)) => {
                    let mut p = format!("{os}/{arch}");
                    if let Some(v) = &image.variant {
                        p.push('/');
                        p.push_str(v);
                    }
                    p
                }
                _ => "-".to_owned(),
            };
            line("Platform:", &platform);
            line("Created:", image.created.as_deref().unwrap_or("-"));
            line("Config:", &image.config.digest);
            line(
                "Layers:",
                &format!("{} ({} bytes)", image.layers, image.layers_size),
            );
        }
        out
    }
}
