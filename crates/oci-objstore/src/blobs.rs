//! Reading, pushing, mounting and deleting blobs. A blob's bytes are
//! stored once, at `blobs/<alg>/<hex>/data`; a repository holds it when
//! `blobs/<alg>/<hex>/links/<repo>` exists (its body is the size), indexed
//! by `repos/<repo>/blobs/<alg>-<hex>`.

use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore};
use oci_core::{
    BlobReader, BlobStream, Descriptor, Digest, Error, ErrorCode, RangeRequest, RepoName, Result,
    Verifier, VerifyStream,
};

use crate::content::{self, HoldLast, Sink};
use crate::error::{is_not_found, store_err};
use crate::fence;
use crate::keys;
use crate::store::Inner;

/// The size a repository's link records; `None` without a link.
pub(crate) async fn linked(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
    let key = keys::blob_link(digest, repo);
    let Some((body, _)) = inner.get_small(&key).await? else {
        return Ok(None);
    };
    let size = std::str::from_utf8(&body)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::from(crate::ObjError::corrupt(&key, "a link without a size")))?;
    Ok(Some(size))
}

/// The descriptor of a blob the repository holds.
pub(crate) async fn resolve(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    let size = linked(inner, repo, digest)
        .await?
        .ok_or_else(|| Error::blob_unknown(repo, digest))?;
    Ok(Descriptor::blob(digest, size))
}

/// Streams a blob, or part of it, verified (see [`crate::content`]).
pub(crate) async fn get(
    inner: &Inner,
    repo: &RepoName,
    digest: &Digest,
    range: Option<RangeRequest>,
) -> Result<BlobReader> {
    let size = linked(inner, repo, digest)
        .await?
        .ok_or_else(|| Error::blob_unknown(repo, digest))?;
    let key = keys::blob_data(digest);
    let Some(request) = range else {
        let got = match inner.store.get_opts(&key, GetOptions::default()).await {
            Ok(got) => got,
            Err(e) if is_not_found(&e) => return Err(Error::blob_unknown(repo, digest)),
            Err(e) => return Err(store_err("get", &key)(e)),
        };
        let stored = got.meta.size;
        if stored != size {
            tracing::warn!(%digest, stored, linked = size, "a blob's size differs from its link");
        }
        let e_tag = got.meta.e_tag.clone();
        let bytes = content::bytes_of(&key, got.into_stream());
        let stream = if inner.is_verified(&key, e_tag.as_deref()) {
            // The object this process wrote or hashed whole, unchanged
            // (its ETag): counted, not hashed again, as the layout store
            // trusts a file it verified while its stamp is unchanged.
            HoldLast::new(content::exactly(bytes, stored)).boxed()
        } else {
            let verify = VerifyStream::new(bytes, digest.clone(), Some(stored));
            content::on_clean_end(HoldLast::new(verify), {
                let verified = inner.verified.clone();
                let key = key.clone();
                move || verified.record(&key, e_tag.as_deref())
            })
        };
        let stream = stream.map({
            let key = key.clone();
            move |item| item.map_err(|e| content::corrupt(&key, &e))
        });
        return Ok(BlobReader {
            descriptor: Descriptor::blob(digest, stored),
            range: None,
            stream: stream.boxed(),
        });
    };
    let meta = inner
        .head(&key)
        .await?
        .ok_or_else(|| Error::blob_unknown(repo, digest))?;
    let r = request.resolve(meta.size)?;
    if !inner.is_verified(&key, meta.e_tag.as_deref()) {
        verify_whole(inner, &key, digest, meta.size).await?;
        inner.record_verified(&key, meta.e_tag.as_deref());
    }
    let options = GetOptions {
        // The object read is the one verified.
        if_match: meta.e_tag.clone(),
        range: Some(GetRange::Bounded(r.start..r.end + 1)),
        ..GetOptions::default()
    };
    let got = inner
        .store
        .get_opts(&key, options)
        .await
        .map_err(store_err("get", &key))?;
    Ok(BlobReader {
        descriptor: Descriptor::blob(digest, meta.size),
        range: Some(r),
        stream: content::bytes_of(&key, got.into_stream()),
    })
}

