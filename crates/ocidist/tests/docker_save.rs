//! Docker tarballs in the full `docker save` format: the legacy layer
//! directories (`VERSION`, `json` with its id and parent, ids from the
//! chain ids) and `repositories` as skopeo writes them for the same image,
//! layers compressed as served or (`--format docker-save`) uncompressed
//! and named by diff_id, each verified against the config; `podman load`
//! loads both with the config digest as the image id.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use oci_core::{Descriptor, Digest, ImageManifest, Manifest, Registry, RepoName, Tag, media};
use oci_server::TestServer;
use support::{fails, ocidist, ok, podman_load, run, tar_layer};

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap().into()
}

async fn put_blob(
    reg: &dyn Registry,
    repo: &RepoName,
    media_type: &str,
    data: Bytes,
) -> Descriptor {
    let d = Descriptor::of(media_type, &data);
    reg.push_blob(
        repo,
        &d.digest,
        Some(d.size),
        oci_core::registry::bytes_stream(data, 4096),
    )
    .await
    .unwrap();
    d
}

/// Pushes an image of gzip layers (the first one repeated on top, as
/// identical empty layers are) under `tag`; with `wrong`, the config
/// gives the second layer a false diff_id; with `zstd`, a zstd layer
/// goes on top. Returns the config's digest.
async fn push_image(
    reg: &dyn Registry,
    repo: &RepoName,
    tag: &str,
    wrong: bool,
    zstd: bool,
) -> Digest {
    let tars: Vec<Bytes> = (0..2)
        .map(|i| tar_layer(&format!("file{i}"), 3000 + i))
        .collect();
    let order = [0, 1, 0];
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for &i in &order {
        layers.push(put_blob(reg, repo, media::OCI_LAYER_GZIP, gzip(&tars[i])).await);
        diff_ids.push(Digest::sha256(&tars[i]).to_string());
    }
    if zstd {
        let tar = tar_layer("zstd-file", 5000);
        let packed = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        layers.push(put_blob(reg, repo, media::OCI_LAYER_ZSTD, packed.into()).await);
        diff_ids.push(Digest::sha256(&tar).to_string());
    }
    if wrong {
        diff_ids[1] = Digest::sha256(b"not this layer").to_string();
    }
    // Go's field order, and a command with characters Go escapes.
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh","-c","true && echo <ok>"]}},"rootfs":{{"type":"layers","diff_ids":{}}}}}"#,
        serde_json::to_string(&diff_ids).unwrap()
    );
    let config = put_blob(reg, repo, media::OCI_CONFIG, Bytes::from(config)).await;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: config.clone(),
        layers,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let m = Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap());
    reg.push_manifest(repo, &m, &[tag.parse::<Tag>().unwrap()])
        .await
        .unwrap();
    config.digest
}

