//! How a mirror keeps the manifests it fetched in any [`Registry`] store,
//! so that the store's own garbage collection keeps what the cache holds.
//!
//! A store's `push_manifest` wants everything a manifest references (an
//! image's config and layers, an index's children) first, and a mirror
//! fetches a manifest before its blobs. So a fetched manifest is kept in
//! one of two forms:
//!
//! - **Real**: pushed as the manifest it is, tagged as upstream, once its
//!   references are in the cache; then `gc` keeps it and everything it
//!   references, as it would a pushed image.
//! - **Recorded**, until then (and for good for an index of which only
//!   some children are ever pulled): its exact bytes as a blob, and a
//!   small record manifest (an OCI artifact of type [`TAG_RECORD_TYPE`]
//!   whose one layer is the manifest's descriptor) that keeps those
//!   bytes referenced, tagged as upstream when it came by tag. The
//!   manifest is waiting to be made real (`keeper.rs`: after each blob
//!   the cache commits, the waiting manifests whose references have all
//!   arrived are pushed, an index's children before the index).
//!
//! A tag therefore names either the real manifest or its record; either
//! way the cache knows which digest the tag last pointed at.

use bytes::Bytes;
use oci_core::registry::bytes_stream;
use oci_core::{
    Descriptor, Digest, Error, Manifest, ParsedManifest, Registry, RepoName, Result, Tag, media,
};

/// The artifact type of the record manifest kept for a manifest that
/// cannot be stored as itself yet.
pub const TAG_RECORD_TYPE: &str = "application/vnd.ocidist.mirror.tag.v1";

/// The empty JSON object, a record's config.
const EMPTY_JSON: &[u8] = b"{}";

/// A manifest the cache has, and whether it is stored as itself.
pub(crate) struct Kept {
    pub(crate) manifest: Manifest,
    pub(crate) real: bool,
}

/// The manifest `digest` kept in `repo` of `cache`, if it is there; `media_type`
/// as recorded (for a recorded one), else read from its bytes.
pub(crate) async fn kept_manifest(
    cache: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<Option<Kept>> {
    match cache.get_manifest(repo, digest).await {
        Ok(manifest) => {
            return Ok(Some(Kept {
                manifest,
                real: true,
            }));
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
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
    let manifest = Manifest::with_digest(media_type, bytes, digest.clone())?;
    Ok(Some(Kept {
        manifest,
        real: false,
    }))
}

/// What `tag` of `repo` was last seen pointing at, if the cache knows:
/// the manifest's descriptor, and the manifest when the tag names it
/// real (a record names it by descriptor only).
pub(crate) async fn kept_tag(
    cache: &dyn Registry,
    repo: &RepoName,
    tag: &Tag,
) -> Result<Option<(Descriptor, Option<Manifest>)>> {
    let found = match cache.get_tag(repo, tag).await {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    match found.parse()? {
        ParsedManifest::Image(m) if m.artifact_type.as_deref() == Some(TAG_RECORD_TYPE) => {
            Ok(m.layers.into_iter().next().map(|d| (d, None)))
        }
        _ => Ok(Some((found.descriptor.clone(), Some(found)))),
    }
}

/// Keeps a record of the manifest `target` (its bytes already a blob of
/// `repo`), tagged `tags`.
pub(crate) async fn keep_record(
    cache: &dyn Registry,
    repo: &RepoName,
    tags: &[Tag],
    target: &Descriptor,
) -> Result<()> {
    let empty = Bytes::from_static(EMPTY_JSON);
    let empty_digest = Digest::sha256(EMPTY_JSON);
    cache
        .push_blob(repo, &empty_digest, Some(2), bytes_stream(empty, 2))
        .await?;
    let record = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": TAG_RECORD_TYPE,
        "config": Descriptor::new(media::OCI_EMPTY, empty_digest, 2),
        "layers": [target.plain()],
    });
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| Error::internal(format!("writing a tag record: {e}")))?;
    cache
        .push_manifest(repo, &Manifest::new(media::OCI_MANIFEST, bytes), tags)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keeper::Keeper;
    use oci_core::testkit;

    fn repo() -> RepoName {
        "example.com/app".parse().unwrap()
    }

    #[tokio::test]
    async fn an_index_without_its_children_is_recorded_and_read_back() {
        let store = Arc::new(oci_mem::MemRegistry::new());
        let keeper = Keeper::new(store.clone());
        let tag: Tag = "v1".parse().unwrap();
        let index = testkit::build_index(false);
        let m = &index.manifest;
        assert!(
            kept_tag(store.as_ref(), &repo(), &tag)
                .await
                .unwrap()
                .is_none()
        );
        keeper
            .keep(&repo(), m, std::slice::from_ref(&tag))
            .await
            .unwrap();
        let (target, real) = kept_tag(store.as_ref(), &repo(), &tag)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(target, m.descriptor);
        assert!(real.is_none(), "an index without children cannot be real");
        let back = kept_manifest(
            store.as_ref(),
            &repo(),
            &target.digest,
            Some(&target.media_type),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(back.manifest, *m);
        assert!(!back.real);
    }
}
