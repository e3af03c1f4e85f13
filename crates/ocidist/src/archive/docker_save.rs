//! The `docker save` tarball with uncompressed layers, as skopeo's
//! `docker-archive:` writes it: each layer decompressed to `<diff_id
//! hex>.tar`, the legacy `<layer id>/` directories (`VERSION`, `json`, and
//! `layer.tar` as a symlink to `../<diff_id hex>.tar`), the config as
//! `<hex>.json`, `manifest.json` listing the `<diff_id hex>.tar` files and
//! `repositories` (see [`super::docker`] for the ids).
//!
//! Layers may be gzip- or zstd-compressed or plain (undone by
//! [`crate::decode`], as `export` undoes them). An uncompressed size is
//! known only once a layer is decompressed, so
//! the layers are first downloaded in parallel, each checked against its
//! digest as it arrives and, decompressed, against its diff_id from the
//! config, into a scratch directory beside the target; the tarball is then
//! written in one pass and renamed into place. The scratch directory goes
//! away either way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_core::digest::Hasher;
use oci_core::verify::VerifyStream;
use oci_core::{Descriptor, Digest, Error, ErrorCode, Reference, Result};

use super::docker::{self, LEGACY_VERSION};
use super::tar::{self, BLOCK};
use super::write::BlobSource;
use crate::decode;
use crate::progress::Progress;
use crate::staged::{Staged, io_err};

/// Writes the image as a `docker save` tarball with uncompressed layers
/// to `target`; refuses an existing target unless `force`. Returns the
/// number of (compressed) layer bytes downloaded.
pub async fn write(
    reference: &Reference,
    config: &Descriptor,
    config_bytes: Bytes,
    layers: &[Descriptor],
    from: &BlobSource,
    target: &Path,
    force: bool,
) -> Result<u64> {
    let diff_ids = docker::diff_ids(&config_bytes, layers.len())?;
    let legacy = docker::legacy_layers(&config_bytes, &diff_ids)?;
    let staged = Staged::new(target, false, force)?;
    let scratch_name = format!(
        "{}.layers",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let scratch = Staged::new(&target.with_file_name(scratch_name), true, true)?;
    std::fs::create_dir(scratch.path()).map_err(|e| io_err(scratch.path(), e))?;

    // Each diff_id once, however many positions list it.
    let mut unique: Vec<(&Descriptor, &Digest)> = Vec::new();
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        if !unique.iter().any(|(_, d)| *d == diff_id) {
            unique.push((layer, diff_id));
        }
    }
    let progress = from
        .progress
        .with_total(unique.iter().map(|(d, _)| d.size).sum());
    let scratch_dir = scratch.path().to_path_buf();
    let sizes: HashMap<Digest, u64> = futures::stream::iter(unique.iter().copied())
        .map(|(layer, diff_id)| {
            let path = scratch_dir.join(diff_id.hex());
            let progress = &progress;
            async move {
                let size = unpack(from, progress, layer, diff_id, &path).await?;
                Ok::<_, Error>((diff_id.clone(), size))
            }
        })
        .buffer_unordered(from.concurrency.max(1))
        .try_collect()
        .await
        .map_err(|e| scratch.hide_temp(e))?;

    let mut entries = Vec::new();
    let mut written = std::collections::HashSet::new();
    let mut layer_paths = Vec::with_capacity(layers.len());
    for (diff_id, dir) in diff_ids.iter().zip(&legacy) {
        let physical = format!("{}.tar", diff_id.hex());
        if written.insert(diff_id.clone()) {
            entries.push(Entry::File {
                path: physical.clone(),
                from: scratch_dir.join(diff_id.hex()),
                size: sizes.get(diff_id).copied().unwrap_or_default(),
            });
        }
        entries.push(Entry::Directory(format!("{}/", dir.id)));
        entries.push(Entry::Bytes(
            format!("{}/VERSION", dir.id),
            Bytes::from_static(LEGACY_VERSION),
        ));
        entries.push(Entry::Bytes(format!("{}/json", dir.id), dir.json.clone()));
        entries.push(Entry::Symlink(
            format!("{}/layer.tar", dir.id),
            format!("../{physical}"),
        ));
        layer_paths.push(physical);
    }
    let config_path = format!("{}.json", config.digest.hex());
    entries.push(Entry::Bytes(config_path.clone(), config_bytes));
    entries.push(Entry::Bytes(
        "manifest.json".to_owned(),
        docker::saved_manifest(reference, &config_path, layer_paths)?,
    ));
    if let Some(repos) = docker::repositories(reference, legacy.last())? {
        entries.push(Entry::Bytes("repositories".to_owned(), repos));
    }
    let out = staged.path().to_path_buf();
    tokio::task::spawn_blocking(move || write_tar(&out, &entries))
        .await
        .map_err(|e| Error::internal(format!("archive task failed: {e}")))?
        .map_err(|e| staged.hide_temp(e))?;
    staged.persist()?;
    Ok(unique.iter().map(|(d, _)| d.size).sum())
}

