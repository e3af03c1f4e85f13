//! Work kept off the async threads: hashing chunks and file i/o, each
//! run on tokio's blocking pool.

use bytes::Bytes;
use oci_core::{Error, Result, Verifier};

/// Runs blocking work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::internal(format!("blocking task failed: {err}")))?
}

/// Feeds `data` to the verifier and hands the verifier back.
pub(crate) async fn hash(mut verifier: Verifier, data: Bytes) -> Result<Verifier> {
    blocking(move || verifier.update(&data).map(|()| verifier)).await
}
