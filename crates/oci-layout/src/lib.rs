//! An on-disk OCI registry: a complete implementation of
//! [`oci_core::Registry`] that keeps every repository as an
//! [OCI image layout](https://github.com/opencontainers/image-spec/blob/main/image-layout.md),
//! so a registry served from it survives restarts and each repository's
//! directory can be read (and written) by `skopeo`, `umoci` and other
//! layout tools.
//!
//! # On disk
//!
//! ```text
//! <root>/
//!   .lock                      held (flock) by the one process using the store
//!   .blobs/<alg>/<hex>         shared content store: one file per blob
//!   .uploads/<id>/repo         chunked upload: its repository's name,
//!   .uploads/<id>/data         the bytes received,
//!   .uploads/<id>/offset       the length acknowledged by the last request
//!   .tmp/                      files being written (emptied at open)
//!   <repo>/                    one OCI image layout per repository, e.g. library/alpine/
//!     oci-layout               {"imageLayoutVersion":"1.0.0"}
//!     index.json               every manifest of the repository
//!     .journal                 changes not yet folded into index.json (large repositories)
//!     blobs/<alg>/<hex>        blobs (hard links into .blobs) and manifests
//! ```
//!
//! - A repository is a directory holding an `oci-layout` file, so
//!   `skopeo copy oci:<root>/<repo>:<tag> …` reads it directly. A name
//!   component that would collide with a layout's own entries (`blobs`,
//!   `index.json`, `oci-layout`) is written with a leading `_`.
//! - `index.json` lists every manifest: once per tag, with the tag in the
//!   `org.opencontainers.image.ref.name` annotation, and once without an
//!   annotation when it has no tag (an untagged manifest, an index's child).
//! - A repository with 1024 or more index entries does not rewrite
//!   `index.json` on every push: each change (a manifest listed with its
//!   tags, a tag removed, a manifest removed) is appended to `.journal` as
//!   one line of JSON (`{"op":"add","descriptor":{…},"tags":[…]}`,
//!   `{"op":"untag","tag":"…"}`, `{"op":"remove","digest":"…"}`) and the
//!   journal synced, so a tag push costs the same with 10 or 100,000 tags.
//!   The journal is folded into `index.json` (rewritten atomically, then
//!   the journal emptied) after 1024 lines or half a second without
//!   changes; tools reading the directory see a push within that time. On
//!   open the journal is replayed over `index.json` (replaying a change the
//!   index already has changes nothing; a partial last line, a write cut by
//!   a crash and never acknowledged, is ignored).
//! - A repository holds a blob when its `blobs/` has the file. Files are hard
//!   links to the shared store, so a blob is stored once, a mount copies no
//!   bytes, and every repository directory is a self-contained layout.
//!   Referrers are computed from the manifests' `subject` fields.
//!
//! # Durability
//!
//! A pushed blob is written to `.tmp/`, checked (digest and size while it
//! streams), synced, and only then linked into `.blobs/` and the
//! repository; `index.json` is replaced atomically (temporary file, sync,
//! rename, directory sync), after the manifest files it lists are synced.
//! Index writes are group-committed: concurrent pushes to one repository
//! share one write, and each returns once a write holding its change is on
//! disk. Chunked uploads record their acknowledged length at the end of
//! every request; a restart cuts unacknowledged bytes off. Whatever point a process is killed at, the store
//! reopens cleanly, shows no partial blob or manifest, and keeps everything
//! acknowledged. Deletes only unlink: the bytes go when
//! [`LayoutRegistry::gc`] is called. A second process opening the same root
//! is refused. Reads verify blob and manifest digests, since the disk is a
//! trust boundary; a corrupt file is reported with its path. A blob file is
//! hashed on its first read and again whenever it changes, or on every read
//! with [`VerifyReads::Always`]. Manifests follow the same rule: a
//! manifest file read and checked is kept in memory (at most 4 MiB of
//! them, the least recently served going first) and served from there
//! while one `stat` shows the same file, unchanged (inode, size,
//! modification and status-change times); a file removed, replaced or
//! edited since is read and checked again, and with
//! [`VerifyReads::Always`] every read does. Tags and the manifests each
//! repository lists are held in memory from its `index.json` (and
//! journal), changed only by this process, which holds the store's lock;
//! garbage collection beside it never unlists a manifest. A blob read streams from a blocking thread that reads ahead at most a few
//! MiB.
//!
//! ```
//! use bytes::Bytes;
//! use oci_core::registry::bytes_stream;
//! use oci_core::{Digest, Registry, RepoName};
//! use oci_layout::LayoutRegistry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let repo: RepoName = "library/hello".parse()?;
//! let data = Bytes::from_static(b"hello, world");
//! let digest = Digest::sha256(&data);
//! {
//!     let registry = LayoutRegistry::open(dir.path()).await?;
//!     registry
//!         .push_blob(&repo, &digest, Some(12), bytes_stream(data.clone(), 4))
//!         .await?;
//! }
//! // Reopened (a restart), the blob is still there.
//! let registry = LayoutRegistry::open(dir.path()).await?;
//! assert_eq!(registry.get_blob(&repo, &digest).await?.bytes().await?, data);
//! assert!(dir.path().join("library/hello/oci-layout").is_file());
//! # Ok(())
//! # }
//! ```

