//! The kill test: a child process (this binary, re-run with
//! `OCI_LAYOUT_PUSHER` set) pushes blobs, chunked uploads and tagged
//! manifests into one store in a loop and prints each item once it is
//! acknowledged; the parent kills it (SIGKILL) at a random moment, again
//! and again, then reopens the store and checks that every acknowledged
//! item is there and intact and that no file in the store is partial.
//!
//! It runs without the libtest harness (`harness = false`), since it is a
//! program that starts copies of itself.

// A test program: a failed step panics with its error, as in a #[test].
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use oci_core::registry::bytes_stream;
use oci_core::testkit::{ImageOptions, build_image};
use oci_core::{Digest, ErrorCode, Registry, RepoName, Tag};
use oci_layout::LayoutRegistry;
use rand::{Rng, RngCore, SeedableRng};

/// Set in the child to the store's root.
const PUSHER: &str = "OCI_LAYOUT_PUSHER";

/// How many times the pusher is killed.
const ROUNDS: usize = 30;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(root) = std::env::var(PUSHER) {
        runtime.block_on(pusher(PathBuf::from(root)));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acked = kill_rounds(dir.path());
    let counts = runtime.block_on(verify(dir.path(), &acked));
    println!(
        "kill test: {ROUNDS} kills; verified {} blobs, {} manifests, {} uploads; {} files hashed",
        counts.blobs, counts.manifests, counts.uploads, counts.files
    );
    println!("1 passed, 0 failed");
}

/// Bytes generated from a seed, so the parent can rebuild them.
fn seeded(seed: u64, len: usize) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data.into()
}

/// Prints one acknowledged item (a whole line, flushed).
fn ack(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The child: pushes until it is killed.
async fn pusher(root: PathBuf) {
    // The previous child's lock goes with it; its death is already reaped.
    let reg = LayoutRegistry::open(&root).await.unwrap();
    let repos: Vec<RepoName> = ["kill/a", "kill/b"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    let mut rng = rand::rng();
    for i in 0u64.. {
        let repo = &repos[(i % 2) as usize];
        let seed: u64 = rng.random();
        match i % 3 {
            0 => {
                let data = seeded(seed, rng.random_range(1..3_000_000));
                let digest = Digest::sha256(&data);
                let size = data.len() as u64;
                reg.push_blob(repo, &digest, Some(size), bytes_stream(data, 64 * 1024))
                    .await
                    .unwrap();
                ack(format!("blob {repo} {digest} {size}"));
            }
            1 => {
                let data = seeded(seed, rng.random_range(2..2_000_000));
                let half = data.len() / 2;
                let digest = Digest::sha256(&data);
                let mut writer = reg.push_blob_chunked(repo).await.unwrap();
                writer.write(data.slice(..half)).await.unwrap();
                let id = writer.id().to_owned();
                writer.close().await.unwrap();
                ack(format!(
                    "upload {repo} {id} {half} {} {seed} {digest}",
                    data.len()
                ));
                let mut writer = reg.push_blob_chunked_resume(repo, &id).await.unwrap();
                writer.write(data.slice(half..)).await.unwrap();
                writer.commit(&digest).await.unwrap();
                ack(format!("blob {repo} {digest} {}", data.len()));
            }
            _ => {
                let image = build_image(&ImageOptions {
                    layers: 2,
                    layer_size: rng.random_range(1..200_000),
                    ..ImageOptions::default()
                });
                let tag: Tag = format!("m{i}-{seed:x}").parse().unwrap();
                image.push(&reg, repo, std::slice::from_ref(&tag)).await;
                ack(format!("manifest {repo} {} {tag}", image.digest()));
            }
        }
    }
}

/// Starts and kills the pusher `ROUNDS` times; returns the lines it
/// acknowledged.
fn kill_rounds(root: &Path) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env(PUSHER, root)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            while out.read_line(&mut line).unwrap_or(0) > 0 {
                // Only whole lines were acknowledged.
                if let Some(whole) = line.strip_suffix('\n') {
                    lines.push(whole.to_owned());
                }
                line.clear();
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(30..800)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the pusher stopped by itself"
        );
        let lines = reader.join().unwrap();
        eprintln!("round {round}: {} items acknowledged", lines.len());
        acked.extend(lines);
    }
    acked
}

