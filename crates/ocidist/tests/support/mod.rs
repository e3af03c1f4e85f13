//! Test images with real tar layers, and helpers to check outputs with
//! skopeo and umoci.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use oci_core::testkit::{
    Image, ImageConfigExtra, Index, image_config, image_of, index_of, platforms, random_bytes,
};
use oci_core::{Digest, Platform, media};
use ocidist::archive::tar;

/// An uncompressed tar holding one file of `size` random bytes.
pub fn tar_layer(name: &str, size: usize) -> Bytes {
    tar::one_file(name, &random_bytes(size)).unwrap()
}

/// An image of `layers` tar layers for `platform`, OCI or Docker schema2.
pub fn tar_image(platform: &Platform, layers: usize, layer_size: usize, docker: bool) -> Image {
    let (config_type, layer_type, manifest_type) = if docker {
        (
            media::DOCKER_CONFIG,
            "application/vnd.docker.image.rootfs.diff.tar",
            media::DOCKER_MANIFEST,
        )
    } else {
        (media::OCI_CONFIG, media::OCI_LAYER, media::OCI_MANIFEST)
    };
    let layers: Vec<(&str, Bytes)> = (0..layers)
        .map(|i| (layer_type, tar_layer(&format!("file{i}"), layer_size)))
        .collect();
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, b)| Digest::sha256(b)).collect();
    let config = image_config(platform, &diff_ids, ImageConfigExtra::default());
    image_of(manifest_type, config_type, config, layers)
}

/// An OCI index over linux/amd64, linux/arm64 and linux/arm/v7 tar images.
pub fn tar_index() -> Index {
    let children = platforms()
        .into_iter()
        .map(|p| (tar_image(&p, 2, 2048, false), p))
        .collect();
    index_of(media::OCI_INDEX, children)
}

/// Runs a command and returns its stdout, panicking with its stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run .ci/install-deps)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo inspect --raw` of a transport reference, parsed.
pub fn skopeo_raw(transport_ref: &str) -> serde_json::Value {
    let out =
        run(Command::new("skopeo").args(["--insecure-policy", "inspect", "--raw", transport_ref]));
    serde_json::from_str(&out).unwrap()
}

/// `skopeo inspect --raw` of an image in a plain-http registry, parsed;
/// `extra` go before the reference (`--authfile`, `--creds`).
pub fn skopeo_raw_http(extra: &[&str], image: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .args(extra)
        .arg(format!("docker://{image}")));
    serde_json::from_str(&out).unwrap()
}

/// Copies `src` (a skopeo transport reference) to a fresh OCI layout under
/// `dir` and returns the config digest of the image in it.
pub fn skopeo_to_oci_config_digest(src: &str, dir: &Path) -> String {
    let dest = format!("oci:{}:copied", dir.display());
    run(Command::new("skopeo").args(["--insecure-policy", "copy", "--quiet", src, &dest]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let (alg, hex) = manifest_digest.split_once(':').unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs").join(alg).join(hex)).unwrap())
            .unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

/// Runs the binary (off the async runtime's threads) with no stored
/// credentials.
pub async fn ocidist(args: &[&str]) -> std::process::Output {
    ocidist_with(
        args,
        &[("DOCKER_CONFIG", "/nonexistent-ocidist-test")],
        None,
    )
    .await
}

/// Runs the binary with extra environment variables and, if given, bytes
/// on its standard input.
pub async fn ocidist_with(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocidist"))
            .args(&args)
            .envs(envs)
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(&input).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// The stdout of a successful run.
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "ocidist failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failure: non-zero exit and one line on stderr containing `needle`.
pub fn fails(out: &std::process::Output, needle: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("ocidist: "), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// A running `ocidist serve`, killed on drop.
pub struct Served {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ocidist serve ARGS --addr 127.0.0.1:0` (unless ARGS give an
/// `--addr`) and reads its address (http or https); the error is what it
/// printed instead.
pub fn serve(args: &[&str]) -> Result<Served, String> {
    serve_env(args, &[])
}

/// As [`serve`], with extra environment variables (an S3 server's).
pub fn serve_env(args: &[&str], envs: &[(String, String)]) -> Result<Served, String> {
    use std::io::BufRead;
    let addr: &[&str] = if args.contains(&"--addr") {
        &[]
    } else {
        &["--addr", "127.0.0.1:0"]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocidist"))
        .arg("serve")
        .args(args)
        .args(addr)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let url = line.strip_prefix("listening on ");
        if let Some(host) = url.and_then(|u| {
            u.strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"))
        }) {
            let host = host.to_owned();
            // Keep draining stderr so the server never blocks on it.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(Served { child, host });
        }
        seen.push(line);
    }
    let _ = child.wait();
    Err(seen.join("\n"))
}

/// Loads a `docker save` tarball with `podman load` into a private store
/// under `dir` and returns the loaded image's full ID (its config digest
/// hex) and name.
pub fn podman_load(tar: &Path, dir: &Path) -> (String, String) {
    let root = dir.join("podman-root");
    let runroot = dir.join("podman-run");
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"])
            .args(args);
        run(&mut cmd)
    };
    let loaded = podman(&["load", "-i", tar.to_str().unwrap()]);
    let name = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load said: {loaded}"))
        .trim()
        .to_owned();
    let id = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    (id.trim().trim_start_matches("sha256:").to_owned(), name)
}

/// Sends one raw HTTP/1.1 request that asks to close; the answer.
pub async fn raw_request(host: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
