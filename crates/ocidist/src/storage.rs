//! What `--storage` names: an OCI layout directory (a plain path, as
//! always) or an object store (`s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
//! `az://CONTAINER/PREFIX`, `file:///PATH`, `memory://`, see
//! [`oci_objstore::StorageUrl`]); opening it for `serve` and collecting its
//! garbage for `gc`. The one place that turns such a name into a store:
//! `serve`, `gc` and the image arguments of the other commands
//! ([`StoreRef`], `STORE#REPO:TAG`) all open stores here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use oci_core::{Error, ErrorCode, Reference, Registry, Result};

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

    /// Opens the store, creating a directory store that does not exist
    /// yet (for serving, or as the target of a push or copy).
    pub async fn open(&self) -> Result<Arc<dyn Registry>> {
        self.open_writing(oci_layout::Writes::Direct).await
    }

    /// As [`Storage::open`], for a mirror's cache, whose blobs are read
    /// back as soon as they are written: a directory store keeps them in
    /// the page cache.
    pub async fn open_cache(&self) -> Result<Arc<dyn Registry>> {
        self.open_writing(oci_layout::Writes::Cached).await
    }

    async fn open_writing(&self, writes: oci_layout::Writes) -> Result<Arc<dyn Registry>> {
        match self {
            Storage::Layout(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::new(
                        ErrorCode::Unknown,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
                let options = oci_layout::LayoutOptions {
                    writes,
                    ..Default::default()
                };
                Ok(Arc::new(
                    oci_layout::LayoutRegistry::open_with(dir, options).await?,
                ))
            }
            Storage::Object(url) => Ok(Arc::new(open_object(url).await?)),
        }
    }

    /// Opens a store that must exist already (what a command reads from):
    /// a missing directory is reported, not created.
    pub async fn open_existing(&self) -> Result<Arc<dyn Registry>> {
        let dir = match self {
            Storage::Layout(dir) => Some(dir.clone()),
            Storage::Object(url) => match url.parse::<oci_objstore::StorageUrl>()? {
                oci_objstore::StorageUrl::File(dir) => Some(dir),
                _ => None,
            },
        };
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(Error::new(
                ErrorCode::NameUnknown,
                format!("there is no store at {self}: check the path"),
            ));
        }
        self.open().await
    }
}

/// Opens an object store, first asking an S3 bucket whether it is there:
/// opening probes it with writes, which some servers (s3s-fs) take as
/// leave to create the bucket, and reads of a missing bucket would only
/// say that nothing is found.
async fn open_object(url: &str) -> Result<oci_objstore::ObjRegistry> {
    let parsed: oci_objstore::StorageUrl = url.parse()?;
    let backend = parsed.backend(std::iter::empty::<(&str, &str)>())?;
    if let oci_objstore::StorageUrl::S3 { bucket, .. } = &parsed {
        // One LIST of at most a page: it fails on a bucket that is not
        // there, on refused credentials and on an endpoint not reached.
        if let Err(e) = backend.list_with_delimiter(None).await {
            tracing::debug!(error = %e, "listing the bucket failed");
            return Err(bucket_error(bucket, &e));
        }
    }
    oci_objstore::ObjRegistry::with_backend(backend, &parsed.to_string()).await
}

/// Why a bucket is not opened when the credentials are refused.
const REFUSED: &str =
    "refused the credentials (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)";

/// What to tell of a bucket that could not be listed (the backend's own
/// message, with the endpoint and request, is logged at debug level).
fn bucket_error(bucket: &str, e: &object_store::Error) -> Error {
    // S3 answers in XML with a code, which object_store passes on in its
    // message for most failures.
    let text = e.to_string();
    let refused = [
        "403 Forbidden",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
    ];
    let (code, why) = match e {
        object_store::Error::NotFound { .. } => (ErrorCode::NameUnknown, "does not exist"),
        _ if text.contains("NoSuchBucket") => (ErrorCode::NameUnknown, "does not exist"),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => (ErrorCode::Denied, REFUSED),
        _ if refused.iter().any(|code| text.contains(code)) => (ErrorCode::Denied, REFUSED),
        _ => (
            ErrorCode::Unknown,
            "could not be reached (check AWS_ENDPOINT, AWS_ALLOW_HTTP for http://, AWS_REGION)",
        ),
    };
    let what = if code == ErrorCode::NameUnknown {
        "; create it first, or check AWS_ENDPOINT"
    } else {
        ""
    };
    Error::new(code, format!("the S3 bucket {bucket} {why}{what}"))
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Layout(dir) => write!(f, "{}", dir.display()),
            Storage::Object(url) => f.write_str(url),
        }
    }
}

