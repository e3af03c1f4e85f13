//! A repository's `index.json` and what is derived from it: the manifests
//! it lists (with what each references and the subject it names) and the
//! tags (`org.opencontainers.image.ref.name` annotations); and its journal,
//! `.journal`, the changes made since `index.json` was last written, one
//! JSON [`Change`] per line, replayed over it when the repository is read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use oci_core::{Descriptor, Digest, Manifest, ParsedManifest, Tag, media};
use serde::{Deserialize, Serialize};

use crate::error::LayoutError;
use crate::paths::blob_in;

/// The annotation that names a tag in an OCI layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `oci-layout` file every layout directory holds.
pub(crate) const LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The `index.json` file, with unknown fields kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexFile {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for IndexFile {
    fn default() -> IndexFile {
        IndexFile {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// The bytes of an empty `index.json`.
pub(crate) fn empty_index() -> Vec<u8> {
    // Serializing a plain struct of strings and vectors cannot fail.
    serde_json::to_vec(&IndexFile::default()).unwrap_or_default()
}

/// The journal file of a layout: changes not yet in its `index.json`. Its
/// name starts with a dot, which no repository name component can, so it
/// never collides with a nested repository.
pub(crate) const JOURNAL: &str = ".journal";

/// One change to a repository's manifests: a line of its journal.
/// Replaying a change already in `index.json` leaves it as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Change {
    /// A manifest listed, `tags` pointed at it.
    Add {
        /// The manifest's media type, digest and size.
        descriptor: Box<Descriptor>,
        /// The tags now naming it.
        tags: Vec<Tag>,
    },
    /// A tag removed.
    Untag {
        /// The tag.
        tag: Tag,
    },
    /// A manifest unlisted, with its tags.
    Remove {
        /// The manifest's digest.
        digest: Digest,
    },
}

/// What the store keeps in memory about one manifest.
#[derive(Debug, Clone)]
pub(crate) struct ManifestInfo {
    /// Media type, digest and size.
    pub(crate) descriptor: Descriptor,
    /// The blobs an image references (config and layers).
    pub(crate) blobs: Vec<Digest>,
    /// The subject it names and the descriptor a referrers listing shows.
    pub(crate) referrer: Option<(Digest, Descriptor)>,
}

impl ManifestInfo {
    /// The info of a manifest and its parsed view.
    pub(crate) fn new(manifest: &Manifest, parsed: &ParsedManifest) -> ManifestInfo {
        let descriptor = manifest.descriptor.plain();
        ManifestInfo {
            blobs: parsed.blobs().iter().map(|b| b.digest.clone()).collect(),
            referrer: parsed
                .subject()
                .map(|s| (s.digest.clone(), parsed.referrer_descriptor(&descriptor))),
            descriptor,
        }
    }
}

/// A repository's state: its index as on disk and the views derived from it.
#[derive(Debug, Default)]
pub(crate) struct RepoState {
    index: IndexFile,
    /// The manifests listed, by digest.
    pub(crate) manifests: HashMap<Digest, ManifestInfo>,
    /// Tags and the manifest each names.
    pub(crate) tags: BTreeMap<Tag, Digest>,
}

impl RepoState {
    /// Reads the layout at `dir` (blocking). A missing `index.json` is an
    /// empty repository; one that does not parse is corrupt. A listed
    /// manifest whose file is missing or broken stays listed (reading it
    /// reports the path) but names no blobs or subject.
    pub(crate) fn load(dir: &Path) -> Result<RepoState, LayoutError> {
        let path = dir.join("index.json");
        let index: IndexFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| LayoutError::corrupt(&path, format!("invalid index.json: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexFile::default(),
            Err(e) => return Err(LayoutError::io("read", &path, e)),
        };
        let mut state = RepoState {
            index,
            ..RepoState::default()
        };
        for entry in &state.index.manifests {
            if let Some(tag) = ref_name(entry) {
                state.tags.insert(tag, entry.digest.clone());
            }
            if state.manifests.contains_key(&entry.digest) {
                continue;
            }
            let info = read_info(dir, entry).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "a manifest listed in index.json cannot be read");
                ManifestInfo {
                    descriptor: entry.plain(),
                    blobs: Vec::new(),
                    referrer: None,
                }
            });
            state.manifests.insert(entry.digest.clone(), info);
        }
        state.replay(dir)?;
        Ok(state)
    }

    /// Applies the changes of the layout's journal, if it has one. A last
    /// line cut short (a write a crash interrupted, never acknowledged)
    /// ends the replay.
    fn replay(&mut self, dir: &Path) -> Result<(), LayoutError> {
        let path = dir.join(JOURNAL);
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(LayoutError::io("read", &path, e)),
        };
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let change: Change = match serde_json::from_slice(line) {
                Ok(change) => change,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "journal ends in a partial line");
                    break;
                }
            };
            match change {
                Change::Add { descriptor, tags } => {
                    let info = read_info(dir, &descriptor).unwrap_or_else(|err| {
                        tracing::warn!(error = %err, "a manifest in the journal cannot be read");
                        ManifestInfo {
                            descriptor: descriptor.plain(),
                            blobs: Vec::new(),
                            referrer: None,
                        }
                    });
                    self.add(info, &tags);
                }
                Change::Untag { tag } => {
                    self.untag(&tag);
                }
                Change::Remove { digest } => {
                    self.remove(&digest);
                }
            }
        }
        Ok(())
    }

    /// How many entries `index.json` has for this state.
    pub(crate) fn entries(&self) -> usize {
        self.index.manifests.len()
    }

    /// The bytes of `index.json` for this state.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.index).unwrap_or_default()
    }

    /// Lists a manifest and points `tags` at it, moving tags that named
    /// other manifests (which stay listed, untagged if need be).
    pub(crate) fn add(&mut self, info: ManifestInfo, tags: &[Tag]) {
        let digest = info.descriptor.digest.clone();
        for tag in tags {
            self.untag(tag);
        }
        if !tags.is_empty() {
            // A tagged entry replaces the untagged one.
            self.index
                .manifests
                .retain(|e| e.digest != digest || ref_name(e).is_some());
        }
        for tag in tags {
            let mut entry = info.descriptor.plain();
            entry.annotations = Some(BTreeMap::from([(REF_NAME.to_owned(), tag.to_string())]));
            self.index.manifests.push(entry);
            self.tags.insert(tag.clone(), digest.clone());
        }
        if !self.index.manifests.iter().any(|e| e.digest == digest) {
            self.index.manifests.push(info.descriptor.plain());
        }
        self.manifests.insert(digest, info);
    }

    /// Removes a tag; its manifest stays listed. The digest it named, if any.
    pub(crate) fn untag(&mut self, tag: &Tag) -> Option<Digest> {
        let digest = self.tags.remove(tag)?;
        let at = self
            .index
            .manifests
            .iter()
            .position(|e| e.digest == digest && ref_name(e).as_ref() == Some(tag))?;
        let entry = self.index.manifests.remove(at);
        if !self.index.manifests.iter().any(|e| e.digest == digest) {
            self.index.manifests.push(entry.plain());
        }
        Some(digest)
    }

    /// Unlists a manifest and drops its tags; its info if it was listed.
    pub(crate) fn remove(&mut self, digest: &Digest) -> Option<ManifestInfo> {
        let info = self.manifests.remove(digest)?;
        self.index.manifests.retain(|e| e.digest != *digest);
        self.tags.retain(|_, d| d != digest);
        Some(info)
    }
}

