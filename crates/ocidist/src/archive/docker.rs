//! The `docker save` tarball layout: `manifest.json`, `repositories`, the
//! config as `<hex>.json` and, per layer, the legacy directory
//! `<layer id>/` with `VERSION`, `json` and `layer.tar`, which `docker
//! load`, `podman load`, `skopeo`'s `docker-archive:` and older readers of
//! the v1 format (docker2aci) read. Layer ids are chain ids, as skopeo
//! writes them: the first layer's diff_id, then
//! `sha256(<previous chain id> + " " + <diff_id>)`, each layer's `json`
//! naming its `parent`.
//!
//! Here each `layer.tar` holds the layer as the registry serves it
//! (compressed); [`super::docker_save`] writes them uncompressed instead.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_core::{Descriptor, Digest, Error, ErrorCode, Manifest, Reference, Result, media};
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
    let registry = reference.registry();
    // An image read from a store directly has the store's name (a URL, a
    // directory) for a registry, which is no host: it is named as a local
    // image, under `localhost` as podman names those.
    let is_host = Reference::parse_bare(&format!("{registry}/x"))
        .is_ok_and(|parsed| parsed.registry() == registry);
    if registry == oci_core::reference::DOCKER_HUB {
        repo.strip_prefix("library/").unwrap_or(repo).to_owned()
    } else if is_host {
        format!("{registry}/{repo}")
    } else {
        format!("localhost/{repo}")
    }
}

/// A layer's directory in the legacy format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyLayer {
    /// The layer id (a chain id's hex), the directory's name.
    pub id: String,
    /// The bytes of its `json` file.
    pub json: Bytes,
}

/// The `VERSION` file of every legacy layer directory.
pub const LEGACY_VERSION: &[u8] = b"1.0";

