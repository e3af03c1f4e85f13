//! Storage URLs: which backend a `--storage` URL names, and opening it.
//!
//! - `s3://bucket/prefix`: Amazon S3 or an S3-compatible server, set up
//!   from the standard environment variables `object_store` reads
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//!   `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, …); requires the `s3` feature.
//! - `file:///path`: a local directory, through `object_store`'s local
//!   file-system backend (created if missing).
//! - `memory://`: an in-memory bucket, gone when the process ends.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

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
    /// A local directory.
    File(std::path::PathBuf),
    /// A bucket in this process's memory.
    Memory,
}

impl StorageUrl {
    /// Whether `text` looks like a storage URL (has a scheme this crate
    /// knows), as opposed to a plain path.
    pub fn is_url(text: &str) -> bool {
        ["s3://", "file://", "memory://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
    }
}

impl std::str::FromStr for StorageUrl {
    type Err = ObjError;

    fn from_str(text: &str) -> Result<StorageUrl, ObjError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ObjError::Config(format!(
                    "{text}: an s3:// URL names a bucket: s3://BUCKET/PREFIX"
                )));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
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
            "{text}: not a storage URL (s3://BUCKET/PREFIX, file:///PATH or memory://)"
        )))
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StorageUrl::File(path) => write!(f, "file://{}", path.display()),
            StorageUrl::Memory => f.write_str("memory://"),
        }
    }
}

impl StorageUrl {
    /// The backend this URL names, set up from the environment and then
    /// `options` (`object_store` configuration keys such as `aws_endpoint`,
    /// `aws_allow_http`, `aws_access_key_id`; upper case `AWS_…` names are
    /// accepted too). Options apply to `s3://` only.
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
    match url {
        StorageUrl::S3 { bucket, prefix } => s3(bucket, prefix, options),
        StorageUrl::File(path) => {
            std::fs::create_dir_all(path).map_err(|e| {
                ObjError::Config(format!("cannot create {}: {}", path.display(), e.kind()))
            })?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(path)
                .map_err(|e| ObjError::Config(format!("cannot open {}: {e}", path.display())))?;
            Ok(Arc::new(local))
        }
        StorageUrl::Memory => Ok(Arc::new(object_store::memory::InMemory::new())),
    }
}

#[cfg(feature = "s3")]
fn s3<I, K, V>(bucket: &str, prefix: &str, options: I) -> Result<Arc<dyn ObjectStore>, ObjError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    // TLS over rustls with ring; a provider installed before is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A request gives up after a few quick retries (object_store's own
    // default waits up to 3 minutes): the client sees a 503 and retries
    // the request itself, rather than a connection held that long.
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(10),
        ..object_store::RetryConfig::default()
    };
    let mut builder = AmazonS3Builder::from_env().with_retry(retry);
    for (key, value) in options {
        let name = key.as_ref().to_ascii_lowercase();
        let key: AmazonS3ConfigKey = name
            .parse()
            .map_err(|_| ObjError::Config(format!("unknown S3 setting {name}")))?;
        builder = builder.with_config(key, value);
    }
    let store = builder
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| ObjError::Config(format!("cannot set up S3 bucket {bucket}: {e}")))?;
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, Path::from(prefix)))
    })
}

#[cfg(not(feature = "s3"))]
fn s3<I, K, V>(_: &str, _: &str, _: I) -> Result<Arc<dyn ObjectStore>, ObjError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    Err(ObjError::Config(
        "this build has no S3 support (the oci-objstore `s3` feature)".to_owned(),
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
}