mod blobs;
mod content;
mod durable;
mod error;
mod expiry;
mod fence;
mod gc;
mod hot;
mod index;
mod install;
mod lists;
mod manifests;
mod paths;
mod repos;
mod store;
mod uploads;
mod verified;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

pub use error::LayoutError;
pub use gc::{GcOptions, GcReport};
pub use index::REF_NAME;
pub use verified::VerifyReads;

use crate::store::Inner;

/// How a [`LayoutRegistry`] reads and writes; the default suits a
/// registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayoutOptions {
    /// When blob reads hash the files they stream.
    pub verify_reads: VerifyReads,
    /// How pushed blobs reach the disk.
    pub writes: Writes,
}

/// How pushed blob bytes are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Writes {
    /// Straight to the disk (`O_DIRECT` on Linux, where the file system
    /// allows it), bypassing the page cache: a push does not fill memory
    /// with pages (nor evict what readers use) for a blob that may not be
    /// read for a while, and costs the least CPU. Its first read comes
    /// from the disk.
    #[default]
    Direct,
    /// Through the page cache, which then still holds the blob: for a
    /// store whose blobs are read back at once (a mirror's cache).
    Cached,
}

/// A registry kept on disk as OCI image layouts, one per repository.
///
/// Cloning it gives another handle to the same open store; the store
/// closes (and its lock is released) when the last handle and upload
/// writer are dropped.
#[derive(Clone)]
pub struct LayoutRegistry {
    inner: Arc<Inner>,
}

impl LayoutRegistry {
    /// Opens the store at `root`, creating it if it does not exist.
    ///
    /// Fails if another process has it open, or if the root cannot be
    /// read or written. A repository with a corrupt `index.json` does not
    /// stop the store from opening: using that repository reports the file.
    pub async fn open(root: impl AsRef<Path>) -> Result<LayoutRegistry> {
        LayoutRegistry::open_with(root, LayoutOptions::default()).await
    }

