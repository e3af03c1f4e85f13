//! How a mirror keeps what it fetched in any [`Registry`] store, whose
//! `push_manifest` wants a manifest's blobs first: a manifest's bytes are
//! kept as a blob under their digest, and a tag as a small pointer
//! manifest (an OCI artifact whose one layer is the manifest's
//! descriptor), which the store verifies like any other.

use bytes::Bytes;
use oci_core::registry::bytes_stream;
use oci_core::{
    Descriptor, Digest, Error, Manifest, ParsedManifest, Registry, RepoName, Result, Tag, media,
};

/// The artifact type of a tag's pointer manifest.
pub const TAG_RECORD_TYPE: &str = "application/vnd.ocidist.mirror.tag.v1";

/// The empty JSON object, the pointer's config.
const EMPTY_JSON: &[u8] = b"{}";

/// Keeps a manifest's exact bytes as a blob of `repo`.
pub(crate) async fn keep_manifest(
    cache: &dyn Registry,
    repo: &RepoName,
    m: &Manifest,
) -> Result<()> {
    let size = m.bytes.len() as u64;
    cache
        .push_blob(
            repo,
            m.digest(),
            Some(size),
            bytes_stream(m.bytes.clone(), 1 << 20),
        )
        .await
        .map(|_| ())
}

/// The manifest `digest` kept in `repo`, if it is there; `media_type` as
/// recorded, else read from its bytes.
pub(crate) async fn kept_manifest(
    cache: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<Option<Manifest>> {
    let reader = match cache.get_blob(repo, digest).await {
        Ok(reader) => reader,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if reader.descriptor.size > oci_core::manifest::MAX_MANIFEST_SIZE as u64 {
        return Err(Error::internal(format!(
            "the cached manifest {digest} is larger than a manifest may be"
        )));
    }
    let bytes = reader.bytes().await?;
    let media_type = match media_type {
        Some(t) => t.to_owned(),
        None => ParsedManifest::parse(None, &bytes)?.media_type().to_owned(),
    };
    Manifest::with_digest(media_type, bytes, digest.clone()).map(Some)
}

/// Points `tag` of `repo` at the manifest `target` (already kept).
pub(crate) async fn keep_tag(
    cache: &dyn Registry,
    repo: &RepoName,
    tag: &Tag,
    target: &Descriptor,
) -> Result<()> {
    let empty = Bytes::from_static(EMPTY_JSON);
    let empty_digest = Digest::sha256(EMPTY_JSON);
    cache
        .push_blob(repo, &empty_digest, Some(2), bytes_stream(empty, 2))
        .await?;
    let pointer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": TAG_RECORD_TYPE,
        "config": Descriptor::new(media::OCI_EMPTY, empty_digest, 2),
        "layers": [target.plain()],
    });
    let bytes = serde_json::to_vec(&pointer)
        .map_err(|e| Error::internal(format!("writing a tag record: {e}")))?;
    cache
        .push_manifest(
            repo,
            &Manifest::new(media::OCI_MANIFEST, bytes),
            std::slice::from_ref(tag),
        )
        .await
        .map(|_| ())
}

/// The descriptor of the manifest `tag` of `repo` was last seen pointing
/// at, if the cache has a record of it.
pub(crate) async fn kept_tag(
    cache: &dyn Registry,
    repo: &RepoName,
    tag: &Tag,
) -> Result<Option<Descriptor>> {
    let pointer = match cache.get_tag(repo, tag).await {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    match pointer.parse()? {
        ParsedManifest::Image(m) if m.artifact_type.as_deref() == Some(TAG_RECORD_TYPE) => {
            Ok(m.layers.into_iter().next())
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tag_record_round_trips_in_a_store() {
        let store = oci_mem::MemRegistry::new();
        let repo: RepoName = "example.com/app".parse().unwrap();
        let tag: Tag = "v1".parse().unwrap();
        let m = Manifest::new(
            media::OCI_INDEX,
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
        );
        assert_eq!(kept_tag(&store, &repo, &tag).await.unwrap(), None);
        keep_manifest(&store, &repo, &m).await.unwrap();
        keep_tag(&store, &repo, &tag, &m.descriptor).await.unwrap();
        let target = kept_tag(&store, &repo, &tag).await.unwrap().unwrap();
        assert_eq!(target, m.descriptor);
        let back = kept_manifest(&store, &repo, &target.digest, Some(&target.media_type))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, m);
    }
}
