//! The mirror over in-memory upstreams behind a counting wrapper: what
//! reaches the upstream, and what clients get, when things are cached,
//! concurrent, stale, offline or corrupt (`blobs.rs`, `tags.rs`,
//! `offline.rs`), and which upstreams it reaches (`upstreams.rs`).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::testkit::{ImageOptions, build_image, push_image};
use oci_core::{
    BlobReader, Descriptor, Digest, Error, ErrorCode, ListOptions, ListStream, Manifest, Registry,
    RepoName, Result, Tag,
};
use oci_mem::MemRegistry;
use oci_mirror::{Mirror, MirrorBuilder};
use tokio::sync::watch;

/// An upstream that counts the calls reaching it and can be switched
/// off (500s) for all calls or some, rate limited (429s), made to answer
/// every call with an error (a refusal, "not found") or tag listings with
/// one after their first page, made to corrupt blobs, or to hold blob
/// bodies and tag checks until released.
struct Upstream {
    inner: MemRegistry,
    calls: Mutex<HashMap<&'static str, usize>>,
    offline: AtomicBool,
    /// Calls that fail as if the upstream were down.
    failing: Mutex<Vec<&'static str>>,
    limited: AtomicBool,
    /// The error every call answers with.
    answer: Mutex<Option<Error>>,
    /// The error a tag listing ends in after its first tag.
    later_page: Mutex<Option<Error>>,
    corrupt: AtomicBool,
    /// Corrupt bytes come unchecked, as `ocidist serve`'s upstream clients
    /// send them (the cache being the check).
    unverified: AtomicBool,
    hold: watch::Sender<bool>,
}

impl Upstream {
    fn new() -> Arc<Upstream> {
        Arc::new(Upstream {
            inner: MemRegistry::new(),
            calls: Mutex::default(),
            offline: AtomicBool::new(false),
            failing: Mutex::default(),
            limited: AtomicBool::new(false),
            answer: Mutex::default(),
            later_page: Mutex::default(),
            corrupt: AtomicBool::new(false),
            unverified: AtomicBool::new(false),
            hold: watch::channel(false).0,
        })
    }

    fn count(&self, call: &'static str) -> Result<()> {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
        if self.offline.load(Ordering::SeqCst) || self.failing.lock().unwrap().contains(&call) {
            return Err(Error::internal("upstream down"));
        }
        if self.limited.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::TooManyRequests, "slow down")
                .with_retry_after(Duration::from_secs(7)));
        }
        if let Some(answer) = self.answer.lock().unwrap().clone() {
            return Err(answer);
        }
        Ok(())
    }

    fn calls(&self, call: &str) -> usize {
        self.calls.lock().unwrap().get(call).copied().unwrap_or(0)
    }

    fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

#[oci_core::async_trait]
impl Registry for Upstream {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(&self.inner)
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.count("get_blob")?;
        let mut reader = self.inner.get_blob(repo, digest).await?;
        if self.corrupt.load(Ordering::SeqCst) {
            let mut bytes = reader.bytes().await?.to_vec();
            bytes[0] ^= 0xff;
            reader = self.inner.get_blob(repo, digest).await?;
            // Wrong bytes, checked as every registry's stream is (as
            // oci-client checks what a server sends).
            let wrong = oci_core::registry::bytes_stream(bytes.into(), 1000);
            let size = Some(reader.descriptor.size);
            reader.stream = if self.unverified.load(Ordering::SeqCst) {
                wrong
            } else {
                oci_core::VerifyStream::new(wrong, digest.clone(), size).boxed()
            };
        }
        let mut hold = self.hold.subscribe();
        let held = futures::stream::once(async move {
            let _ = hold.wait_for(|held| !held).await;
            futures::stream::empty()
        })
        .flatten();
        reader.stream = held.chain(reader.stream).boxed();
        Ok(reader)
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.count("resolve_blob")?;
        self.inner.resolve_blob(repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.count("get_manifest")?;
        self.inner.get_manifest(repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.count("get_tag")?;
        self.inner.get_tag(repo, tag).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.count("resolve_tag")?;
        let _ = self.hold.subscribe().wait_for(|held| !held).await;
        self.inner.resolve_tag(repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        if let Err(e) = self.count("tags") {
            return oci_core::registry::failed_list(e);
        }
        let tags = self.inner.tags(repo, options);
        match self.later_page.lock().unwrap().clone() {
            Some(e) => tags.take(1).chain(futures::stream::iter([Err(e)])).boxed(),
            None => tags,
        }
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        match self.count("referrers") {
            Ok(()) => self.inner.referrers(repo, subject, artifact_type),
            Err(e) => oci_core::registry::failed_list(e),
        }
    }
}

fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn tag(s: &str) -> Tag {
    s.parse().unwrap()
}

/// A mirror of `docker.io` (the default) over `up`, caching in memory.
fn mirror(up: &Arc<Upstream>, freshness: Duration) -> (Mirror, Arc<MemRegistry>) {
    let cache = Arc::new(MemRegistry::new());
    (mirror_over(up, cache.clone(), freshness), cache)
}

/// A mirror of `docker.io` (the default) over `up`, caching in `cache`.
fn mirror_over(up: &Arc<Upstream>, cache: Arc<MemRegistry>, freshness: Duration) -> Mirror {
    Mirror::builder(cache)
        .upstream("docker.io", up.clone())
        .default_upstream("docker.io")
        .tag_freshness(freshness)
        .build()
        .unwrap()
}

/// Pulls an image by tag through `registry`: the manifest and every blob,
/// checked against the manifest.
async fn pull(registry: &dyn Registry, repo: &RepoName, t: &Tag) -> Result<Manifest> {
    let manifest = registry.get_tag(repo, t).await?;
    let oci_core::ParsedManifest::Image(image) = manifest.parse()? else {
        panic!("an image");
    };
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        let bytes = registry.get_blob(repo, &blob.digest).await?.bytes().await?;
        assert_eq!(Digest::sha256(&bytes), blob.digest);
    }
    Ok(manifest)
}

/// Reads a stream that must fail before its end: the bytes received first
/// and the error.
async fn cut_short(mut stream: oci_core::BlobStream) -> (u64, oci_core::Error) {
    let mut received = 0;
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => received += chunk.len() as u64,
            Some(Err(e)) => return (received, e),
            None => panic!("the corrupt blob ended as if complete"),
        }
    }
}

mod blobs;
mod offline;
mod tags;
mod upstreams;