/// One entry of the tarball, in order.
enum Entry {
    /// A file copied from the scratch directory.
    File {
        path: String,
        from: PathBuf,
        size: u64,
    },
    /// A small file.
    Bytes(String, Bytes),
    /// A directory.
    Directory(String),
    /// A symbolic link and its target.
    Symlink(String, String),
}

fn write_tar(path: &Path, entries: &[Entry]) -> Result<()> {
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let fail = |e: io::Error| io_err(path, e);
    for entry in entries {
        match entry {
            Entry::File {
                path: name,
                from,
                size,
            } => {
                out.write_all(&tar::header(name, *size, false).map_err(fail)?)
                    .map_err(fail)?;
                let mut src = File::open(from).map_err(|e| io_err(from, e))?;
                let copied = io::copy(&mut src, &mut out).map_err(fail)?;
                if copied != *size {
                    return Err(Error::internal(format!(
                        "{name}: {copied} bytes copied of {size}"
                    )));
                }
                pad(&mut out, *size).map_err(fail)?;
            }
            Entry::Bytes(name, bytes) => {
                out.write_all(&tar::header(name, bytes.len() as u64, false).map_err(fail)?)
                    .map_err(fail)?;
                out.write_all(bytes).map_err(fail)?;
                pad(&mut out, bytes.len() as u64).map_err(fail)?;
            }
            Entry::Directory(name) => out
                .write_all(&tar::header(name, 0, true).map_err(fail)?)
                .map_err(fail)?,
            Entry::Symlink(name, target) => out
                .write_all(&tar::symlink_header(name, target).map_err(fail)?)
                .map_err(fail)?,
        }
    }
    out.write_all(&[0u8; 2 * BLOCK as usize]).map_err(fail)?;
    let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)
}

/// Zeroes up to the next block boundary after `size` bytes.
fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rest = (BLOCK - size % BLOCK) % BLOCK;
    out.write_all(&vec![0u8; rest as usize])
}

/// Downloads `layer`, checking its digest, decompresses it into `path`
/// and checks the result against `diff_id`; returns its size.
async fn unpack(
    from: &BlobSource,
    progress: &Progress,
    layer: &Descriptor,
    diff_id: &Digest,
    path: &Path,
) -> Result<u64> {
    let bar = progress.blob(layer);
    let reader = from.registry.get_blob(&from.repo, &layer.digest).await?;
    let stream = VerifyStream::new(reader.stream, layer.digest.clone(), Some(layer.size))
        .inspect_ok(|chunk| bar.advance(chunk.len() as u64));
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut sink = DiffIdWriter {
        file: BufWriter::with_capacity(1 << 20, file),
        hasher: diff_id.algorithm().hasher(),
        size: 0,
    };
    let (size, got) = decode::decompressed(stream, &layer.media_type, move |mut tar| {
        io::copy(&mut tar, &mut sink)?;
        sink.finish()
    })
    .await
    .map_err(|e| decode::blob_error(e, |e| bad_layer(&layer.digest, e)))?;
    bar.finish();
    if got != *diff_id {
        return Err(Error::new(
            ErrorCode::DigestInvalid,
            format!(
                "layer {} decompresses to {got}, but the image config says its diff_id is {diff_id}",
                layer.digest
            ),
        ));
    }
    tracing::debug!(layer = %layer.digest, %diff_id, size, "layer decompressed and verified");
    Ok(size)
}

/// The uncompressed stream's file, hashed as it is written.
struct DiffIdWriter {
    file: BufWriter<File>,
    hasher: Hasher,
    size: u64,
}

impl Write for DiffIdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl DiffIdWriter {
    /// Flushes the file; the size and digest of what was written.
    fn finish(mut self) -> io::Result<(u64, Digest)> {
        self.file.flush()?;
        Ok((self.size, self.hasher.finish()))
    }
}

fn bad_layer(layer: &Digest, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::BlobUnknown,
        format!("layer {layer} cannot be decompressed: {e}"),
    )
}