/// How a store reference is written, for messages and `--help`.
pub const STORE_REF_SYNTAX: &str = "STORE#REPO[:TAG][@DIGEST], STORE being s3://BUCKET/PREFIX, \
     file:///PATH or a layout directory (what `serve --storage` takes)";

/// An image argument that names a store rather than a registry:
/// `STORE#REPO[:TAG][@DIGEST]`, where `STORE` is what `serve --storage`
/// takes (`s3://BUCKET/PREFIX`, `file:///PATH`, a layout directory) and
/// the part after `#` is a repository as in the store's catalog. The
/// command then reads or writes the store itself, with no server between.
///
/// ```
/// use ocidist::storage::{Storage, StoreRef};
///
/// let r = StoreRef::parse("s3://bucket/registry#demo/hello:1.0").unwrap();
/// assert_eq!(r.storage, Storage::Object("s3://bucket/registry".into()));
/// assert_eq!(r.reference.repository().as_str(), "demo/hello");
/// assert_eq!(r.to_string(), "s3://bucket/registry#demo/hello:1.0");
/// // No registry reference holds a `#`: the form is unambiguous.
/// assert!(StoreRef::is_store_ref("./layouts#demo/hello"));
/// assert!(!StoreRef::is_store_ref("localhost:5000/demo/hello:1.0"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRef {
    /// The store.
    pub storage: Storage,
    /// The image in it. Its registry is the store's name (`s3://…`, the
    /// directory), so messages about it name the store; no tag or digest
    /// is filled in.
    pub reference: Reference,
}

impl StoreRef {
    /// Whether `arg` names a store rather than a registry: it holds a `#`
    /// (no registry reference can) or starts with a URL scheme.
    pub fn is_store_ref(arg: &str) -> bool {
        arg.contains('#') || arg.contains("://")
    }

    /// Parses `STORE#REPO[:TAG][@DIGEST]`; a form that is not one says what
    /// to write.
    pub fn parse(arg: &str) -> Result<StoreRef> {
        let (store, image) = arg.split_once('#').unwrap_or((arg, ""));
        let storage = parse_store(store, arg)?;
        if image.is_empty() {
            return Err(invalid(format!(
                "{arg:?} names a store but no repository in it: write {store}#REPO[:TAG]"
            )));
        }
        // The repository part is parsed as a reference on a stand-in host,
        // so it is a repository name, tag and digest and nothing else.
        let bare = Reference::parse_bare(&format!("localhost/{image}")).map_err(|e| {
            invalid(format!(
                "{image:?} after `#` in {arg:?} is not REPO[:TAG][@DIGEST]: {}",
                e.message()
                    .rsplit_once(": ")
                    .map_or(e.message(), |(_, why)| why)
            ))
        })?;
        let reference = Reference::new(
            storage.to_string(),
            bare.repository().clone(),
            bare.tag().cloned(),
            bare.digest().cloned(),
        );
        Ok(StoreRef { storage, reference })
    }

    /// Parses a store named alone (`catalog`): `STORE` or `STORE#`.
    pub fn parse_store(arg: &str) -> Result<Storage> {
        match arg.split_once('#') {
            Some((store, "")) => parse_store(store, arg),
            Some(_) => Err(invalid(format!(
                "{arg:?} names a repository; give the store alone (the part before `#`)"
            ))),
            None => parse_store(arg, arg),
        }
    }
}

impl std::fmt::Display for StoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.reference;
        write!(f, "{}#{}", self.storage, r.repository())?;
        if let Some(t) = r.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = r.digest() {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::NameInvalid, message)
}

