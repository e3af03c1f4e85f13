//! The `docker save` tarball layout: `manifest.json`, `repositories`, the
//! config as `<hex>.json` and each layer as `<hex>/layer.tar`, which
//! `docker load`, `podman load` and `skopeo`'s `docker-archive:` read.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_core::{Descriptor, Error, ErrorCode, Manifest, Reference, Result, media};
use serde::Serialize;

use super::tar::{Plan, Source};

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// How `docker save` names an image: `name:tag`, Docker Hub names short.
pub fn repo_tag(reference: &Reference) -> Option<String> {
    let tag = reference.tag()?;
    Some(format!("{}:{tag}", repo_name(reference)))
}

fn repo_name(reference: &Reference) -> String {
    let repo = reference.repository().as_str();
    if reference.registry() == oci_core::reference::DOCKER_HUB {
        repo.strip_prefix("library/").unwrap_or(repo).to_owned()
    } else {
        format!("{}/{repo}", reference.registry())
    }
}

/// The entry holding the image's original manifest, exactly as served:
/// `docker load` and `podman load` ignore it, `ocidist push` pushes it
/// back so the manifest digest survives the round trip.
pub const MANIFEST_ENTRY: &str = "ocidist-manifest.json";

/// Plans a `docker save` archive of one image (`manifest`, its config and
/// its layers).
pub fn plan(
    reference: &Reference,
    manifest: &Manifest,
    config: &Descriptor,
    config_bytes: Bytes,
    layers: &[Descriptor],
) -> Result<Plan> {
    for layer in layers {
        if layer.media_type == media::OCI_LAYER_ZSTD || layer.media_type.ends_with("+zstd") {
            return Err(Error::new(
                ErrorCode::Unsupported,
                format!(
                    "layer {} is zstd-compressed, which docker format cannot carry; use --format oci",
                    layer.digest
                ),
            ));
        }
        if layer.media_type == media::DOCKER_LAYER_FOREIGN || layer.urls.is_some() {
            tracing::debug!(digest = %layer.digest, "foreign layer is written like any other");
        }
    }
    let mut plan = Plan::new();
    let config_path = format!("{}.json", config.digest.hex());
    plan.push(config_path.clone(), Source::Inline(config_bytes));
    let mut layer_paths = Vec::with_capacity(layers.len());
    for layer in layers {
        let dir = format!("{}/", layer.digest.hex());
        let path = format!("{}layer.tar", dir);
        if !plan.contains(&path) {
            plan.push(dir, Source::Directory);
            plan.push(path.clone(), Source::Blob(Box::new(layer.clone())));
        }
        layer_paths.push(path);
    }
    let repo_tags: Vec<String> = repo_tag(reference).into_iter().collect();
    let saved = [SavedImage {
        config: config_path,
        repo_tags,
        layers: layer_paths,
    }];
    plan.push("manifest.json", Source::Inline(to_json(&saved)?));
    plan.push(MANIFEST_ENTRY, Source::Inline(manifest.bytes.clone()));
    if let (Some(tag), Some(last)) = (reference.tag(), layers.last()) {
        let mut tags = BTreeMap::new();
        tags.insert(tag.to_string(), last.digest.hex().to_owned());
        let mut repos = BTreeMap::new();
        repos.insert(repo_name(reference), tags);
        plan.push("repositories", Source::Inline(to_json(&repos)?));
    }
    Ok(plan)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("cannot encode JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_docker_layout() {
        let r: Reference = "localhost:5000/app:v1".parse().unwrap();
        let cfg = Descriptor::of(media::OCI_CONFIG, b"{}");
        let l1 = Descriptor::of(media::OCI_LAYER_GZIP, b"one");
        let l2 = Descriptor::of(media::OCI_LAYER_GZIP, b"two");
        let m = Manifest::new(
            media::OCI_MANIFEST,
            Bytes::from_static(b"{\"schemaVersion\":2}"),
        );
        let plan = plan(
            &r,
            &m,
            &cfg,
            Bytes::from_static(b"{}"),
            &[l1.clone(), l2, l1.clone()],
        )
        .unwrap();
        let paths: Vec<_> = plan.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths.len(), 8, "{paths:?}");
        assert!(paths.contains(&MANIFEST_ENTRY));
        assert!(paths.contains(&"manifest.json") && paths.contains(&"repositories"));
        let manifest = plan
            .entries()
            .iter()
            .find(|e| e.path == "manifest.json")
            .unwrap();
        let Source::Inline(json) = &manifest.source else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v[0]["RepoTags"][0], "localhost:5000/app:v1");
        assert_eq!(v[0]["Layers"].as_array().unwrap().len(), 3);
        assert_eq!(v[0]["Layers"][0], format!("{}/layer.tar", l1.digest.hex()));
    }

    #[test]
    fn refuses_zstd_and_shortens_hub_names() {
        let r: Reference = "alpine:3".parse().unwrap();
        assert_eq!(repo_tag(&r).unwrap(), "alpine:3");
        let cfg = Descriptor::of(media::OCI_CONFIG, b"{}");
        let z = Descriptor::of(media::OCI_LAYER_ZSTD, b"z");
        let m = Manifest::new(media::OCI_MANIFEST, Bytes::new());
        let err = plan(&r, &m, &cfg, Bytes::new(), &[z]).unwrap_err();
        assert!(err.message().contains("zstd"));
    }
}
