//! Content descriptors and platforms.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};

/// Unknown JSON fields, kept so that they survive a round trip.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// A content descriptor: media type, digest, size and optional extras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size of the referenced content in bytes.
    pub size: u64,
    /// Where else the content may be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The content itself, base64, for small blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            data: None,
            extra: Extra::new(),
        }
    }

    /// This descriptor with only its media type, digest and size: what a
    /// store keeps of a pushed manifest's descriptor.
    pub fn plain(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
    }

    /// The descriptor of a bare blob (`application/octet-stream`): what a
    /// store answers for a blob, as it keeps no media types.
    pub fn blob(digest: &Digest, size: u64) -> Descriptor {
        Descriptor::new(crate::media::OCTET_STREAM, digest.clone(), size)
    }

    /// A descriptor of `data` (sha256).
    pub fn of(media_type: impl Into<String>, data: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(data), data.len() as u64)
    }

    /// Checks what the parser cannot: a non-empty, well-formed media type.
    pub fn validate(&self) -> Result<()> {
        if !crate::media::is_valid_media_type(&self.media_type) {
            return Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!(
                    "descriptor {} has an invalid mediaType {:?}",
                    self.digest, self.media_type
                ),
            ));
        }
        Ok(())
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    /// CPU architecture, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Operating system version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Operating system features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant, e.g. `v7`, `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// CPU features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

impl Platform {
    /// A platform from OS, architecture and optional variant.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
            ..Platform::default()
        }
    }

    /// The platform this program runs on, in Go's names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Whether a manifest for `candidate` runs here: same OS and
    /// architecture, and the variant matches when this platform names one
    /// (arm64's `v8` is the default and matches a missing variant).
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        match self.normalized_variant() {
            None => true,
            Some(v) => candidate.normalized_variant() == Some(v),
        }
    }
}

impl Platform {
    /// The variant, with arm64's implied `v8` filled in.
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch[/variant]`.
    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::new(
                ErrorCode::Unknown,
                format!("invalid platform {s:?}: expected os/arch[/variant]"),
            )
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None).normalize()),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant)).normalize()),
            _ => Err(bad()),
        }
    }
}

impl Platform {
    /// The platform in the names images use, as containerd normalises
    /// them: the OS lower-cased; `x86_64`/`x86-64` are `amd64`, `i386` is
    /// `386`, `aarch64` is `arm64` (its `v8` variant implied), `armhf` is
    /// `arm/v7` and `armel` `arm/v6`, and a numeric variant gains its `v`
    /// (`arm/7` is `arm/v7`). A bare `arm` stays any arm variant.
    ///
    /// ```
    /// use oci_core::Platform;
    /// let p: Platform = "Linux/aarch64".parse().unwrap();
    /// assert_eq!(p.to_string(), "linux/arm64");
    /// assert_eq!("linux/armhf".parse::<Platform>().unwrap().to_string(), "linux/arm/v7");
    /// ```
    pub fn normalize(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.take().map(|v| v.to_ascii_lowercase());
        let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", Some("v1") | None) => ("amd64".to_owned(), None),
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_owned(), v.map(str::to_owned)),
            ("i386", v) => ("386".to_owned(), v.map(str::to_owned)),
            ("aarch64" | "arm64", Some("8" | "v8" | "v8.0") | None) => ("arm64".to_owned(), None),
            ("aarch64" | "arm64", Some(v)) => ("arm64".to_owned(), Some(v.to_owned())),
            ("armhf", _) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", _) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm", Some(v)) if v.chars().all(|c| c.is_ascii_digit()) => {
                ("arm".to_owned(), Some(format!("v{v}")))
            }
            (a, v) => (a.to_owned(), v.map(str::to_owned)),
        };
        self.architecture = arch;
        self.variant = variant;
        self
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let want: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(want.to_string(), "linux/arm/v7");
        assert!(want.matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(!want.matches(&Platform::new("linux", "arm", Some("v6"))));
        assert!(!want.matches(&Platform::new("linux", "arm", None)));
        for (alias, normal) in [
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/x86_64", "linux/amd64"),
            ("Linux/X86-64", "linux/amd64"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/i386", "linux/386"),
            ("linux/arm64/v9", "linux/arm64/v9"),
        ] {
            let p: Platform = alias.parse().unwrap();
            assert_eq!(p.to_string(), normal, "{alias}");
        }
        let aarch64: Platform = "linux/aarch64".parse().unwrap();
        assert!(aarch64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        let any_arm: Platform = "linux/arm".parse().unwrap();
        assert!(any_arm.matches(&Platform::new("linux", "arm", Some("v6"))));
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert!(arm64.matches(&Platform::new("linux", "arm64", None)));
        assert!(arm64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(
            !"linux/amd64"
                .parse::<Platform>()
                .unwrap()
                .matches(&Platform::new("windows", "amd64", None))
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v7".parse::<Platform>().is_err());
    }

    #[test]
    fn descriptor_keeps_unknown_fields() {
        let json = r#"{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"x-extra":{"k":1}}"#;
        let d: Descriptor = serde_json::from_str(json).unwrap();
        assert_eq!(d.extra["x-extra"]["k"], 1);
        let back = serde_json::to_string(&d).unwrap();
        assert!(back.contains("x-extra"));
    }
}
