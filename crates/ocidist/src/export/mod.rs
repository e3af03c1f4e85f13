//! `ocidist export`: an image's filesystem as one tar, its layers
//! flattened with whiteouts applied, as `crane export` writes it.
//!
//! Layers stream from the registry top first, each checked against its
//! digest and size, and are undone from gzip, zstd or nothing (told by
//! their first bytes). [`flatten`] decides what of each is written and
//! keeps only an index of paths, so memory does not grow with the image.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use ocidist::export::{Output, export};
//! use ocidist::puller::Puller;
//!
//! let store = Arc::new(oci_mem::MemRegistry::new());
//! ocidist::demo::seed(store.as_ref()).await.unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let out = dir.path().join("rootfs.tar");
//! let reference = "localhost/demo/hello:latest".parse().unwrap();
//! let platform = "linux/amd64".parse().unwrap();
//! let report = export(&Puller::new(store), &reference, &platform, Output::File { path: &out, force: false })
//!     .await
//!     .unwrap();
//! assert!(report.written > 0);
//! # }
//! ```

pub mod flatten;

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use oci_core::{Descriptor, Error, ErrorCode, Platform, Reference, Result, VerifyStream};

use crate::decode;
use crate::puller::{Puller, Resolved};
use crate::staged::{Staged, io_err};
use flatten::{Flattener, Skipped};

/// Where the flattened tar goes.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// A file, written beside it and renamed into place when complete;
    /// an existing one is refused unless `force`.
    File {
        /// The path.
        path: &'a Path,
        /// Replace an existing file.
        force: bool,
    },
    /// Standard output.
    Stdout,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The image exported.
    pub resolved: Resolved,
    /// Entries written.
    pub written: u64,
    /// Entries skipped as unsafe or unsupported, and why.
    pub skipped: Skipped,
    /// Layer bytes downloaded.
    pub bytes: u64,
}

/// Writes the filesystem of `reference`'s image for `platform` (chosen
/// from an index as `pull` chooses) to `to`.
pub async fn export(
    puller: &Puller,
    reference: &Reference,
    platform: &Platform,
    to: Output<'_>,
) -> Result<ExportReport> {
    let resolved = puller.resolve(reference, platform).await?;
    let config = &resolved.image.config.media_type;
    if !crate::summary::is_image_config(config) {
        return Err(Error::new(
            ErrorCode::Unsupported,
            format!(
                "{reference} is an artifact (config {config}), not an image: it has no filesystem to export"
            ),
        ));
    }
    if let Some(d) = resolved.image.layers.iter().find(|d| !is_layer(d)) {
        return Err(Error::new(
            ErrorCode::Unsupported,
            format!(
                "layer {} of {reference} has media type {}, not a filesystem layer",
                d.digest, d.media_type
            ),
        ));
    }
    let (staged, writer): (Option<Staged>, Box<dyn Write + Send>) = match to {
        Output::File { path, force } => {
            let staged = Staged::new(path, false, force)?;
            let file =
                std::fs::File::create(staged.path()).map_err(|e| io_err(staged.path(), e))?;
            (
                Some(staged),
                Box::new(BufWriter::with_capacity(1 << 20, file)),
            )
        }
        Output::Stdout => (None, Box::new(BufWriter::new(io::stdout()))),
    };
    let written = flatten_layers(puller, reference, &resolved, writer).await;
    let (written, skipped, bytes) = match (written, &staged) {
        (Ok(done), _) => done,
        (Err(e), Some(staged)) => return Err(staged.hide_temp(e)),
        (Err(e), None) => return Err(e),
    };
    if let Some(staged) = staged {
        staged.persist()?;
    }
    Ok(ExportReport {
        resolved,
        written,
        skipped,
        bytes,
    })
}

/// Whether a layer's media type is a tar (compressed or not).
fn is_layer(d: &Descriptor) -> bool {
    let t = d.media_type.as_str();
    t.contains(".tar") || t.contains("rootfs.diff")
}

type Flat = Flattener<Box<dyn Write + Send>>;

async fn flatten_layers(
    puller: &Puller,
    reference: &Reference,
    resolved: &Resolved,
    writer: Box<dyn Write + Send>,
) -> Result<(u64, Skipped, u64)> {
    let top_first: Vec<&Descriptor> = resolved.image.layers.iter().rev().collect();
    let mut flat = Flattener::new(writer);
    let mut bytes = 0;
    for d in &top_first {
        flat = through_layer(puller, reference, d, flat, |flat, tar, name| {
            flat.layer(tar, name)
        })
        .await?;
        bytes += d.size;
    }
    // Rare: hard links to files an upper layer replaced.
    for layer in flat.relinks_needed() {
        let d = top_first[layer];
        flat = through_layer(puller, reference, d, flat, move |flat, tar, name| {
            flat.relink(tar, name, layer)
        })
        .await?;
        bytes += d.size;
    }
    let (written, skipped) = tokio::task::spawn_blocking(move || {
        flat.late_links()?;
        let stats = (flat.written, std::mem::take(&mut flat.skipped));
        flat.finish()?.flush()?;
        Ok::<_, io::Error>(stats)
    })
    .await
    .map_err(|e| Error::internal(format!("export task failed: {e}")))?
    .map_err(|e| Error::new(ErrorCode::Unknown, format!("cannot write the export: {e}")))?;
    Ok((written, skipped, bytes))
}

/// Streams layer `d`, verified, into `f` on a blocking thread as its
/// uncompressed tar, and reads it to the end so its digest is checked.
async fn through_layer<F>(
    puller: &Puller,
    reference: &Reference,
    d: &Descriptor,
    mut flat: Flat,
    f: F,
) -> Result<Flat>
where
    F: FnOnce(&mut Flat, Box<dyn Read + '_>, &str) -> io::Result<()> + Send + 'static,
{
    let blob = puller
        .registry()
        .get_blob(reference.repository(), &d.digest)
        .await?;
    let stream = VerifyStream::new(blob.stream, d.digest.clone(), Some(d.size));
    let name = d.digest.to_string();
    decode::decompressed(stream, &d.media_type, move |tar| {
        f(&mut flat, tar, &name)?;
        Ok(flat)
    })
    .await
    .map_err(|e| layer_error(d, e))
}

/// A layer's failure: the registry's own error (a wrong digest) as it
/// was, anything else naming the layer.
fn layer_error(d: &Descriptor, e: io::Error) -> Error {
    decode::blob_error(e, |e| {
        Error::new(ErrorCode::Unknown, format!("layer {}: {e}", d.digest))
    })
}
