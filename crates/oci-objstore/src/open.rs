//! Storage URLs: which backend a `--storage` URL names, and opening it.
//!
//! - `s3://bucket/prefix`: Amazon S3 or an S3-compatible server, set up
//!   from the standard environment variables `object_store` reads
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//!   `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, …); requires the `s3` feature.
//! - `gs://bucket/prefix`: Google Cloud Storage, set up from the
//!   `GOOGLE_…` variables (`GOOGLE_SERVICE_ACCOUNT`,
//!   `GOOGLE_APPLICATION_CREDENTIALS`, …); requires the `gcs` feature.
//! - `az://container/prefix`: Azure Blob Storage, set up from the
//!   `AZURE_…` variables (`AZURE_STORAGE_ACCOUNT_NAME`,
//!   `AZURE_STORAGE_ACCOUNT_KEY`, …); requires the `azure` feature.
//! - `file:///path`: a local directory, through `object_store`'s local
//!   file-system backend (created if missing), every write fsynced with
//!   its directory before it returns.
//! - `memory://`: an in-memory bucket, gone when the process ends.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::error::ObjError;

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// An S3 bucket and a key prefix inside it (may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
    /// A Google Cloud Storage bucket and a key prefix inside it.
    Gcs {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
    /// An Azure Blob Storage container and a key prefix inside it.
    Azure {
        /// The container.
        container: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
    /// A local directory.
    File(std::path::PathBuf),
    /// A bucket in this process's memory.
    Memory,
}

impl StorageUrl {
    /// Whether `text` looks like a storage URL (has a scheme this crate
    /// knows), as opposed to a plain path.
    pub fn is_url(text: &str) -> bool {
        ["s3://", "gs://", "az://", "file://", "memory://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
    }
}

impl std::str::FromStr for StorageUrl {
    type Err = ObjError;

    fn from_str(text: &str) -> Result<StorageUrl, ObjError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = bucket_and_prefix(text, rest, "s3://BUCKET/PREFIX")?;
            return Ok(StorageUrl::S3 { bucket, prefix });
        }
        if let Some(rest) = text.strip_prefix("gs://") {
            let (bucket, prefix) = bucket_and_prefix(text, rest, "gs://BUCKET/PREFIX")?;
            return Ok(StorageUrl::Gcs { bucket, prefix });
        }
        if let Some(rest) = text.strip_prefix("az://") {
            let (container, prefix) = bucket_and_prefix(text, rest, "az://CONTAINER/PREFIX")?;
            return Ok(StorageUrl::Azure { container, prefix });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(ObjError::Config(format!(
                    "{text}: a file:// URL takes an absolute path: file:///PATH"
                )));
            }
            return Ok(StorageUrl::File(path.into()));
        }
        if text == "memory://" || text == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        Err(ObjError::Config(format!(
            "{text}: not a storage URL (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, \
             az://CONTAINER/PREFIX, file:///PATH or memory://)"
        )))
    }
}

/// The bucket (or container) and the prefix of `rest`, what follows the
/// scheme of `text`; `form` shows the expected shape in the error.
fn bucket_and_prefix(text: &str, rest: &str, form: &str) -> Result<(String, String), ObjError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ObjError::Config(format!(
            "{text}: the URL names a bucket: {form}"
        )));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StorageUrl::Gcs { bucket, prefix } => write!(f, "gs://{bucket}/{prefix}"),
            StorageUrl::Azure { container, prefix } => write!(f, "az://{container}/{prefix}"),
            StorageUrl::File(path) => write!(f, "file://{}", path.display()),
            StorageUrl::Memory => f.write_str("memory://"),
        }
    }
}

impl StorageUrl {
    /// The backend this URL names, set up from the environment and then
    /// `options` (`object_store` configuration keys of the backend, such as
    /// `aws_endpoint`, `aws_allow_http`, `google_service_account`,
    /// `azure_storage_account_name`; upper case names are accepted too).
    /// Options apply to the cloud backends only.
    pub fn backend<I, K, V>(&self, options: I) -> Result<Arc<dyn ObjectStore>, ObjError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        backend(self, options)
    }
}

