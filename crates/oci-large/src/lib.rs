//! Big blobs over any [`Registry`](oci_core::Registry): parallel
//! multi-range download and resumable chunked upload.
//!
//! - [`download`] streams a blob in order while fetching it as parallel
//!   range requests; [`download_to_file`] writes the chunks at their
//!   offsets as they arrive. The chunk size is tuned from the measured
//!   time of each request (about half a second to a second each, within
//!   1–64 MiB by default), at most `concurrency` chunks are held at once,
//!   each chunk is retried on its own, and the whole digest is checked at
//!   the end. A registry that does not honour ranges is read with one
//!   `get_blob`.
//! - [`upload`] and [`upload_file`] push a blob as a chunked upload,
//!   retrying a failed chunk by resuming the upload at the offset the
//!   store reports.
//! - Retries follow the one policy of [`oci_core::retry`]: a chunk is
//!   retried only for a transient failure (a dropped connection, a 5xx or
//!   429) that the registry below did not already retry with its own
//!   budget, so attempts never multiply across layers; a corrupt store or
//!   a failing credential helper is not retried at all.
//!
//! ```
//! use std::sync::Arc;
//! use futures::TryStreamExt;
//! use oci_core::{Descriptor, Digest, Registry, media};
//! use oci_core::registry::bytes_stream;
//! use oci_large::{DownloadOptions, UploadOptions, download, upload};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let reg: Arc<dyn Registry> = Arc::new(oci_mem::MemRegistry::new());
//! let repo: oci_core::RepoName = "big".parse()?;
//! let data = bytes::Bytes::from(vec![42u8; 3_000_000]);
//! let digest = Digest::sha256(&data);
//! upload(reg.as_ref(), &repo, bytes_stream(data.clone(), 65536), &digest, &UploadOptions::default()).await?;
//!
//! let descriptor = Descriptor::new(media::OCI_LAYER, digest, data.len() as u64);
//! let options = DownloadOptions { initial_chunk: 1 << 20, ..DownloadOptions::default() };
//! let pieces: Vec<bytes::Bytes> = download(reg, repo, descriptor, options).try_collect().await?;
//! assert_eq!(pieces.concat(), data);
//! # Ok(())
//! # }
//! ```

mod download;
mod file;
mod offload;
mod options;
mod source;
mod tuner;
mod upload;

pub use download::download;
pub use file::download_to_file;
pub use options::{DownloadOptions, MIB, UploadOptions};
pub use upload::{upload, upload_file};