/// The diff_ids an image config lists (`rootfs.diff_ids`), which must be
/// one per layer.
pub fn diff_ids(config: &[u8], layers: usize) -> Result<Vec<Digest>> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<Digest>,
    }
    let config: Config = serde_json::from_slice(config).map_err(|e| {
        Error::new(
            ErrorCode::ManifestInvalid,
            format!("the image config has no valid rootfs.diff_ids: {e}"),
        )
    })?;
    if config.rootfs.diff_ids.len() != layers {
        return Err(Error::new(
            ErrorCode::ManifestInvalid,
            format!(
                "the image config lists {} diff_ids for {layers} layers",
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    Ok(config.rootfs.diff_ids)
}

/// The chain ids of layers with these diff_ids.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(prev) => Digest::sha256(format!("{prev} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The config fields the top layer's `json` carries, as skopeo copies them.
const TOP_LAYER_FIELDS: [&str; 7] = [
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
];

/// The legacy layer directories of an image, as skopeo writes them: each
/// `json` names its `parent` (the top one also carries the config's
/// fields), and a layer's id is the sha256 of that `json` with the layer's
/// chain id as `layer_id` in place of `id`. The JSON is written as Go
/// writes a map: keys sorted, values compact, `<`, `>` and `&` escaped.
pub fn legacy_layers(config: &[u8], diff_ids: &[Digest]) -> Result<Vec<LegacyLayer>> {
    let fields = top_level_fields(config)?;
    let chain = chain_ids(diff_ids);
    let mut out: Vec<LegacyLayer> = Vec::with_capacity(chain.len());
    for (i, chain_id) in chain.iter().enumerate() {
        let mut json: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(parent) = out.last() {
            json.insert("parent", format!("\"{}\"", parent.id));
        }
        if i + 1 == chain.len() {
            for field in TOP_LAYER_FIELDS {
                let value = fields.get(field).cloned();
                json.insert(field, value.unwrap_or_else(|| "null".to_owned()));
            }
        }
        json.insert("layer_id", format!("\"{chain_id}\""));
        let id = Digest::sha256(go_object(&json).as_bytes()).hex().to_owned();
        json.remove("layer_id");
        json.insert("id", format!("\"{id}\""));
        out.push(LegacyLayer {
            id,
            json: Bytes::from(go_object(&json)),
        });
    }
    Ok(out)
}

/// A JSON object of already-encoded values, keys in order.
fn go_object(fields: &BTreeMap<&str, String>) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// The top-level fields of a JSON object, each value as Go re-encodes a
/// raw message: compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped
/// inside strings; a repeated key keeps its last value.
fn top_level_fields(json: &[u8]) -> Result<BTreeMap<String, String>> {
    let invalid = |why: &str| {
        Error::new(
            ErrorCode::ManifestInvalid,
            format!("the image config is not a JSON object: {why}"),
        )
    };
    let parsed: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| invalid(&e.to_string()))?;
    if !parsed.is_object() {
        return Err(invalid("not an object"));
    }
    let text = std::str::from_utf8(json).map_err(|e| invalid(&e.to_string()))?;
    let compact = go_compact(text);
    // A valid, compact object: `{"key":value,...}`.
    let body = &compact[1..compact.len() - 1];
    let mut fields = BTreeMap::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0usize);
    let mut pieces = Vec::new();
    for (at, c) in body.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push(&body[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if !body.is_empty() {
        pieces.push(&body[start..]);
    }
    for piece in pieces {
        // The key is a string without a `":` inside it for every field we read.
        if let Some((key, value)) = piece.split_once("\":") {
            fields.insert(key.trim_start_matches('"').to_owned(), value.to_owned());
        }
    }
    Ok(fields)
}

/// Valid JSON text without insignificant whitespace, with the characters
/// Go escapes in strings escaped.
fn go_compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_string = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The `repositories` file: the tag names the top layer's id.
pub fn repositories(reference: &Reference, top: Option<&LegacyLayer>) -> Result<Option<Bytes>> {
    let (Some(tag), Some(top)) = (reference.tag(), top) else {
        return Ok(None);
    };
    let mut tags = BTreeMap::new();
    tags.insert(tag.to_string(), top.id.clone());
    let mut repos = BTreeMap::new();
    repos.insert(repo_name(reference), tags);
    to_json(&repos).map(Some)
}

/// The `manifest.json` of one image.
pub fn saved_manifest(reference: &Reference, config: &str, layers: Vec<String>) -> Result<Bytes> {
    let saved = [SavedImage {
        config: config.to_owned(),
        repo_tags: repo_tag(reference).into_iter().collect(),
        layers,
    }];
    to_json(&saved)
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
                    "layer {} is zstd-compressed, which docker tarballs cannot carry compressed; use --format docker-save (layers uncompressed) or --format oci",
                    layer.digest
                ),
            ));
        }
        if layer.media_type == media::DOCKER_LAYER_FOREIGN || layer.urls.is_some() {
            tracing::debug!(digest = %layer.digest, "foreign layer is written like any other");
        }
    }
    let diff_ids = diff_ids(&config_bytes, layers.len())?;
    let legacy = legacy_layers(&config_bytes, &diff_ids)?;
    let mut plan = Plan::new();
    let config_path = format!("{}.json", config.digest.hex());
    plan.push(config_path.clone(), Source::Inline(config_bytes));
    let mut layer_paths = Vec::with_capacity(layers.len());
    for (layer, dir) in layers.iter().zip(&legacy) {
        let path = format!("{}/layer.tar", dir.id);
        plan.push(format!("{}/", dir.id), Source::Directory);
        plan.push(
            format!("{}/VERSION", dir.id),
            Source::Inline(Bytes::from_static(LEGACY_VERSION)),
        );
        plan.push(format!("{}/json", dir.id), Source::Inline(dir.json.clone()));
        plan.push(path.clone(), Source::Blob(Box::new(layer.clone())));
        layer_paths.push(path);
    }
    plan.push(
        "manifest.json",
        Source::Inline(saved_manifest(reference, &config_path, layer_paths)?),
    );
    plan.push(MANIFEST_ENTRY, Source::Inline(manifest.bytes.clone()));
    if let Some(repos) = repositories(reference, legacy.last())? {
        plan.push("repositories", Source::Inline(repos));
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
    fn names_images_as_docker_loads_them() {
        let tag = |registry: &str, repo: &str| {
            let r = Reference::new(
                registry,
                repo.parse().unwrap(),
                Some("v1".parse().unwrap()),
                None,
            );
            repo_tag(&r).unwrap()
        };
        assert_eq!(tag("localhost:5000", "a/b"), "localhost:5000/a/b:v1");
        assert_eq!(tag("docker.io", "library/alpine"), "alpine:v1");
        assert_eq!(tag("quay.io", "a/b"), "quay.io/a/b:v1");
        // Read from a store directly: no host to name it by.
        assert_eq!(tag("s3://bucket/prefix", "a/b"), "localhost/a/b:v1");
        assert_eq!(tag("layouts", "a/b"), "localhost/a/b:v1");
        assert_eq!(tag("/srv/reg", "a/b"), "localhost/a/b:v1");
    }

    #[test]
    fn plans_docker_layout() {
        let r: Reference = "localhost:5000/app:v1".parse().unwrap();
        let l1 = Descriptor::of(media::OCI_LAYER_GZIP, b"one");
        let l2 = Descriptor::of(media::OCI_LAYER_GZIP, b"two");
        let (d1, d2) = (Digest::sha256(b"tar one"), Digest::sha256(b"tar two"));
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{d1}","{d2}","{d1}"]}}}}"#
        );
        let cfg = Descriptor::of(media::OCI_CONFIG, config.as_bytes());
        let m = Manifest::new(
            media::OCI_MANIFEST,
            Bytes::from_static(b"{\"schemaVersion\":2}"),
        );
        let plan = plan(
            &r,
            &m,
            &cfg,
            Bytes::from(config),
            &[l1.clone(), l2, l1.clone()],
        )
        .unwrap();
        let paths: Vec<_> = plan.entries().iter().map(|e| e.path.as_str()).collect();
        // The config, four entries per layer, manifest.json, ours, repositories.
        assert_eq!(paths.len(), 16, "{paths:?}");
        let chain = chain_ids(&[d1.clone(), d2.clone(), d1.clone()]);
        assert_eq!(chain[0], d1);
        assert_eq!(chain[1], Digest::sha256(format!("{d1} {d2}").as_bytes()));
        assert_ne!(chain[2], chain[0], "a repeated layer gets its own id");
        let ids: Vec<&str> = paths
            .iter()
            .filter_map(|p| p.strip_suffix("/VERSION"))
            .collect();
        assert_eq!(ids.len(), 3, "one directory per position: {paths:?}");
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
        assert_eq!(v[0]["Layers"][0], format!("{}/layer.tar", ids[0]));
        let repos = plan
            .entries()
            .iter()
            .find(|e| e.path == "repositories")
            .unwrap();
        let Source::Inline(json) = &repos.source else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v["localhost:5000/app"]["v1"], ids[2]);
    }

    #[test]
    fn legacy_json_chains_parents_and_tops_with_the_config() {
        let (d1, d2) = (Digest::sha256(b"a"), Digest::sha256(b"b"));
        let config = br#"{"os":"linux", "architecture":"arm64","config":{"Env":["A=1"], "Cmd":["a && b <c>"]}}"#;
        let legacy = legacy_layers(config, &[d1.clone(), d2.clone()]).unwrap();
        let first = format!(r#"{{"layer_id":"{d1}"}}"#);
        assert_eq!(legacy[0].id, Digest::sha256(first.as_bytes()).hex());
        assert_eq!(
            std::str::from_utf8(&legacy[0].json).unwrap(),
            format!(r#"{{"id":"{}"}}"#, legacy[0].id)
        );
        let fields = r#""architecture":"arm64","config":{"Env":["A=1"],"Cmd":["a \u0026\u0026 b \u003cc\u003e"]},"container":null,"container_config":null,"created":null,"docker_version":null"#;
        let chain = chain_ids(&[d1, d2]);
        let hashed = format!(
            r#"{{{fields},"layer_id":"{}","os":"linux","parent":"{}"}}"#,
            chain[1], legacy[0].id
        );
        assert_eq!(legacy[1].id, Digest::sha256(hashed.as_bytes()).hex());
        assert_eq!(
            std::str::from_utf8(&legacy[1].json).unwrap(),
            format!(
                r#"{{{fields},"id":"{}","os":"linux","parent":"{}"}}"#,
                legacy[1].id, legacy[0].id
            )
        );
        assert!(diff_ids(config, 2).is_err(), "no rootfs");
    }
}