/// The backend a storage URL names.
pub(crate) fn backend<I, K, V>(
    url: &StorageUrl,
    options: I,
) -> Result<Arc<dyn ObjectStore>, ObjError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    // Settings of the cloud backends only; a build without them has none.
    #[cfg(not(feature = "cloud"))]
    drop(options);
    match url {
        #[cfg(feature = "s3")]
        StorageUrl::S3 { bucket, prefix } => {
            crate::cloud::backend::<object_store::aws::AmazonS3Builder, _, _, _>(
                bucket, prefix, options,
            )
        }
        #[cfg(not(feature = "s3"))]
        StorageUrl::S3 { .. } => Err(not_built("S3", "s3")),
        #[cfg(feature = "gcs")]
        StorageUrl::Gcs { bucket, prefix } => {
            crate::cloud::backend::<object_store::gcp::GoogleCloudStorageBuilder, _, _, _>(
                bucket, prefix, options,
            )
        }
        #[cfg(not(feature = "gcs"))]
        StorageUrl::Gcs { .. } => Err(not_built("Google Cloud Storage", "gcs")),
        #[cfg(feature = "azure")]
        StorageUrl::Azure { container, prefix } => {
            crate::cloud::backend::<object_store::azure::MicrosoftAzureBuilder, _, _, _>(
                container, prefix, options,
            )
        }
        #[cfg(not(feature = "azure"))]
        StorageUrl::Azure { .. } => Err(not_built("Azure", "azure")),
        StorageUrl::File(path) => {
            std::fs::create_dir_all(path).map_err(|e| {
                ObjError::Config(format!("cannot create {}: {}", path.display(), e.kind()))
            })?;
            // Empty directories go with their last object, as "directories"
            // do in a bucket (the catalog lists them). Every write (put,
            // multipart completion, rename) is fsynced with its directory
            // before it returns, so what a 201 acknowledged survives a
            // power cut (object_store's default is no fsync).
            let local = object_store::local::LocalFileSystem::new_with_prefix(path)
                .map_err(|e| ObjError::Config(format!("cannot open {}: {e}", path.display())))?
                .with_automatic_cleanup(true)
                .with_fsync(true);
            Ok(Arc::new(local))
        }
        StorageUrl::Memory => Ok(Arc::new(object_store::memory::InMemory::new())),
    }
}

/// The error of a backend this build left out.
#[cfg(not(all(feature = "s3", feature = "gcs", feature = "azure")))]
fn not_built(backend: &str, feature: &str) -> ObjError {
    ObjError::Config(format!(
        "this build has no {backend} support (the oci-objstore `{feature}` feature)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            "s3://bucket/a/b/".parse::<StorageUrl>().unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            "s3://bucket".parse::<StorageUrl>().unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            "file:///tmp/x".parse::<StorageUrl>().unwrap(),
            StorageUrl::File("/tmp/x".into())
        );
        assert!("s3:///x".parse::<StorageUrl>().is_err());
        assert!("file://relative".parse::<StorageUrl>().is_err());
        assert!("/plain/path".parse::<StorageUrl>().is_err());
        assert!(!StorageUrl::is_url("/plain/path"));
    }

    #[test]
    fn gcs_and_azure_urls_parse_and_round_trip() {
        let gs: StorageUrl = "gs://bucket/a/b/".parse().unwrap();
        assert_eq!(
            gs,
            StorageUrl::Gcs {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(gs.to_string().parse::<StorageUrl>().unwrap(), gs);
        let az: StorageUrl = "az://images".parse().unwrap();
        assert_eq!(
            az,
            StorageUrl::Azure {
                container: "images".into(),
                prefix: String::new()
            }
        );
        assert_eq!(az.to_string().parse::<StorageUrl>().unwrap(), az);
        assert!(StorageUrl::is_url("gs://bucket") && StorageUrl::is_url("az://c"));
        assert!("gs:///x".parse::<StorageUrl>().is_err());
        assert!("az://".parse::<StorageUrl>().is_err());
    }

    // Building a backend contacts nothing: these only check that the
    // settings are taken (and bad ones refused).
    #[cfg(feature = "gcs")]
    #[test]
    fn a_gcs_backend_is_built_from_settings() {
        let url: StorageUrl = "gs://bucket".parse().unwrap();
        let store = url
            .backend([
                ("google_skip_signature", "true"),
                ("GOOGLE_BUCKET", "the-url-names-the-bucket"),
            ])
            .unwrap();
        assert_eq!(store.to_string(), "GoogleCloudStorage(bucket)");
        let prefixed: StorageUrl = "gs://bucket/registry".parse().unwrap();
        let store = prefixed
            .backend([("google_skip_signature", "true")])
            .unwrap();
        assert_eq!(store.to_string(), "PrefixObjectStore(registry)");
        let err = url.backend([("google_nonsense", "1")]).err().unwrap();
        assert!(err.to_string().contains("google_nonsense"), "{err}");
    }

    #[cfg(feature = "azure")]
    #[test]
    fn an_azure_backend_is_built_from_settings() {
        // The emulator's well-known endpoint: http://127.0.0.1:10000.
        let url: StorageUrl = "az://images".parse().unwrap();
        let store = url
            .backend([("azure_storage_use_emulator", "true")])
            .unwrap();
        assert!(store.to_string().contains("container: images"), "{store}");
        let err = url.backend([("azure_nonsense", "1")]).err().unwrap();
        assert!(err.to_string().contains("azure_nonsense"), "{err}");
    }
}