/// The store part of a store reference: what `serve --storage` takes,
/// checked here so a bad one is told before anything is opened.
fn parse_store(store: &str, arg: &str) -> Result<Storage> {
    if store.is_empty() {
        return Err(invalid(format!(
            "{arg:?} names no store before `#`: write {STORE_REF_SYNTAX}"
        )));
    }
    let storage = Storage::parse(Path::new(store));
    match &storage {
        Storage::Object(url) => {
            if url.parse::<oci_objstore::StorageUrl>()? == oci_objstore::StorageUrl::Memory {
                return Err(invalid(format!(
                    "{store} is gone when the command ends: name a bucket (s3://BUCKET/PREFIX) or a directory"
                )));
            }
        }
        Storage::Layout(_) if store.contains("://") => {
            let scheme = store.split_once("://").map_or(store, |(s, _)| s);
            if scheme == "docker" {
                return Err(invalid(format!(
                    "{arg:?}: a registry is named without docker://, as HOST[:PORT]/REPO[:TAG]"
                )));
            }
            return Err(invalid(format!(
                "{scheme}:// stores are not supported: write {STORE_REF_SYNTAX}"
            )));
        }
        Storage::Layout(_) => {}
    }
    Ok(storage)
}

/// Collects an object store's garbage and prints what went. `grace` keeps
/// unreferenced blobs younger than that many seconds (default: an hour, as
/// servers may be pushing).
pub async fn gc_object(url: &str, grace: Option<u64>) -> Result<()> {
    let registry = open_object(url).await?;
    let mut options = oci_objstore::GcOptions::beside_servers();
    if let Some(secs) = grace {
        options.grace = Duration::from_secs(secs);
    }
    let report = registry.gc_with(&options).await?;
    println!("{report}");
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

    #[test]
    fn store_refs_name_a_store_and_an_image_in_it() {
        let r = StoreRef::parse("s3://b/pre/fix#demo/hello:1.0").unwrap();
        assert_eq!(r.storage, Storage::Object("s3://b/pre/fix".into()));
        assert_eq!(r.reference.registry(), "s3://b/pre/fix");
        assert_eq!(r.reference.tag().unwrap().as_str(), "1.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = StoreRef::parse(&format!("/srv/reg#a.b/c@{digest}")).unwrap();
        assert_eq!(r.storage, Storage::Layout("/srv/reg".into()));
        assert_eq!(r.reference.repository().as_str(), "a.b/c");
        assert!(r.reference.tag().is_none());
        assert_eq!(r.to_string(), format!("/srv/reg#a.b/c@{digest}"));
        let r = StoreRef::parse("file:///srv/obj#x").unwrap();
        assert_eq!(r.storage, Storage::Object("file:///srv/obj".into()));
        assert!(r.reference.tag().is_none());
        assert_eq!(
            StoreRef::parse_store("s3://b/p#").unwrap(),
            Storage::Object("s3://b/p".into())
        );
        assert_eq!(
            StoreRef::parse_store("./reg").unwrap(),
            Storage::Layout("./reg".into())
        );
    }

    #[test]
    fn bad_store_refs_say_what_to_write() {
        for (arg, says) in [
            ("s3://b/p", "write s3://b/p#REPO[:TAG]"),
            ("s3://b/p#", "write s3://b/p#REPO[:TAG]"),
            ("docker://localhost/x:1", "without docker://"),
            ("#demo/x", "names no store"),
            ("ftp://b/p#demo/x", "ftp:// stores are not supported"),
            ("memory://#demo/x", "gone when the command ends"),
            ("s3://#demo/x", "s3://BUCKET/PREFIX"),
            ("file://rel#demo/x", "file:///PATH"),
            ("/srv/reg#Demo:x", "is not REPO[:TAG][@DIGEST]"),
            ("/srv/reg#demo:bad tag", "is not REPO[:TAG][@DIGEST]"),
        ] {
            let e = StoreRef::parse(arg).expect_err(arg);
            assert!(e.message().contains(says), "{arg}: {}", e.message());
            assert!(!e.message().contains('\n'), "{arg}: one line");
        }
        assert!(StoreRef::parse_store("s3://b/p#demo/x").is_err());
    }
}