/// Extracts a tarball with tar(1); the entries as path → (kind, content).
fn extract(tarball: &Path, dir: &Path) -> BTreeMap<String, String> {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("-C")
        .arg(dir));
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = path.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(name, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let shown = if name.ends_with(".tar") {
                    Digest::sha256(&bytes).to_string()
                } else {
                    String::from_utf8(bytes).unwrap()
                };
                out.insert(name, shown);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_tarballs_carry_the_legacy_format_as_skopeo_writes_it() {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    let repo: RepoName = "save/app".parse().unwrap();
    let config = push_image(mem.as_ref(), &repo, "v1", false, false).await;
    push_image(mem.as_ref(), &repo, "wrong", true, false).await;
    let zstd_config = push_image(mem.as_ref(), &repo, "zstd", false, true).await;
    let server = TestServer::start(mem).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    let image = format!("{host}/save/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let (plain, packed, theirs) = (
        dir.path().join("plain.tar"),
        dir.path().join("packed.tar"),
        dir.path().join("skopeo.tar"),
    );
    let pull = |format: &'static str, out: &Path| {
        let out = out.to_str().unwrap().to_owned();
        let image = image.clone();
        async move {
            ok(&ocidist(&[
                "pull",
                "--no-progress",
                "--format",
                format,
                &image,
                "-o",
                &out,
            ])
            .await)
        }
    };
    pull("docker-save", &plain).await;
    pull("docker", &packed).await;
    tokio::task::block_in_place(|| {
        run(Command::new("skopeo").args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{image}"),
            &format!("docker-archive:{}:{image}", theirs.display()),
        ]))
    });
    let ours = extract(&plain, &dir.path().join("plain"));
    let skopeo = extract(&theirs, &dir.path().join("skopeo"));
    // Uncompressed: the same files, links and contents as skopeo's.
    assert_eq!(ours, skopeo);
    let legacy: Vec<&String> = ours.keys().filter(|k| k.ends_with("/VERSION")).collect();
    assert_eq!(legacy.len(), 3, "a directory per layer position: {ours:?}");
    for version in &legacy {
        assert_eq!(ours[*version], "1.0");
    }
    // The parent chain runs from the top layer (named in repositories) down.
    let repositories: serde_json::Value = serde_json::from_str(&ours["repositories"]).unwrap();
    let mut id = repositories[format!("{host}/save/app")]["v1"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut chain = Vec::new();
    loop {
        let json: serde_json::Value = serde_json::from_str(&ours[&format!("{id}/json")]).unwrap();
        assert_eq!(json["id"], id);
        chain.push(id.clone());
        match json["parent"].as_str() {
            Some(parent) => id = parent.to_owned(),
            None => break,
        }
    }
    assert_eq!(chain.len(), 3);
    // The diff_id-named layers were verified by the loaders' checksums too.
    let saved: serde_json::Value = serde_json::from_str(&ours["manifest.json"]).unwrap();
    assert_eq!(saved[0]["Layers"][0], saved[0]["Layers"][2]);

    // Compressed: the same legacy metadata, each layer.tar the served blob.
    let compressed = extract(&packed, &dir.path().join("packed"));
    for (name, content) in &ours {
        if name.ends_with("/VERSION") || name.ends_with("/json") || name == "repositories" {
            assert_eq!(compressed.get(name), Some(content), "{name}");
        }
    }
    for id in &chain {
        assert!(compressed.contains_key(&format!("{id}/layer.tar")));
    }

    // podman loads both, with the config digest as the image id.
    let (loaded, _) = tokio::task::block_in_place(|| podman_load(&plain, &dir.path().join("p1")));
    assert_eq!(loaded, config.hex());
    let (loaded, _) = tokio::task::block_in_place(|| podman_load(&packed, &dir.path().join("p2")));
    assert_eq!(loaded, config.hex());

    // zstd layers: refused compressed, written uncompressed and loaded.
    let zstd_image = format!("{host}/save/app:zstd");
    let zstd_out = dir.path().join("zstd.tar");
    let zstd_args = |format: &'static str| {
        [
            "pull",
            "--no-progress",
            "--format",
            format,
            zstd_image.as_str(),
            "-o",
            zstd_out.to_str().unwrap(),
        ]
    };
    fails(&ocidist(&zstd_args("docker")).await, "--format docker-save");
    ok(&ocidist(&zstd_args("docker-save")).await);
    let (loaded, _) =
        tokio::task::block_in_place(|| podman_load(&zstd_out, &dir.path().join("p3")));
    assert_eq!(loaded, zstd_config.hex());

    // A layer that does not decompress to its diff_id is refused, and
    // nothing is left behind.
    let out = dir.path().join("wrong").join("x.tar");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    fails(
        &ocidist(&[
            "pull",
            "--no-progress",
            "--format",
            "docker-save",
            &format!("{host}/save/app:wrong"),
            "-o",
            out.to_str().unwrap(),
        ])
        .await,
        "diff_id",
    );
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 0);
}
