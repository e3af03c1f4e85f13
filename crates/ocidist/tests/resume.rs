//! Transfers killed mid-way (SIGKILL) and run again finish with the same
//! bytes while moving only what was missing: the registry counts what it
//! serves and receives, and lets through only as much as a test allows, so
//! the kill lands where the test wants it.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Digest, Platform, RangeRequest, Registry, RepoName, Result,
    Tag, async_trait,
};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use support::tar_image;

/// How many bytes pass, and how many may. Closing it again starts a new
/// run: transfers of the run before, still waiting, then fail (their
/// client is gone).
#[derive(Default)]
struct Gate {
    passed: AtomicU64,
    limit: AtomicU64,
    run: AtomicU64,
    waiting: AtomicU64,
}

impl Gate {
    fn open(&self) {
        self.limit.store(u64::MAX, Ordering::SeqCst);
    }

    fn close_at(&self, limit: u64) {
        self.run.fetch_add(1, Ordering::SeqCst);
        self.passed.store(0, Ordering::SeqCst);
        self.limit.store(limit, Ordering::SeqCst);
    }

    fn passed(&self) -> u64 {
        self.passed.load(Ordering::SeqCst)
    }

    /// Whether a transfer still waits at the gate.
    fn busy(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Waits until `n` more bytes may pass, and counts them.
    async fn pass(&self, n: u64) -> Result<()> {
        let run = self.run.load(Ordering::SeqCst);
        // Counted while waiting, also when the server drops the request
        // (a killed client's connection) in the middle of the wait.
        struct Waiting<'a>(&'a AtomicU64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            if self.run.load(Ordering::SeqCst) != run {
                return Err(oci_core::Error::internal("the client of this run is gone"));
            }
            let passed = self.passed.load(Ordering::SeqCst);
            if passed + n <= self.limit.load(Ordering::SeqCst) {
                if self
                    .passed
                    .compare_exchange(passed, passed + n, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A memory store whose blob bytes, served or received, pass a [`Gate`].
struct Gated {
    inner: MemRegistry,
    gate: Arc<Gate>,
}

/// `stream` in pieces of at most 64 KiB, each let through by `gate`.
fn gated(stream: BlobStream, gate: Arc<Gate>) -> BlobStream {
    stream
        .flat_map(|chunk| {
            let pieces: Vec<Result<Bytes>> = match chunk {
                Ok(b) => (0..b.len())
                    .step_by(64 << 10)
                    .map(|i| Ok(b.slice(i..b.len().min(i + (64 << 10)))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(pieces)
        })
        .then(move |piece| {
            let gate = Arc::clone(&gate);
            async move {
                if let Ok(b) = &piece {
                    gate.pass(b.len() as u64).await?;
                }
                piece
            }
        })
        .boxed()
}

/// A writer whose incoming bytes pass the gate before they are stored.
struct GatedWriter {
    inner: Box<dyn BlobWriter>,
    gate: Arc<Gate>,
}

#[async_trait]
impl BlobWriter for GatedWriter {
    fn forward_to(&self) -> Option<&dyn BlobWriter> {
        Some(self.inner.as_ref())
    }

    fn forward_to_mut(&mut self) -> Option<&mut dyn BlobWriter> {
        Some(self.inner.as_mut())
    }

    fn into_forward(self: Box<Self>) -> Option<Box<dyn BlobWriter>> {
        Some(self.inner)
    }

    fn id(&self) -> &str {
        self.inner.id()
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut at = 0;
        while at < data.len() {
            let piece = data.slice(at..data.len().min(at + (64 << 10)));
            self.gate.pass(piece.len() as u64).await?;
            at += piece.len();
            self.inner.write(piece).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Registry for Gated {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(&self.inner)
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let mut r = self.inner.get_blob(repo, digest).await?;
        r.stream = gated(r.stream, Arc::clone(&self.gate));
        Ok(r)
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let mut r = self.inner.get_blob_range(repo, digest, range).await?;
        r.stream = gated(r.stream, Arc::clone(&self.gate));
        Ok(r)
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<oci_core::Descriptor> {
        let body = gated(body, Arc::clone(&self.gate));
        self.inner.push_blob(repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(GatedWriter {
            inner: self.inner.push_blob_chunked(repo).await?,
            gate: Arc::clone(&self.gate),
        }))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(GatedWriter {
            inner: self.inner.push_blob_chunked_resume(repo, id).await?,
            gate: Arc::clone(&self.gate),
        }))
    }
}

/// A gated server.
async fn gated_server() -> (TestServer, String, Arc<Gate>, Arc<Gated>) {
    let gate = Arc::new(Gate::default());
    gate.open();
    let store = Arc::new(Gated {
        inner: MemRegistry::new(),
        gate: Arc::clone(&gate),
    });
    let server = TestServer::start(store.clone()).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    (server, host, gate, store)
}

/// Starts the binary with no stored credentials, in `cwd`, with `env`.
fn start(args: &[&str], env: &[(&str, &Path)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ocidist"))
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-ocidist-test")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the binary to the end; panics with its stderr on failure.
async fn finish(child: Child) -> String {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// Waits until `cond` holds (the child must still run), then SIGKILLs it.
async fn kill_when(mut child: Child, cond: impl Fn() -> bool) {
    while !cond() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "it finished before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(!status.success());
}

const LAYER: usize = 24 << 20;

async fn pull_resumes(format: &str) {
    let (_server, host, gate, store) = gated_server().await;
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, LAYER, false);
    image
        .push(&store.inner, &"big/app".parse().unwrap(), &[Tag::latest()])
        .await;
    let total: u64 = image.config.size + image.layers.iter().map(|l| l.size).sum::<u64>();
    let dir = tempfile::tempdir().unwrap();
    let reference = format!("{host}/big/app");
    let pull = |out: &Path| {
        start(
            &[
                "pull",
                &reference,
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
            ],
            &[],
        )
    };
    // The whole pull, uninterrupted, to compare with.
    let whole = dir.path().join("whole");
    gate.close_at(u64::MAX);
    finish(pull(&whole)).await;
    assert_eq!(gate.passed(), total);

    // Killed once 90% of the layer has arrived and is on disk.
    let out = dir.path().join("resumed");
    let stop = total * 9 / 10;
    gate.close_at(stop);
    let partial = dir.path().join(".resumed.partial");
    let on_disk = || {
        let Ok(blobs) = std::fs::read_dir(partial.join("blobs")) else {
            return 0;
        };
        blobs
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .filter_map(|s| s.trim().parse::<u64>().ok())
            .sum::<u64>()
    };
    // Progress is recorded every MiB written, and the writing thread is
    // woken once a MiB is queued for it: what has passed the gate is on
    // disk and recorded up to 2 MiB behind.
    let child = pull(&out);
    let piece = 64 << 10;
    kill_when(child, || {
        let passed = gate.passed();
        passed + piece > stop && on_disk() + (2 << 20) + piece > passed - image.config.size
    })
    .await;
    assert!(!out.exists(), "nothing at the target after the kill");
    let first = gate.passed();

    // Run again: only the rest moves.
    gate.close_at(u64::MAX);
    finish(pull(&out)).await;
    let second = gate.passed();
    eprintln!(
        "pull --format {format}: {total} bytes in all; killed after {first}; the second run moved {second}"
    );
    assert!(
        second < total / 10 + (3 << 20),
        "the second run moved {second} of {total}"
    );
    assert!(!partial.exists(), "the partial output is gone once done");
    assert_same(&whole, &out);
}

/// Two outputs (files or directories) hold the same bytes.
fn assert_same(a: &Path, b: &Path) {
    if a.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(a)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let mut other: Vec<_> = std::fs::read_dir(b)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        other.sort();
        assert_eq!(names, other);
        for n in names {
            assert_same(&a.join(&n), &b.join(&n));
        }
    } else {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{} differs",
            b.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_killed_at_90_percent_fetches_only_the_rest() {
    pull_resumes("docker").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oci_directory_pull_killed_at_90_percent_fetches_only_the_rest() {
    pull_resumes("oci-dir").await;
}

/// Waits until the transfers of a killed run have left the gate.
async fn settle(gate: &Gate) {
    while gate.busy() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A push (`copy`: false) or a copy from a second server, killed when 90%
/// of the big layer has reached the target, then run again.
async fn upload_resumes(copy: bool) {
    let (_target, host, gate, store) = gated_server().await;
    let (_source, src_host, src_gate, src_store) = gated_server().await;
    let image = tar_image(&Platform::new("linux", "amd64", None), 1, LAYER, false);
    image
        .push(
            &src_store.inner,
            &"big/app".parse().unwrap(),
            &[Tag::latest()],
        )
        .await;
    let layer = image.layers[0].size;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = dir.path().join("app.tar");
    let src_ref = format!("{src_host}/big/app");
    finish(start(
        &["pull", &src_ref, "-o", source.to_str().unwrap()],
        &[],
    ))
    .await;
    let dst_ref = format!("{host}/moved/app:v1");
    let run = || {
        let from = if copy {
            src_ref.clone()
        } else {
            source.to_str().unwrap().to_owned()
        };
        let command = if copy { "copy" } else { "push" };
        start(&[command, &from, &dst_ref], &[("XDG_CACHE_HOME", &cache)])
    };
    let stop = layer * 9 / 10;
    gate.close_at(stop);
    src_gate.close_at(u64::MAX);
    let piece = 64 << 10;
    kill_when(run(), || gate.passed() + piece > stop).await;
    let first = gate.passed();
    gate.close_at(u64::MAX);
    settle(&gate).await;
    src_gate.close_at(u64::MAX);
    let said = finish(run()).await;
    let second = gate.passed();
    let read = src_gate.passed();
    let what = if copy { "copy" } else { "push" };
    eprintln!(
        "{what}: layer of {layer} bytes; killed after {first} arrived; the second run sent {second} (and read {read} from the source registry)"
    );
    assert!(
        second < layer / 10 + (1 << 20),
        "the second run sent {second}: {said}"
    );
    if copy {
        assert!(read < layer / 10 + (1 << 20), "the second run read {read}");
    }
    // The same image, byte for byte.
    let got = store
        .inner
        .get_tag(&"moved/app".parse().unwrap(), &"v1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(got.digest(), image.manifest.digest());
    let blob = store
        .inner
        .get_blob(&"moved/app".parse().unwrap(), &image.layers[0].digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(blob == image.layer_bytes[0]);
    let journal = cache.join("ocidist/uploads");
    let left = std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the journal is emptied once done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_killed_at_90_percent_sends_only_the_rest() {
    upload_resumes(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_killed_at_90_percent_moves_only_the_rest() {
    upload_resumes(true).await;
}
