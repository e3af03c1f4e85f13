//! Manifests: the raw bytes that are stored, hashed and served, and the
//! parsed, validated view used for reading them.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::descriptor::{Descriptor, Extra, Platform};
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::media::{self, ManifestKind};

/// The largest manifest accepted or read: 4 MiB, as registries commonly cap.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// A manifest as stored: its descriptor and its exact bytes.
///
/// The bytes are never re-serialized; the digest is computed over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Media type, digest and size of `bytes`.
    pub descriptor: Descriptor,
    /// The exact bytes.
    pub bytes: Bytes,
}

impl Manifest {
    /// A manifest of the given media type; its digest is the sha256 of `bytes`.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Manifest {
        let bytes = bytes.into();
        Manifest {
            descriptor: Descriptor::of(media_type, &bytes),
            bytes,
        }
    }

    /// A manifest whose bytes must hash to `digest` (which may be sha512).
    pub fn with_digest(
        media_type: impl Into<String>,
        bytes: impl Into<Bytes>,
        digest: Digest,
    ) -> Result<Manifest> {
        let bytes = bytes.into();
        digest.verify(&bytes)?;
        let size = bytes.len() as u64;
        Ok(Manifest {
            descriptor: Descriptor::new(media_type, digest, size),
            bytes,
        })
    }

    /// A manifest whose media type is read from its own `mediaType` field
    /// (or guessed from its shape when the field is absent).
    pub fn from_json(bytes: impl Into<Bytes>) -> Result<Manifest> {
        let bytes = bytes.into();
        let parsed = ParsedManifest::parse(None, &bytes)?;
        Ok(Manifest::new(parsed.media_type(), bytes))
    }

    /// The digest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.descriptor.media_type
    }

    /// Parses and validates the bytes against the media type.
    pub fn parse(&self) -> Result<ParsedManifest> {
        ParsedManifest::parse(Some(&self.descriptor.media_type), &self.bytes)
    }

    /// What a store checks before accepting a push: the descriptor's digest
    /// and size match the bytes, which parse and validate.
    pub fn verify(&self) -> Result<ParsedManifest> {
        let given = &self.descriptor;
        given.digest.verify(&self.bytes)?;
        if given.size != self.bytes.len() as u64 {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!(
                    "manifest {} is {} bytes, its descriptor says {}",
                    given.digest,
                    self.bytes.len(),
                    given.size
                ),
            ));
        }
        self.parse()
    }
}

/// An image manifest (OCI or Docker schema2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type, if it states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An index of manifests (OCI index or Docker manifest list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type, if it states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The child manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageIndex {
    /// The first child manifest for `platform` (see [`Platform::matches`]),
    /// skipping attestation manifests (platform `unknown/unknown`).
    pub fn select_platform(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| {
                media::manifest_kind(&d.media_type) == Some(ManifestKind::Image)
                    || d.media_type.is_empty()
            })
            .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
    }

    /// The platforms the index offers, as `os/arch[/variant]` strings.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(ToString::to_string)
            .collect()
    }

    /// An empty OCI index, as served for a subject with no referrers.
    pub fn empty() -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
            extra: Extra::new(),
        }
    }
}

/// A parsed, validated manifest.
// A short-lived view for reading; boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedManifest {
    /// An image manifest.
    Image(ImageManifest),
    /// An index.
    Index(ImageIndex),
}

fn invalid(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::ManifestInvalid, why)
}

/// Something a manifest references that must exist before it is stored
/// (see [`ParsedManifest::required`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Required<'a> {
    /// A config or layer blob.
    Blob(&'a Descriptor),
    /// A child manifest of an index.
    Manifest(&'a Descriptor),
}

impl Required<'_> {
    /// The `MANIFEST_BLOB_UNKNOWN` error for this reference being absent.
    pub fn missing(&self) -> Error {
        let (what, d) = match self {
            Required::Blob(d) => ("blob", d),
            Required::Manifest(d) => ("child manifest", d),
        };
        Error::new(
            ErrorCode::ManifestBlobUnknown,
            format!("{what} {} is not in the repository", d.digest),
        )
    }
}