/// The tag an index entry names, if it names a valid one.
fn ref_name(entry: &Descriptor) -> Option<Tag> {
    entry.annotations.as_ref()?.get(REF_NAME)?.parse().ok()
}

/// Reads and parses a listed manifest to learn what it references.
fn read_info(dir: &Path, entry: &Descriptor) -> Result<ManifestInfo, LayoutError> {
    let path = blob_in(dir, &entry.digest);
    let bytes = std::fs::read(&path).map_err(|e| LayoutError::io("read manifest", &path, e))?;
    if !entry.digest.matches(&bytes) {
        return Err(LayoutError::corrupt(
            &path,
            format!("content does not match its digest {}", entry.digest),
        ));
    }
    let manifest = Manifest {
        descriptor: entry.plain(),
        bytes: bytes.into(),
    };
    let parsed = manifest
        .parse()
        .map_err(|e| LayoutError::corrupt(&path, e.to_string()))?;
    Ok(ManifestInfo::new(&manifest, &parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u8) -> ManifestInfo {
        ManifestInfo {
            descriptor: Descriptor::of(media::OCI_MANIFEST, &[n]),
            blobs: Vec::new(),
            referrer: None,
        }
    }

    fn tag(s: &str) -> Tag {
        s.parse().unwrap()
    }

    #[test]
    fn tags_move_and_manifests_stay_listed() {
        let mut state = RepoState::default();
        let (a, b) = (info(1), info(2));
        let (da, db) = (a.descriptor.digest.clone(), b.descriptor.digest.clone());
        state.add(a, &[]);
        assert_eq!(state.index.manifests.len(), 1);
        state.add(b, &[tag("x"), tag("y")]);
        state.add(info(1), &[tag("x")]);
        assert_eq!(state.tags[&tag("x")], da);
        assert_eq!(state.tags[&tag("y")], db);
        // a tagged x, b tagged y: no untagged entries left.
        assert_eq!(state.index.manifests.len(), 2);
        assert_eq!(state.untag(&tag("y")), Some(db.clone()));
        assert_eq!(state.index.manifests.len(), 2, "b stays listed untagged");
        assert!(state.remove(&db).is_some());
        assert_eq!(state.index.manifests.len(), 1);
        let json: serde_json::Value = serde_json::from_slice(&state.to_json()).unwrap();
        assert_eq!(json["manifests"][0]["annotations"][REF_NAME], "x");
    }
}
