//! `ocidist export` writes the filesystem `umoci unpack` makes of the same
//! image (pulled as an OCI layout by `ocidist pull`), for gzip, zstd and
//! plain layers with file and directory whiteouts; a hostile layer writes
//! nothing outside the root when its export is unpacked.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::testkit::Image;
use oci_core::{Descriptor, Digest, ImageManifest, Manifest, Tag, media};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use ocidist::connect::{ConnectOptions, Connector};
use support::{fails, ocidist, ok, run};

/// One entry of a test layer.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// An uncompressed layer tar of `entries`, written by the tar crate.
fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, mode, data) => {
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::HardLink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Compression {
    Plain,
    Gzip,
    Zstd,
}

fn compress(tar: &[u8], c: Compression) -> (Vec<u8>, &'static str) {
    match c {
        Compression::Plain => (tar.to_vec(), media::OCI_LAYER),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            (
                gz.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Compression::Zstd => (
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// An OCI image of these uncompressed layers (base first), compressed.
fn image(tars: &[Vec<u8>], c: Compression) -> Image {
    let mut layers = Vec::new();
    let mut layer_bytes = Vec::new();
    for tar in tars {
        let (bytes, media_type) = compress(tar, c);
        let bytes = Bytes::from(bytes);
        layers.push(Descriptor::of(media_type, &bytes));
        layer_bytes.push(bytes);
    }
    let diff_ids: Vec<String> = tars.iter().map(|t| Digest::sha256(t).to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = Bytes::from(serde_json::to_vec(&config).unwrap());
    let config_desc = Descriptor::of(media::OCI_CONFIG, &config_bytes);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: config_desc.clone(),
        layers: layers.clone(),
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    Image {
        manifest: Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        config: config_desc,
        config_bytes,
        layers,
        layer_bytes,
    }
}

/// Three layers: a base with a hard link; one removing a file, a
/// directory and a directory's old contents (opaque), changing a file and
/// linking to a file of the base;
/// one making the removed directory again, adding symlinks and replacing
/// the file the base's hard link shares.
fn whiteout_layers() -> Vec<Vec<u8>> {
    vec![
        layer(&[
            E::Dir("etc", 0o755),
            E::File("etc/keep", 0o644, b"old keep\n"),
            E::File("etc/gone", 0o644, b"removed above\n"),
            E::Dir("opt", 0o755),
            E::File("opt/a", 0o644, b"hidden by the opaque marker\n"),
            E::Dir("opt/sub", 0o700),
            E::File("opt/sub/c", 0o600, b"also hidden\n"),
            E::Dir("usr", 0o755),
            E::Dir("usr/bin", 0o755),
            E::File("usr/bin/tool", 0o755, b"#!/bin/sh\necho tool\n"),
            E::HardLink("usr/bin/tool2", "usr/bin/tool"),
            E::Symlink("usr/bin/t", "tool"),
            E::Dir("var", 0o755),
            E::Dir("var/cache", 0o755),
            E::File("var/cache/big", 0o644, &[7u8; 70_000]),
            E::File("setuid", 0o4755, b"s"),
        ]),
        layer(&[
            E::Dir("etc", 0o755),
            E::File("etc/.wh.gone", 0o644, b""),
            E::File("etc/keep", 0o600, b"new keep\n"),
            E::Dir("opt", 0o750),
            E::File("opt/.wh..wh..opq", 0o644, b""),
            E::File("opt/new", 0o644, b"only this in opt\n"),
            E::File(".wh.var", 0o644, b""),
            E::Dir("home", 0o755),
            E::Dir("home/user", 0o700),
            E::File("home/user/notes", 0o640, b"notes\n"),
            E::HardLink("home/user/s", "setuid"),
        ]),
        layer(&[
            E::Dir("var", 0o711),
            E::File("var/fresh", 0o644, b"a new var\n"),
            E::Symlink("abs", "/etc/keep"),
            E::Symlink("up", "../../../etc/keep"),
            E::Dir("usr", 0o755),
            E::Dir("usr/bin", 0o755),
            E::File("usr/bin/tool", 0o755, b"#!/bin/sh\necho tool v2\n"),
        ]),
    ]
}

/// What a filesystem holds, as unpacked: path -> description.
type Tree = BTreeMap<String, String>;

fn describe_file(mode: u32, data: &[u8]) -> String {
    format!("file {:o} {}", mode & 0o7777, Digest::sha256(data))
}

/// The tree `umoci unpack` wrote under `rootfs`.
fn tree_of_dir(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode();
            let d = if meta.file_type().is_symlink() {
                format!("symlink {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o}", mode & 0o7777)
            } else {
                describe_file(mode, &std::fs::read(&path).unwrap())
            };
            out.insert(rel, d);
        }
    }
    out
}

/// The tree an export tar describes (hard links as their target's file).
fn tree_of_tar(tar: &[u8]) -> Tree {
    let mut out = Tree::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        let mode = entry.header().mode().unwrap();
        let d = match entry.header().entry_type() {
            tar::EntryType::Directory => format!("dir {:o}", mode & 0o7777),
            tar::EntryType::Symlink => {
                format!("symlink {}", entry.link_name().unwrap().unwrap().display())
            }
            tar::EntryType::Link => {
                let target = entry.link_name().unwrap().unwrap();
                out[target.to_str().unwrap()].clone()
            }
            _ => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                describe_file(mode, &data)
            }
        };
        assert!(out.insert(path.clone(), d).is_none(), "{path} twice");
    }
    out
}

async fn server() -> (TestServer, String) {
    let server = TestServer::start(Arc::new(MemRegistry::new())).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    (server, host)
}

/// Pushes `image` to `host/repo:latest` through the client library.
async fn push(host: &str, repo: &str, image: &Image) {
    let registry = Connector::from_options(&ConnectOptions::default())
        .unwrap()
        .connect(host)
        .unwrap();
    image
        .push(registry.as_ref(), &repo.parse().unwrap(), &[Tag::latest()])
        .await;
}

/// umoci's rootfs of `reference`, pulled by `ocidist pull` as a layout.
async fn umoci_tree(reference: &str, dir: &Path) -> Tree {
    let layout = dir.join("layout");
    ok(&ocidist(&[
        "pull",
        reference,
        "--format",
        "oci-dir",
        "-o",
        layout.to_str().unwrap(),
    ])
    .await);
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    tree_of_dir(&bundle.join("rootfs"))
}

async fn export_matches_umoci(exported: Compression, unpacked: Compression) {
    let (_server, host) = server().await;
    let tars = whiteout_layers();
    push(&host, "exp/ours", &image(&tars, exported)).await;
    push(&host, "exp/umoci", &image(&tars, unpacked)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rootfs.tar");
    let said = ocidist(&[
        "export",
        &format!("{host}/exp/ours"),
        "-o",
        out.to_str().unwrap(),
    ])
    .await;
    ok(&said);
    let ours = tree_of_tar(&std::fs::read(&out).unwrap());
    let theirs = umoci_tree(&format!("{host}/exp/umoci"), dir.path()).await;
    assert_eq!(
        ours, theirs,
        "export ({exported:?}) differs from umoci unpack"
    );
    // The same layers compressed otherwise export to the same bytes.
    let other = dir.path().join("other.tar");
    ok(&ocidist(&[
        "export",
        &format!("{host}/exp/umoci"),
        "-o",
        other.to_str().unwrap(),
    ])
    .await);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&other).unwrap());
    // What the layers say, checked by hand too.
    assert!(!ours.contains_key("etc/gone") && !ours.contains_key("opt/a"));
    assert!(!ours.contains_key("var/cache") && ours.contains_key("var/fresh"));
    assert_eq!(ours["opt"], "dir 750");
    assert_eq!(ours["setuid"], describe_file(0o4755, b"s"));
    assert_eq!(ours["usr/bin/t"], "symlink tool");
    assert_eq!(ours["home/user/s"], ours["setuid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_export_matches_umoci_unpack() {
    export_matches_umoci(Compression::Gzip, Compression::Gzip).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_export_matches_umoci_unpack() {
    export_matches_umoci(Compression::Plain, Compression::Plain).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_export_matches_umoci_unpack() {
    // umoci 0.4 reads no zstd layers: it unpacks the same tars gzipped.
    export_matches_umoci(Compression::Zstd, Compression::Gzip).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_stdout_is_the_same_tar() {
    let (_server, host) = server().await;
    push(
        &host,
        "exp/std",
        &image(&whiteout_layers(), Compression::Gzip),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rootfs.tar");
    let reference = format!("{host}/exp/std");
    ok(&ocidist(&["export", &reference, "-o", out.to_str().unwrap()]).await);
    let piped = ocidist(&["export", &reference, "-o", "-"]).await;
    assert!(piped.status.success());
    assert_eq!(piped.stdout, std::fs::read(&out).unwrap());
    // An existing file is kept unless --force.
    fails(
        &ocidist(&["export", &reference, "-o", out.to_str().unwrap()]).await,
        "already exists",
    );
}

/// A raw tar header: any name, any type, as a hostile tool writes it.
fn raw_entry(out: &mut Vec<u8>, name: &[u8], kind: u8, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layer_cannot_write_outside_the_root() {
    let mut evil = Vec::new();
    raw_entry(&mut evil, b"../escaped", b'0', b"", b"out of root");
    raw_entry(&mut evil, b"a/../../escaped2", b'0', b"", b"out of root");
    raw_entry(&mut evil, b"/absolute", b'0', b"", b"kept, inside the root");
    raw_entry(&mut evil, b"lnk", b'2', b"/tmp", b"");
    raw_entry(
        &mut evil,
        b"lnk/through-symlink",
        b'0',
        b"",
        b"would land in /tmp",
    );
    raw_entry(&mut evil, b"hard", b'1', b"../../etc/passwd", b"");
    raw_entry(&mut evil, b"hard-abs", b'1', b"/etc/passwd", b"");
    // A 2 MiB GNU long name: skipped, with the entry it names, unread.
    raw_entry(&mut evil, b"././@LongLink", b'L', b"", &vec![b'x'; 2 << 20]);
    raw_entry(
        &mut evil,
        b"truncated-name",
        b'0',
        b"",
        b"named by the long header",
    );
    raw_entry(&mut evil, b"fine", b'0', b"", b"ok");
    evil.extend_from_slice(&[0u8; 1024]);
    let (_server, host) = server().await;
    push(&host, "exp/evil", &image(&[evil], Compression::Gzip)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rootfs.tar");
    let said = ocidist(&[
        "export",
        &format!("{host}/exp/evil"),
        "-o",
        out.to_str().unwrap(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&said.stderr).into_owned();
    ok(&said);
    for skipped in [
        "skipped ../escaped: a `..` component",
        "skipped a/../../escaped2: a `..` component",
        "skipped lnk/through-symlink: below a non-directory of the same layer",
        "skipped hard: a hard link to ../../etc/passwd",
        "skipped hard-abs: a hard link to etc/passwd, not a file of the image",
        "2097152-byte long-name or pax header",
    ] {
        assert!(stderr.contains(skipped), "{skipped:?} not in {stderr}");
    }
    let tree = tree_of_tar(&std::fs::read(&out).unwrap());
    let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(paths, ["absolute", "fine", "lnk"]);
    // GNU tar unpacks it inside its directory and nowhere else.
    let root = dir.path().join("box/root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&root));
    let outside: Vec<_> = std::fs::read_dir(dir.path().join("box")).unwrap().collect();
    assert_eq!(outside.len(), 1, "only root/ in box/");
    assert!(!Path::new("/tmp/through-symlink").exists());
    assert_eq!(
        std::fs::read(root.join("absolute")).unwrap(),
        b"kept, inside the root"
    );
}

/// Serves a store whose layer `bad` comes back with one byte changed.
struct Corrupting {
    inner: MemRegistry,
    bad: Digest,
}

#[oci_core::async_trait]
impl oci_core::Registry for Corrupting {
    fn forward_to(&self) -> Option<&dyn oci_core::Registry> {
        Some(&self.inner)
    }

    async fn get_blob(
        &self,
        repo: &oci_core::RepoName,
        digest: &Digest,
    ) -> oci_core::Result<oci_core::BlobReader> {
        let reader = self.inner.get_blob(repo, digest).await?;
        if *digest == self.bad {
            let mut changed = reader.bytes().await?.to_vec();
            let last = changed.len() - 1;
            changed[last] ^= 1;
            let descriptor = self.inner.resolve_blob(repo, digest).await?;
            return Ok(oci_core::BlobReader {
                descriptor,
                range: None,
                stream: futures::stream::iter([Ok(Bytes::from(changed))]).boxed(),
            });
        }
        Ok(reader)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_that_does_not_match_its_digest_fails_the_export() {
    let image = image(&whiteout_layers(), Compression::Gzip);
    let store = Corrupting {
        inner: MemRegistry::new(),
        bad: image.layers[0].digest.clone(),
    };
    image
        .push(&store.inner, &"exp/bad".parse().unwrap(), &[Tag::latest()])
        .await;
    let server = TestServer::start(Arc::new(store)).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rootfs.tar");
    let said = ocidist(&[
        "export",
        &format!("{host}/exp/bad"),
        "-o",
        out.to_str().unwrap(),
    ])
    .await;
    fails(&said, "does not match");
    let left = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(left, 0, "nothing written at or beside the target");
}
