//! A small two-platform demo image, `demo/hello:latest`, that
//! `ocidist serve --demo` seeds its store with.

use bytes::Bytes;
use oci_core::{
    Descriptor, Digest, ImageIndex, Manifest, Platform, Registry, RepoName, Result, Tag, media,
};
use serde_json::json;

use crate::archive::tar;

/// The demo repository.
pub const REPO: &str = "demo/hello";

async fn push_blob(
    reg: &dyn Registry,
    repo: &RepoName,
    media_type: &str,
    bytes: Bytes,
) -> Result<Descriptor> {
    let d = Descriptor::of(media_type, &bytes);
    let size = bytes.len() as u64;
    reg.push_blob(
        repo,
        &d.digest,
        Some(size),
        oci_core::registry::bytes_stream(bytes, 64 << 10),
    )
    .await?;
    Ok(d)
}

/// Pushes the demo index and its images; returns the index digest.
pub async fn seed(reg: &dyn Registry) -> Result<Digest> {
    let repo: RepoName = REPO.parse()?;
    let mut index = ImageIndex::empty();
    for platform in ["linux/amd64", "linux/arm64"] {
        let p: Platform = platform.parse()?;
        let text = format!("Hello from ocidist ({platform})!\n");
        let layer_bytes = tar::one_file("hello.txt", text.as_bytes())?;
        let layer = push_blob(reg, &repo, media::OCI_LAYER, layer_bytes).await?;
        // Fields in the order Go's image-spec types write them, so tools
        // that re-encode configs keep the digest.
        let config = format!(
            r#"{{"architecture":"{}","os":"{}","config":{{"Cmd":["/bin/cat","/hello.txt"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"ocidist demo"}}]}}"#,
            p.architecture, p.os, layer.digest
        );
        let config = push_blob(reg, &repo, media::OCI_CONFIG, Bytes::from(config)).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        });
        let m = Manifest::new(media::OCI_MANIFEST, manifest.to_string());
        let mut child = reg.push_manifest(&repo, &m, &[]).await?;
        child.platform = Some(p);
        index.manifests.push(child);
    }
    let bytes = serde_json::to_vec(&index).map_err(|e| oci_core::Error::internal(e.to_string()))?;
    let m = Manifest::new(media::OCI_INDEX, bytes);
    reg.push_manifest(&repo, &m, &[Tag::latest()]).await?;
    Ok(m.digest().clone())
}
