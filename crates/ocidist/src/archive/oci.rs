//! The OCI image layout: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`,
//! as a tar archive or a directory, readable by `skopeo copy oci:` and
//! `umoci`.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_core::{Descriptor, ImageIndex, Manifest, Reference, Result};

use super::docker::to_json;
use super::tar::{Plan, Source};

/// The annotation naming a manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation carrying the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The path of a blob inside a layout.
pub fn blob_path(d: &Descriptor) -> String {
    format!("blobs/{}/{}", d.digest.algorithm(), d.digest.hex())
}

/// Plans a layout holding `top` (an image manifest or an index), the
/// manifests below it, and their blobs.
///
/// `manifests` are the manifests to store inline (the top one first),
/// `config` blobs are inline too, `layers` are downloaded.
pub fn plan(
    reference: &Reference,
    manifests: &[Manifest],
    configs: &[(Descriptor, Bytes)],
    layers: &[Descriptor],
) -> Result<Plan> {
    let mut plan = Plan::new();
    plan.push(
        "oci-layout",
        Source::Inline(Bytes::from_static(b"{\"imageLayoutVersion\":\"1.0.0\"}")),
    );
    let Some(top) = manifests.first() else {
        return Err(oci_core::Error::internal("nothing to write: no manifest"));
    };
    let mut index = ImageIndex::empty();
    let mut entry = top.descriptor.clone();
    let mut annotations = BTreeMap::new();
    if let Some(tag) = reference.tag() {
        annotations.insert(REF_NAME.to_owned(), tag.to_string());
    }
    annotations.insert(CONTAINERD_NAME.to_owned(), reference.to_string());
    entry.annotations = Some(annotations);
    index.manifests.push(entry);
    plan.push("index.json", Source::Inline(to_json(&index)?));
    for dir in ["blobs/", &format!("blobs/{}/", top.digest().algorithm())] {
        plan.push(dir, Source::Directory);
    }
    let add = |plan: &mut Plan, d: &Descriptor, source: Source| {
        let alg_dir = format!("blobs/{}/", d.digest.algorithm());
        if !plan.contains(&alg_dir) {
            plan.push(alg_dir, Source::Directory);
        }
        let path = blob_path(d);
        if !plan.contains(&path) {
            plan.push(path, source);
        }
    };
    for m in manifests {
        add(&mut plan, &m.descriptor, Source::Inline(m.bytes.clone()));
    }
    for (d, bytes) in configs {
        add(&mut plan, d, Source::Inline(bytes.clone()));
    }
    for d in layers {
        add(&mut plan, d, Source::Blob(Box::new(d.clone())));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::media;

    #[test]
    fn plans_layout_with_ref_name() {
        let r: Reference = "localhost:5000/app:v2".parse().unwrap();
        let cfg = Descriptor::of(media::OCI_CONFIG, b"{}");
        let layer = Descriptor::of(media::OCI_LAYER_GZIP, b"x");
        let m = Manifest::new(
            media::OCI_MANIFEST,
            Bytes::from_static(b"{\"schemaVersion\":2}"),
        );
        let plan = plan(
            &r,
            std::slice::from_ref(&m),
            &[(cfg.clone(), Bytes::from_static(b"{}"))],
            &[layer.clone(), layer.clone()],
        )
        .unwrap();
        let paths: Vec<_> = plan.entries().iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths[0], "oci-layout");
        assert!(paths.contains(&blob_path(&layer)));
        assert_eq!(paths.iter().filter(|p| **p == blob_path(&layer)).count(), 1);
        let Source::Inline(idx) = &plan.entries()[1].source else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(idx).unwrap();
        assert_eq!(v["manifests"][0]["annotations"][REF_NAME], "v2");
        assert_eq!(v["manifests"][0]["digest"], m.digest().to_string());
    }
}
