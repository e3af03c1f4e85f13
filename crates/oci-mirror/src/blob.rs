//! Blobs through the mirror: read from the cache, or fetched once
//! upstream and streamed to the first client while the same bytes are
//! written to the cache, which verifies and commits them; ranges of them.

use futures::StreamExt;
use oci_core::registry::slice_stream;
use oci_core::tee::tee;
use oci_core::{BlobReader, BlobStream, Descriptor, Digest, Error, RangeRequest, Result};

use crate::failure::upstream_error;
use crate::flight::{Role, Waiting};
use crate::metrics::{Outcome, note};
use crate::mirror::Mirror;
use crate::upstream::Target;

impl Mirror {
    /// A blob: from the cache, or fetched once while streaming it; with
    /// the fetch to wait for when this call started one.
    pub(crate) async fn blob(
        &self,
        target: &Target,
        digest: &Digest,
    ) -> Result<(BlobReader, Option<Waiting>)> {
        for _ in 0..2 {
            match self.cache.get_blob(&target.cache, digest).await {
                Ok(reader) => {
                    note(target, "blob", digest, Outcome::Hit);
                    return Ok((reader, None));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(target: "oci_mirror", error = %e, %digest, "reading the cache failed; asking the upstream")
                }
            }
            match self.flights.join(format!("blob {} {digest}", target.cache)) {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => {
                    if let Ok(reader) = self.cache.get_blob(&target.cache, digest).await {
                        landing.finish(Ok(()));
                        note(target, "blob", digest, Outcome::Hit);
                        return Ok((reader, None));
                    }
                    let upstream = match target
                        .upstream
                        .registry
                        .get_blob(&target.name, digest)
                        .await
                    {
                        Ok(reader) => reader,
                        Err(e) => {
                            let e = upstream_error(target, digest, e);
                            landing.finish(Err(e.clone()));
                            return Err(e);
                        }
                    };
                    note(target, "blob", digest, Outcome::Miss);
                    let descriptor = upstream.descriptor.clone();
                    let size = descriptor.size;
                    let upstream_bytes = target.upstream.clone();
                    // The cache verifies the bytes as it writes them, the one
                    // hash on this side (`ocidist serve` turns the upstream
                    // client's own check off); the client's copy holds its
                    // last chunk back until the cache has committed them.
                    let counted = upstream
                        .stream
                        .inspect(move |chunk| {
                            if let Ok(chunk) = chunk {
                                upstream_bytes.stats.read_upstream(chunk.len());
                            }
                        })
                        .boxed();
                    let (to_cache, to_client, feed) = tee(counted);
                    let stored = landing.watch();
                    let landing_watch = landing.watch();
                    let cache = self.cache.clone();
                    let repo = target.cache.clone();
                    let digest = digest.clone();
                    let origin = target.upstream.clone();
                    let keeper = self.keeper.clone();
                    tokio::spawn(async move {
                        let ((), stored) = futures::join!(
                            feed,
                            cache.push_blob(&repo, &digest, Some(size), to_cache)
                        );
                        match &stored {
                            Ok(_) => {
                                let read = origin.stats.snapshot().upstream_bytes;
                                tracing::info!(target: "oci_mirror", upstream = origin.host, repository = %repo, %digest, size, upstream_bytes = read, "blob cached");
                                // Before the client has the blob's end, so
                                // that a pull that completed has left real
                                // manifests behind.
                                keeper.landed(&repo).await;
                            }
                            Err(e) => {
                                tracing::warn!(target: "oci_mirror", upstream = origin.host, repository = %repo, %digest, error = %e, "blob not cached")
                            }
                        }
                        landing.finish(stored.map(|_| ()));
                    });
                    let reader = BlobReader {
                        descriptor,
                        range: None,
                        stream: ending_when_stored(to_client, landing_watch),
                    };
                    return Ok((reader, Some(stored)));
                }
            }
        }
        Err(Error::internal(format!(
            "blob {digest} was fetched but is not in the cache"
        )))
    }

    /// A blob's descriptor (a HEAD): from the cache, else from the
    /// upstream, which is not fetched for it.
    pub(crate) async fn blob_head(&self, target: &Target, digest: &Digest) -> Result<Descriptor> {
        let found = match self.cache.resolve_blob(&target.cache, digest).await {
            Err(e) if e.is_not_found() => target
                .upstream
                .registry
                .resolve_blob(&target.name, digest)
                .await
                .map_err(|e| upstream_error(target, digest, e))?,
            answer => {
                let found = answer?;
                note(target, "blob head", digest, Outcome::Hit);
                return Ok(found);
            }
        };
        note(target, "blob head", digest, Outcome::Miss);
        Ok(found)
    }

    /// A part of a blob: from the cache, or from the blob fetched once.
    pub(crate) async fn blob_range(
        &self,
        target: &Target,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        match self
            .cache
            .get_blob_range(&target.cache, digest, range)
            .await
        {
            Err(e) if e.is_not_found() => {
                // The whole blob is fetched once. The request that fetches
                // it gets a part to its end as the bytes arrive (`ocidist
                // pull` asks for `bytes=0-`); any other part, or one for a
                // request that joined a fetch, is read from the cache.
                let (whole, fetching) = self.blob(target, digest).await?;
                let size = whole.descriptor.size;
                let part = range.resolve(size)?;
                // Only a part that ends with the blob ends in the cache's
                // verdict; an earlier one waits for it.
                if fetching.is_some() && part.end + 1 == size {
                    return Ok(BlobReader {
                        descriptor: whole.descriptor,
                        range: Some(part),
                        stream: slice_stream(whole.stream, part),
                    });
                }
                drop(whole);
                if let Some(fetching) = fetching {
                    fetching.outcome().await?;
                }
                self.cache
                    .get_blob_range(&target.cache, digest, range)
                    .await
            }
            Ok(reader) => {
                note(target, "blob range", digest, Outcome::Hit);
                Ok(reader)
            }
            Err(e) => Err(e),
        }
    }
}

/// `stream` (the client's side of a blob being cached) with its last
/// chunk held back until `stored` (the cache's write) has an outcome: the
/// chunk then, or the cache's error in its place, so that a client never
/// receives as complete a blob that failed to verify.
fn ending_when_stored(stream: BlobStream, stored: Waiting) -> BlobStream {
    // `None` once the stream has ended or failed.
    let state = Some((stream, None::<bytes::Bytes>, stored));
    futures::stream::unfold(state, |state| async move {
        let (mut stream, mut held, stored) = state?;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    if let Some(previous) = held.replace(chunk) {
                        return Some((Ok(previous), Some((stream, held, stored))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    return match (stored.outcome().await, held) {
                        (Err(e), _) => Some((Err(e), None)),
                        (Ok(()), Some(last)) => Some((Ok(last), None)),
                        (Ok(()), None) => None,
                    };
                }
            }
        }
    })
    .boxed()
}