/// Reads a blob object whole and checks it against its digest.
async fn verify_whole(
    inner: &Inner,
    key: &object_store::path::Path,
    digest: &Digest,
    size: u64,
) -> Result<()> {
    let got = inner
        .store
        .get_opts(key, GetOptions::default())
        .await
        .map_err(store_err("get", key))?;
    let mut verifier = Verifier::new(digest.clone(), Some(size));
    let mut stream = content::bytes_of(key, got.into_stream());
    while let Some(chunk) = stream.next().await {
        verifier
            .update(&chunk?)
            .map_err(|e| content::corrupt(key, &e))?;
    }
    verifier.finish().map_err(|e| content::corrupt(key, &e))
}

/// Streams `body` into the blob object of `digest`, checking digest and
/// size as it arrives; the object becomes visible only if both match.
/// Returns the length.
pub(crate) async fn receive(
    inner: &Inner,
    digest: &Digest,
    size: Option<u64>,
    mut body: BlobStream,
) -> Result<u64> {
    let mut verifier = Verifier::new(digest.clone(), size);
    let mut sink = Sink::new(keys::blob_data(digest));
    let received: Result<u64> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            verifier.update(&chunk)?;
            sink.write(inner, chunk).await?;
        }
        let seen = verifier.seen();
        verifier.finish()?;
        Ok(seen)
    }
    .await;
    match received {
        Ok(len) => {
            sink.finish(inner).await?;
            Ok(len)
        }
        Err(err) => {
            sink.abort().await;
            Err(err)
        }
    }
}

/// Links a blob whose bytes are stored into `repo`, then makes sure no
/// garbage collection running meanwhile removed either (see
/// [`crate::fence`]).
pub(crate) async fn link(
    inner: &Inner,
    watch: fence::Watch,
    repo: &RepoName,
    digest: &Digest,
    size: u64,
) -> Result<()> {
    // The index entry first: a link is never without it (see `repos`).
    inner.put(&keys::repo_blob(repo, digest), "").await?;
    inner
        .put(&keys::blob_link(digest, repo), size.to_string())
        .await?;
    if watch.overlapped(inner).await? {
        let link = inner.head(&keys::blob_link(digest, repo)).await?;
        let data = inner.head(&keys::blob_data(digest)).await?;
        if link.is_none() || data.is_none() {
            // No dangling link stays behind for a manifest to rely on.
            inner.delete(&keys::blob_link(digest, repo)).await?;
            inner.delete(&keys::repo_blob(repo, digest)).await?;
            return Err(Error::new(
                ErrorCode::Unknown,
                format!(
                    "blob {digest} was collected as garbage while it was pushed; push it again"
                ),
            ));
        }
    }
    Ok(())
}

/// Receives a whole blob and links it into `repo`.
pub(crate) async fn push(
    inner: &Inner,
    repo: &RepoName,
    digest: &Digest,
    size: Option<u64>,
    body: BlobStream,
) -> Result<Descriptor> {
    let watch = fence::watch(inner).await?;
    let len = receive(inner, digest, size, body).await?;
    link(inner, watch, repo, digest, len).await?;
    tracing::debug!(%repo, %digest, size = len, "blob pushed");
    Ok(Descriptor::blob(digest, len))
}

/// Links a blob of `from` into `repo` (no bytes copied).
pub(crate) async fn mount(
    inner: &Inner,
    repo: &RepoName,
    from: &RepoName,
    digest: &Digest,
) -> Result<Descriptor> {
    let watch = fence::watch(inner).await?;
    let unknown = || Error::mount_source_unknown(from, digest);
    let size = linked(inner, from, digest).await?.ok_or_else(unknown)?;
    if inner.head(&keys::blob_data(digest)).await?.is_none() {
        return Err(unknown());
    }
    link(inner, watch, repo, digest, size).await?;
    tracing::debug!(%repo, %from, %digest, "blob mounted");
    Ok(Descriptor::blob(digest, size))
}

/// Unlinks a blob from a repository; the bytes stay until a garbage
/// collection finds no repository linking them. A manifest is not a blob
/// to delete.
pub(crate) async fn delete(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<()> {
    if inner.head(&keys::manifest(repo, digest)).await?.is_some() {
        return Err(Error::manifest_is_not_a_blob(repo, digest));
    }
    let key = keys::blob_link(digest, repo);
    if inner.head(&key).await?.is_none() {
        return Err(Error::blob_unknown(repo, digest));
    }
    inner.delete(&key).await?;
    inner.delete(&keys::repo_blob(repo, digest)).await?;
    crate::repos::remove_if_empty(inner, repo).await?;
    tracing::debug!(%repo, %digest, "blob deleted");
    Ok(())
}
