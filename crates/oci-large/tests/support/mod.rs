//! Test-only registry wrappers over `MemRegistry` that misbehave on
//! purpose, and counters to see what reached them.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Digest, Error, ErrorCode, RangeRequest, Registry, RepoName,
    Result, async_trait,
};

/// How a [`Quirky`] registry misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Behaves.
    None,
    /// Every Nth range read breaks off after half its bytes.
    BreakEveryNthRange(usize),
    /// Range reads are `UNSUPPORTED`.
    RangesUnsupported,
    /// Range reads are answered with the whole blob, as a server that
    /// ignores `Range` would.
    RangesIgnored,
    /// The first byte of every range read is flipped.
    CorruptRanges,
    /// Every Nth upload write stores half its bytes, then fails.
    BreakEveryNthWrite(usize),
    /// Every range read fails as a busy registry does: `UNKNOWN` with
    /// status 503, transient.
    RangesUnavailable,
    /// Every range read fails as a corrupt store does: `UNKNOWN`, not
    /// transient.
    RangesCorrupt,
    /// Every upload write fails as a busy registry does (503), storing
    /// nothing.
    WritesUnavailable,
    /// Each range read takes as long as this many bytes per second allow
    /// (on tokio's clock, so a paused clock makes it instant).
    Throttled(u64),
}

/// What reached a [`Quirky`] registry.
#[derive(Debug, Default)]
pub struct Counters {
    /// Range reads asked for.
    pub ranges: AtomicUsize,
    /// Range reads that were broken off on purpose.
    pub broken: AtomicUsize,
    /// Range reads whose stream is still open.
    pub open: AtomicUsize,
    /// The most range reads open at once.
    pub max_open: AtomicUsize,
    /// The longest range asked for.
    pub max_len: AtomicUsize,
    /// Whole-blob reads.
    pub whole: AtomicUsize,
    /// Upload writes asked for.
    pub writes: AtomicUsize,
    /// Upload resumes asked for.
    pub resumes: AtomicUsize,
    /// The length of every range read, in the order asked.
    pub lengths: std::sync::Mutex<Vec<u64>>,
}

impl Counters {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// An in-memory registry with a [`Quirk`].
pub struct Quirky {
    inner: Arc<dyn Registry>,
    quirk: Quirk,
    pub counters: Arc<Counters>,
}

impl Quirky {
    pub fn new(quirk: Quirk) -> Arc<Quirky> {
        Quirky::over(Arc::new(oci_mem::MemRegistry::new()), quirk)
    }

    /// `inner` with a quirk; what the quirk does not touch is `inner`'s.
    pub fn over(inner: Arc<dyn Registry>, quirk: Quirk) -> Arc<Quirky> {
        Arc::new(Quirky {
            inner,
            quirk,
            counters: Arc::new(Counters::default()),
        })
    }

    /// The registry without the quirk.
    pub fn inner(&self) -> &dyn Registry {
        self.inner.as_ref()
    }
}

/// Decrements the open-range counter when the stream goes away.
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a registry too busy to answer says.
fn unavailable() -> Error {
    Error::from_response(ErrorCode::Unknown, "service unavailable", 503)
}

fn injected(what: &str) -> Error {
    Error::transient(format!("injected failure: {what}"))
}

#[async_trait]
impl Registry for Quirky {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.counters.whole.fetch_add(1, Ordering::SeqCst);
        self.inner.get_blob(repo, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let c = &self.counters;
        let n = c.ranges.fetch_add(1, Ordering::SeqCst) + 1;
        match self.quirk {
            Quirk::RangesUnsupported => return Err(Error::unsupported("get_blob_range")),
            Quirk::RangesIgnored => return self.inner.get_blob(repo, digest).await,
            Quirk::RangesUnavailable => return Err(unavailable()),
            Quirk::RangesCorrupt => {
                return Err(Error::internal(
                    "corrupt data in the store: invalid index.json",
                ));
            }
            _ => {}
        }
        let reader = self.inner.get_blob_range(repo, digest, range).await?;
        let (descriptor, served) = (reader.descriptor.clone(), reader.range);
        let len = served.map_or(0, |r| r.len() as usize);
        c.max_len.fetch_max(len, Ordering::SeqCst);
        c.lengths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(len as u64);
        if let Quirk::Throttled(speed) = self.quirk {
            let secs = len as f64 / speed as f64;
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
        }
        let open = c.open.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_open.fetch_max(open, Ordering::SeqCst);
        let guard = OpenGuard(Arc::clone(c));
        let data = reader.bytes().await?;
        let stream: BlobStream = match self.quirk {
            Quirk::BreakEveryNthRange(every) if n.is_multiple_of(every) => {
                c.broken.fetch_add(1, Ordering::SeqCst);
                let half = data.slice(..data.len() / 2);
                futures::stream::iter([Ok(half), Err(injected("connection reset"))]).boxed()
            }
            Quirk::CorruptRanges => {
                let mut bad = data.to_vec();
                bad[0] ^= 0xff;
                futures::stream::iter([Ok(Bytes::from(bad))]).boxed()
            }
            _ => futures::stream::iter([Ok(data)]).boxed(),
        };
        let stream = stream
            .map(move |item| {
                let _keep = &guard;
                item
            })
            .boxed();
        Ok(BlobReader {
            descriptor,
            range: served,
            stream,
        })
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        let w = self.inner.push_blob_chunked(repo).await?;
        Ok(self.writer(w))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        self.counters.resumes.fetch_add(1, Ordering::SeqCst);
        let w = self.inner.push_blob_chunked_resume(repo, id).await?;
        Ok(self.writer(w))
    }
}

impl Quirky {
    fn writer(&self, inner: Box<dyn BlobWriter>) -> Box<dyn BlobWriter> {
        Box::new(QuirkyWriter {
            inner,
            quirk: self.quirk,
            counters: Arc::clone(&self.counters),
        })
    }
}

/// A writer that breaks every Nth write halfway.
struct QuirkyWriter {
    inner: Box<dyn BlobWriter>,
    quirk: Quirk,
    counters: Arc<Counters>,
}

#[async_trait]
impl BlobWriter for QuirkyWriter {
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
        let n = self.counters.writes.fetch_add(1, Ordering::SeqCst) + 1;
        match self.quirk {
            Quirk::BreakEveryNthWrite(every) if n.is_multiple_of(every) => {
                self.inner.write(data.slice(..data.len() / 2)).await?;
                Err(injected("upload connection reset"))
            }
            Quirk::WritesUnavailable => Err(unavailable()),
            _ => self.inner.write(data).await,
        }
    }
}

/// Asserts that `result` failed with `code`.
pub fn assert_code<T>(result: Result<T>, code: ErrorCode) {
    match result {
        Ok(_) => panic!("expected {code}, but it succeeded"),
        Err(err) => assert!(err.is(code), "expected {code}, got {err}"),
    }
}
