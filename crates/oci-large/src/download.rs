//! [`download`]: a big blob as one ordered stream, fetched as parallel
//! range requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_core::{BlobStream, Descriptor, Error, Registry, RepoName, Result, Verifier, VerifyStream};

use crate::offload::hash;
use crate::options::DownloadOptions;
use crate::source::{ChunkSource, Completed};

/// Streams the blob `descriptor` of `repo`, in order, fetched as parallel
/// range requests.
///
/// At most `options.concurrency` chunks are held at once, in flight or
/// finished and waiting for an earlier one; the chunk size is tuned to
/// the measured speed. Each chunk is retried on its own. The bytes are
/// checked against the descriptor's digest and size as they stream, and
/// the stream ends with an error instead of its end if they do not match.
/// A registry that does not honour ranges is read with one `get_blob`.
pub fn download(
    reg: Arc<dyn Registry>,
    repo: RepoName,
    descriptor: Descriptor,
    options: DownloadOptions,
) -> BlobStream {
    if descriptor.size == 0 {
        return whole_blob(reg, repo, descriptor);
    }
    let state = Ordered {
        source: ChunkSource::new(
            Arc::clone(&reg),
            repo.clone(),
            descriptor.digest.clone(),
            descriptor.size,
            options,
        ),
        ready: BTreeMap::new(),
        next: 0,
        verifier: Some(Verifier::new(
            descriptor.digest.clone(),
            Some(descriptor.size),
        )),
        whole: None,
        reg,
        repo,
        descriptor,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_piece().await?;
        Some((item, state))
    })
    .boxed()
}

/// The blob read with one `get_blob`, checked against its descriptor.
pub(crate) fn whole_blob(
    reg: Arc<dyn Registry>,
    repo: RepoName,
    descriptor: Descriptor,
) -> BlobStream {
    let digest = descriptor.digest.clone();
    let opened = futures::stream::once(async move {
        reg.get_blob(&repo, &descriptor.digest)
            .await
            .map(|reader| reader.stream)
    })
    .try_flatten()
    .boxed();
    VerifyStream::new(opened, digest, Some(descriptor.size)).boxed()
}

/// The state of an ordered download.
struct Ordered {
    source: ChunkSource,
    /// Finished chunks waiting for an earlier one, by offset.
    ready: BTreeMap<u64, Bytes>,
    /// The offset of the next byte to hand out.
    next: u64,
    /// `None` once the stream has ended.
    verifier: Option<Verifier>,
    /// The whole-blob stream, once ranges turned out not to work.
    whole: Option<BlobStream>,
    reg: Arc<dyn Registry>,
    repo: RepoName,
    descriptor: Descriptor,
}

impl Ordered {
    /// The next piece of the blob in order, the final verdict, or `None`.
    async fn next_piece(&mut self) -> Option<Result<Bytes>> {
        if let Some(whole) = &mut self.whole {
            return whole.next().await;
        }
        loop {
            let verifier = self.verifier.take()?;
            if let Some(data) = self.ready.remove(&self.next) {
                self.next += data.len() as u64;
                return Some(match hash(verifier, data.clone()).await {
                    Ok(verifier) => {
                        self.verifier = Some(verifier);
                        Ok(data)
                    }
                    Err(err) => self.fail(err),
                });
            }
            if self.next >= self.descriptor.size {
                return verifier.finish().err().map(Err);
            }
            self.verifier = Some(verifier);
            match self.source.next(self.ready.len()).await {
                Some(Ok(Completed::Chunk { offset, data })) => {
                    self.ready.insert(offset, data);
                }
                Some(Ok(Completed::NoRanges)) => {
                    self.verifier = None;
                    let mut whole = whole_blob(
                        Arc::clone(&self.reg),
                        self.repo.clone(),
                        self.descriptor.clone(),
                    );
                    let first = whole.next().await;
                    self.whole = Some(whole);
                    return first;
                }
                Some(Err(err)) => return Some(self.fail(err)),
                None => {
                    let err = Error::internal("the download ended before the blob did");
                    return Some(self.fail(err));
                }
            }
        }
    }

    /// Ends the stream with `err`.
    fn fail(&mut self, err: Error) -> Result<Bytes> {
        self.verifier = None;
        self.ready.clear();
        self.source.abort();
        Err(err)
    }
}