#[derive(Default)]
struct Counts {
    blobs: usize,
    manifests: usize,
    uploads: usize,
    files: usize,
}

/// Reopens the store and checks every acknowledged item and every file.
async fn verify(root: &Path, acked: &[String]) -> Counts {
    let reg = LayoutRegistry::open(root).await.unwrap();
    let mut counts = Counts::default();
    let mut committed: HashMap<String, ()> = HashMap::new();
    for line in acked {
        let f: Vec<&str> = line.split(' ').collect();
        let repo: RepoName = f[1].parse().unwrap();
        match f[0] {
            "blob" => {
                let digest: Digest = f[2].parse().unwrap();
                let read = reg.get_blob(&repo, &digest).await.unwrap();
                assert_eq!(read.descriptor.size.to_string(), f[3], "{line}");
                read.bytes().await.unwrap_or_else(|e| panic!("{line}: {e}"));
                committed.insert(f[2].to_owned(), ());
                counts.blobs += 1;
            }
            "manifest" => {
                let digest: Digest = f[2].parse().unwrap();
                let tag: Tag = f[3].parse().unwrap();
                let got = reg
                    .get_tag(&repo, &tag)
                    .await
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(got.descriptor.digest, digest, "{line}");
                let parsed = got.parse().unwrap();
                for blob in parsed.blobs() {
                    let read = reg.get_blob(&repo, &blob.digest).await.unwrap();
                    read.bytes().await.unwrap_or_else(|e| panic!("{line}: {e}"));
                }
                counts.manifests += 1;
            }
            _ => {}
        }
    }
    // Uploads acknowledged half-way: resumable at the acknowledged offset
    // (or at their full size if the commit was under way), or committed.
    for line in acked.iter().filter(|l| l.starts_with("upload ")) {
        let f: Vec<&str> = line.split(' ').collect();
        let repo: RepoName = f[1].parse().unwrap();
        let (id, half, len) = (
            f[2],
            f[3].parse::<usize>().unwrap(),
            f[4].parse::<usize>().unwrap(),
        );
        let seed: u64 = f[5].parse().unwrap();
        let digest: Digest = f[6].parse().unwrap();
        match reg.push_blob_chunked_resume(&repo, id).await {
            Ok(mut writer) => {
                let data = seeded(seed, len);
                let at = writer.size() as usize;
                assert!(at == half || at == len, "{line}: resumed at {at}");
                if at < len {
                    writer.write(data.slice(at..)).await.unwrap();
                }
                writer
                    .commit(&digest)
                    .await
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
            }
            Err(e) if e.is(ErrorCode::BlobUploadUnknown) => {
                assert!(
                    reg.resolve_blob(&repo, &digest).await.is_ok(),
                    "{line}: the upload vanished without its blob"
                );
            }
            Err(e) => panic!("{line}: {e}"),
        }
        reg.get_blob(&repo, &digest)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        counts.uploads += 1;
    }
    counts.files = hash_every_file(root);
    counts
}

/// Checks that every blob file under `root` hashes to its name: nothing
/// partial is visible anywhere. Returns how many files were checked.
fn hash_every_file(root: &Path) -> usize {
    let mut checked = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let alg = path
                .parent()
                .and_then(|p| p.file_name())
                .unwrap()
                .to_string_lossy();
            if alg != "sha256" {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy();
            let digest: Digest = format!("sha256:{name}").parse().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                digest.matches(&bytes),
                "{} is partial or corrupt",
                path.display()
            );
            checked += 1;
        }
    }
    let tmp: Vec<_> = std::fs::read_dir(root.join(".tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "opening the store clears .tmp");
    checked
}