    /// Opens the store at `root` with `options`: when blob reads hash the
    /// files they stream, and how pushed blobs are written.
    pub async fn open_with(
        root: impl AsRef<Path>,
        options: LayoutOptions,
    ) -> Result<LayoutRegistry> {
        let inner = store::open(root.as_ref().to_owned(), options).await?;
        Ok(LayoutRegistry {
            inner: Arc::new(inner),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.inner.paths.root()
    }

    /// The layout directory of a repository (which may not exist yet).
    pub fn repo_dir(&self, repo: &RepoName) -> std::path::PathBuf {
        self.inner.paths.repo_dir(repo)
    }

    /// Collects garbage with [`GcOptions::default`]: blobs no manifest
    /// references, and uploads idle for a day.
    pub async fn gc(&self) -> Result<GcReport> {
        self.gc_with(&GcOptions::default()).await
    }

    /// Collects garbage: unlinks from each repository the blobs none of its
    /// manifests references, removes from the shared store the blobs no
    /// repository links, removes stale uploads and empty repositories.
    /// Pushes may run meanwhile (give a grace period, see [`GcOptions`]).
    pub async fn gc_with(&self, options: &GcOptions) -> Result<GcReport> {
        gc::collect(&self.inner, options).await
    }

    /// Whether another process (a server) holds the store at `root` open
    /// right now.
    pub fn in_use(root: impl AsRef<Path>) -> bool {
        let lock = paths::Paths::new(root.as_ref().to_owned()).lock();
        std::fs::File::open(lock)
            .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
    }

    /// Collects garbage in the store at `root`, whether or not another
    /// process (a running `ocidist serve --storage`) has it open. With the
    /// store free it is opened here and collected as by
    /// [`LayoutRegistry::gc_with`]; held by a server, it is collected beside
    /// it through the store's file locks (see the crate docs), leaving
    /// empty repositories in place. Set a grace period longer than a push
    /// takes (blob to manifest) when a server is running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> oci_core::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let server = oci_layout::LayoutRegistry::open(dir.path()).await?;
    /// let options = oci_layout::GcOptions {
    ///     grace: std::time::Duration::from_secs(3_600),
    ///     ..Default::default()
    /// };
    /// // Another process could do this while `server` serves.
    /// let report = oci_layout::LayoutRegistry::gc_at(dir.path(), &options).await?;
    /// assert_eq!(report.blobs_removed, 0);
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn gc_at(root: impl AsRef<Path>, options: &GcOptions) -> Result<GcReport> {
        let root = root.as_ref().to_owned();
        match store::open_unless_held(root.clone(), LayoutOptions::default()).await? {
            Some(inner) => gc::collect(&inner, options).await,
            None => {
                let options = options.clone();
                let paths = paths::Paths::new(root);
                tokio::task::spawn_blocking(move || gc::collect_outside(&paths, &options))
                    .await
                    .map_err(error::join_err)?
                    .map_err(Into::into)
            }
        }
    }
}

impl std::fmt::Debug for LayoutRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayoutRegistry")
            .field("root", &self.inner.paths.root())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Registry for LayoutRegistry {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        blobs::get(&self.inner, repo, digest, None).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        blobs::get(&self.inner, repo, digest, Some(range)).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        blobs::resolve(&self.inner, repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let descriptor = manifests::resolve(&self.inner, repo, digest).await?;
        manifests::read(&self.inner, repo, descriptor).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let descriptor = manifests::resolve_tag(&self.inner, repo, tag).await?;
        manifests::read(&self.inner, repo, descriptor).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        manifests::resolve(&self.inner, repo, digest).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        manifests::resolve_tag(&self.inner, repo, tag).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        blobs::push(&self.inner, repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::start(&self.inner, repo).await?))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::resume(&self.inner, repo, id).await?))
    }

    async fn expire_uploads(&self, idle: std::time::Duration) -> Result<u64> {
        expiry::expire(&self.inner, idle).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        blobs::mount(&self.inner, repo, from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        manifests::push(&self.inner, repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        blobs::delete(&self.inner, repo, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        manifests::delete(&self.inner, repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        manifests::delete_tag(&self.inner, repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        lists::tags(&self.inner, repo, options)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        lists::referrers(&self.inner, repo, subject, artifact_type)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        lists::repositories(&self.inner, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::registry::bytes_stream;
    use oci_core::testkit::random_bytes;

    /// A blob this process wrote is trusted by its first read (not hashed
    /// again): the stamp it recorded is the file's state once its
    /// temporary or upload name is gone.
    #[tokio::test]
    async fn a_pushed_blob_is_trusted_by_its_first_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let reg = LayoutRegistry::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let app: RepoName = "app".parse().unwrap_or_else(|e| panic!("{e}"));
        for chunked in [false, true] {
            let data = random_bytes(300_000);
            let digest = Digest::sha256(&data);
            if chunked {
                let mut writer = reg
                    .push_blob_chunked(&app)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                writer
                    .write(data.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                writer
                    .commit(&digest)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            } else {
                reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 65_536))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let meta = std::fs::metadata(reg.inner.paths.store_blob(&digest))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                reg.inner.verified.trusted(&meta, &digest),
                "a {} push is hashed again by its first read",
                if chunked { "chunked" } else { "monolithic" }
            );
        }
    }
}