impl ParsedManifest {
    /// Parses `bytes` and validates them. `content_type`, when given, is
    /// the media type the manifest is pushed or stored as: it must be a
    /// manifest type and agree with the body's own `mediaType`.
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<ParsedManifest> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!(
                    "manifest of {} bytes exceeds the {MAX_MANIFEST_SIZE}-byte limit",
                    bytes.len()
                ),
            )
            .with_status(413));
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("manifest is not a JSON object"))?;
        match obj.get("schemaVersion").and_then(|v| v.as_u64()) {
            Some(2) => {}
            Some(1) => return Err(invalid("Docker schema1 manifests are not supported")),
            _ => return Err(invalid("schemaVersion must be 2")),
        }
        let body_type = match obj.get("mediaType") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(invalid("mediaType must be a string")),
        };
        let content_type = content_type.map(media::essence);
        let content_type = content_type.as_deref();
        if let (Some(ct), Some(bt)) = (content_type, body_type)
            && ct != bt
        {
            return Err(invalid(format!(
                "content type {ct} does not match the manifest's mediaType {bt}"
            )));
        }
        let declared = body_type.or(content_type);
        let kind = match declared.map(|t| (t, media::manifest_kind(t))) {
            Some((_, Some(kind))) => kind,
            Some((t, None)) => {
                return Err(invalid(format!("unsupported manifest media type {t:?}")));
            }
            None if obj.contains_key("manifests") => ManifestKind::Index,
            None if obj.contains_key("config") => ManifestKind::Image,
            None => {
                return Err(invalid(
                    "cannot tell the manifest's type: no mediaType, config or manifests",
                ));
            }
        };
        let parsed = match kind {
            ManifestKind::Image => {
                if obj.contains_key("manifests") {
                    return Err(invalid("an image manifest has no manifests field"));
                }
                if !obj.contains_key("config") {
                    return Err(invalid("an image manifest needs a config descriptor"));
                }
                let m: ImageManifest = serde_json::from_value(value)
                    .map_err(|e| invalid(format!("invalid image manifest: {e}")))?;
                m.config.validate()?;
                for layer in &m.layers {
                    layer.validate()?;
                }
                ParsedManifest::Image(m)
            }
            ManifestKind::Index => {
                if obj.contains_key("layers") || obj.contains_key("config") {
                    return Err(invalid("an index has no layers or config"));
                }
                let m: ImageIndex = serde_json::from_value(value)
                    .map_err(|e| invalid(format!("invalid index: {e}")))?;
                for child in &m.manifests {
                    child.validate()?;
                }
                ParsedManifest::Index(m)
            }
        };
        if let Some(subject) = parsed.subject() {
            subject.validate()?;
        }
        if let Some(at) = parsed.artifact_type()
            && !media::is_valid_media_type(at)
        {
            return Err(invalid(format!("invalid artifactType {at:?}")));
        }
        Ok(parsed)
    }

    /// The kind: image or index.
    pub fn kind(&self) -> ManifestKind {
        match self {
            ParsedManifest::Image(_) => ManifestKind::Image,
            ParsedManifest::Index(_) => ManifestKind::Index,
        }
    }

    /// The media type: the stated one, or the OCI type of its kind.
    pub fn media_type(&self) -> &str {
        let (stated, default) = match self {
            ParsedManifest::Image(m) => (&m.media_type, media::OCI_MANIFEST),
            ParsedManifest::Index(m) => (&m.media_type, media::OCI_INDEX),
        };
        stated.as_deref().unwrap_or(default)
    }

    /// The subject, if this manifest refers to another.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            ParsedManifest::Image(m) => m.subject.as_ref(),
            ParsedManifest::Index(m) => m.subject.as_ref(),
        }
    }

    /// The stated artifact type.
    pub fn artifact_type(&self) -> Option<&str> {
        match self {
            ParsedManifest::Image(m) => m.artifact_type.as_deref(),
            ParsedManifest::Index(m) => m.artifact_type.as_deref(),
        }
    }

    /// The annotations.
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            ParsedManifest::Image(m) => m.annotations.as_ref(),
            ParsedManifest::Index(m) => m.annotations.as_ref(),
        }
    }

    /// The blobs an image references (config, then layers).
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            ParsedManifest::Image(m) => std::iter::once(&m.config).chain(&m.layers).collect(),
            ParsedManifest::Index(_) => Vec::new(),
        }
    }

    /// The manifests an index references.
    pub fn children(&self) -> &[Descriptor] {
        match self {
            ParsedManifest::Image(_) => &[],
            ParsedManifest::Index(m) => &m.manifests,
        }
    }

    /// What must already be in the repository before this manifest is
    /// stored: an image's config and layers as blobs (but not foreign
    /// layers, which carry `urls`), an index's child manifests. The subject
    /// need not exist.
    pub fn required(&self) -> Vec<Required<'_>> {
        let blobs = self
            .blobs()
            .into_iter()
            .filter(|b| b.urls.as_ref().is_none_or(|u| u.is_empty()))
            .map(Required::Blob);
        blobs
            .chain(self.children().iter().map(Required::Manifest))
            .collect()
    }

    /// `MANIFEST_BLOB_UNKNOWN` for the first of [`ParsedManifest::required`]
    /// that `present` finds absent: the check every store makes before it
    /// stores a manifest, with its own way of looking.
    pub async fn check_required<'a, F, Fut>(&'a self, mut present: F) -> Result<()>
    where
        F: FnMut(Required<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        for required in self.required() {
            if !present(required).await? {
                return Err(required.missing());
            }
        }
        Ok(())
    }

    /// The descriptor a referrers listing shows for this manifest, given
    /// its own descriptor: artifactType (or an image's config media type)
    /// and annotations filled in.
    pub fn referrer_descriptor(&self, own: &Descriptor) -> Descriptor {
        let artifact_type = match self {
            ParsedManifest::Image(m) => m
                .artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone())),
            ParsedManifest::Index(m) => m.artifact_type.clone(),
        };
        let mut d = own.plain();
        d.artifact_type = artifact_type;
        d.annotations = self.annotations().cloned();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{D}","size":0}},"layers":[]{extra}}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG
        )
    }

    #[test]
    fn parses_image_and_keeps_bytes() {
        let body = image(r#","x-unknown":[1,2]"#);
        let m = Manifest::from_json(body.clone()).unwrap();
        assert_eq!(m.media_type(), media::OCI_MANIFEST);
        assert_eq!(m.bytes, body.as_bytes());
        assert_eq!(*m.digest(), Digest::sha256(body.as_bytes()));
        let ParsedManifest::Image(p) = m.parse().unwrap() else {
            panic!()
        };
        assert_eq!(p.extra["x-unknown"], serde_json::json!([1, 2]));
    }

    #[test]
    fn numbers_in_unknown_fields_print_and_parse_back_to_themselves() {
        // A long decimal once parsed to a float one ulp off its shortest
        // printed form, so the parsed view did not survive a round trip.
        let body = image(
            r#","x-size":9999999999999999999999999999999999999999999999999999999999999999999999999999999999.256,"x-small":0.1"#,
        );
        let parsed = ParsedManifest::parse(Some(media::OCI_MANIFEST), body.as_bytes()).unwrap();
        let ParsedManifest::Image(image) = &parsed else {
            panic!()
        };
        let again = ParsedManifest::parse(
            Some(media::OCI_MANIFEST),
            &serde_json::to_vec(image).unwrap(),
        )
        .unwrap();
        assert_eq!(again, parsed);
    }

    #[test]
    fn validation() {
        let bad = [
            "not json".to_owned(),
            "[]".to_owned(),
            r#"{"schemaVersion":1}"#.to_owned(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}"}}"#,
                media::OCI_MANIFEST
            ),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[],"layers":[]}}"#,
                media::OCI_INDEX
            ),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"x","digest":"{D}","size":1}}]}}"#,
                media::OCI_INDEX
            ),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"a/b","digest":"sha256:00","size":1}}]}}"#,
                media::OCI_INDEX
            ),
            image(r#","subject":{"mediaType":"a/b","size":1}"#),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"text/plain","config":{{"mediaType":"a/b","digest":"{D}","size":0}}}}"#
            ),
        ];
        for b in bad {
            let err = ParsedManifest::parse(None, b.as_bytes()).unwrap_err();
            assert!(err.is(ErrorCode::ManifestInvalid), "{b}: {err}");
        }
        let err =
            ParsedManifest::parse(Some(media::DOCKER_MANIFEST), image("").as_bytes()).unwrap_err();
        assert!(err.is(ErrorCode::ManifestInvalid));
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert_eq!(ParsedManifest::parse(None, &big).unwrap_err().status(), 413);
    }

    #[test]
    fn referrer_descriptor_takes_config_type() {
        let body = image(&format!(
            r#","subject":{{"mediaType":"{}","digest":"{D}","size":0}}"#,
            media::OCI_MANIFEST
        ));
        let m = Manifest::from_json(body).unwrap();
        let p = m.parse().unwrap();
        assert_eq!(p.subject().unwrap().digest.to_string(), D);
        let r = p.referrer_descriptor(&m.descriptor);
        assert_eq!(r.artifact_type.as_deref(), Some(media::OCI_CONFIG));
    }

    #[test]
    fn selects_platform_from_index() {
        let child = |p: &str| {
            let mut d = Descriptor::new(media::OCI_MANIFEST, D.parse().unwrap(), 1);
            d.platform = Some(p.parse().unwrap());
            d
        };
        let mut index = ImageIndex::empty();
        index.manifests = vec![
            child("linux/amd64"),
            child("linux/arm/v7"),
            child("unknown/unknown"),
        ];
        let want: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(
            index.select_platform(&want).unwrap().platform.as_ref(),
            Some(&want)
        );
        assert!(
            index
                .select_platform(&"linux/s390x".parse().unwrap())
                .is_none()
        );
        assert_eq!(index.platforms(), vec!["linux/amd64", "linux/arm/v7"]);
    }

    #[test]
    fn verify_checks_descriptor_against_bytes() {
        let m = Manifest::from_json(image("")).unwrap();
        m.verify().unwrap();
        let mut wrong_size = m.clone();
        wrong_size.descriptor.size += 1;
        assert!(wrong_size.verify().unwrap_err().is(ErrorCode::SizeInvalid));
        let mut wrong_digest = m.clone();
        wrong_digest.descriptor.digest = Digest::sha256(b"other");
        assert!(
            wrong_digest
                .verify()
                .unwrap_err()
                .is(ErrorCode::DigestInvalid)
        );
    }

    #[test]
    fn index_without_media_type_is_recognised() {
        let m = Manifest::from_json(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert_eq!(m.media_type(), media::OCI_INDEX);
    }
}
