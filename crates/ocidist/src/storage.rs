//! What `--storage` names: an OCI layout directory (a plain path, as
//! always) or an object store (`s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
//! `az://CONTAINER/PREFIX`, `file:///PATH`, `memory://`, see
//! [`oci_objstore::StorageUrl`]); opening it for `serve`
//! and collecting its garbage for `gc`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oci_core::{Error, ErrorCode, Registry, Result};

/// A store named by `--storage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// An on-disk store of OCI layouts (`oci-layout`).
    Layout(PathBuf),
    /// An object store (`oci-objstore`), by URL.
    Object(String),
}

impl Storage {
    /// What `--storage VALUE` names: a URL with a known scheme is an object
    /// store, anything else a layout directory.
    pub fn parse(value: &Path) -> Storage {
        match value.to_str() {
            Some(text) if oci_objstore::StorageUrl::is_url(text) => {
                Storage::Object(text.to_owned())
            }
            _ => Storage::Layout(value.to_owned()),
        }
    }

    /// The directory kept beside the content (a token signing key), for a
    /// layout store; an object store has none.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Storage::Layout(dir) => Some(dir),
            Storage::Object(_) => None,
        }
    }

    /// Opens the store for serving.
    pub async fn open(&self) -> Result<Arc<dyn Registry>> {
        match self {
            Storage::Layout(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::new(
                        ErrorCode::Unknown,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
                Ok(Arc::new(oci_layout::LayoutRegistry::open(dir).await?))
            }
            Storage::Object(url) => Ok(Arc::new(oci_objstore::ObjRegistry::open(url).await?)),
        }
    }
}

/// Collects an object store's garbage and prints what went. `grace` keeps
/// unreferenced blobs younger than that many seconds (default: an hour, as
/// servers may be pushing).
pub async fn gc_object(url: &str, grace: Option<u64>) -> Result<()> {
    let registry = oci_objstore::ObjRegistry::open(url).await?;
    let mut options = oci_objstore::GcOptions::default();
    if let Some(secs) = grace {
        options.grace = Duration::from_secs(secs);
    }
    let report = registry.gc_with(&options).await?;
    println!(
        "removed {} blobs ({} bytes), {} blob links, {} stale uploads, {} empty repositories",
        report.blobs_removed,
        report.bytes_freed,
        report.links_removed,
        report.uploads_removed,
        report.repos_removed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_object_stores_and_paths_layouts() {
        assert_eq!(
            Storage::parse(Path::new("s3://bucket/p")),
            Storage::Object("s3://bucket/p".into())
        );
        assert_eq!(
            Storage::parse(Path::new("gs://bucket/p")),
            Storage::Object("gs://bucket/p".into())
        );
        assert_eq!(
            Storage::parse(Path::new("az://container/p")),
            Storage::Object("az://container/p".into())
        );
        assert_eq!(
            Storage::parse(Path::new("file:///srv/reg")),
            Storage::Object("file:///srv/reg".into())
        );
        assert_eq!(
            Storage::parse(Path::new("/srv/reg")),
            Storage::Layout("/srv/reg".into())
        );
        assert_eq!(
            Storage::parse(Path::new("relative/dir")),
            Storage::Layout("relative/dir".into())
        );
    }
}
