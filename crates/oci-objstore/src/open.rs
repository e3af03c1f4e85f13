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
#[cfg(feature = "cloud")]
use object_store::path::Path;
#[cfg(feature = "cloud")]
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
    match url {
        #[cfg(feature = "s3")]
        StorageUrl::S3 { bucket, prefix } => {
            cloud::<object_store::aws::AmazonS3Builder, _, _, _>(bucket, prefix, options)
        }
        #[cfg(not(feature = "s3"))]
        StorageUrl::S3 { .. } => Err(not_built("S3", "s3")),
        #[cfg(feature = "gcs")]
        StorageUrl::Gcs { bucket, prefix } => {
            cloud::<object_store::gcp::GoogleCloudStorageBuilder, _, _, _>(bucket, prefix, options)
        }
        #[cfg(not(feature = "gcs"))]
        StorageUrl::Gcs { .. } => Err(not_built("Google Cloud Storage", "gcs")),
        #[cfg(feature = "azure")]
        StorageUrl::Azure { container, prefix } => {
            cloud::<object_store::azure::MicrosoftAzureBuilder, _, _, _>(container, prefix, options)
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

/// A request gives up after a few quick retries (object_store's own
/// default waits up to 3 minutes): the client sees a 503 and retries the
/// request itself, rather than a connection held that long.
#[cfg(feature = "cloud")]
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(10),
        ..object_store::RetryConfig::default()
    }
}

/// A backend that stops answering for this long fails the request: a
/// response not begun, or a body with no bytes coming.
#[cfg(feature = "cloud")]
pub(crate) const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The HTTP client settings before the environment's and the caller's.
///
/// No limit on a whole request (object_store's default is 30 s from
/// connecting to the body's end): a blob streams for as long as its
/// client takes to read it, and a 1 GiB blob to a slow client is not cut
/// off at 30 s. A backend that stalls still fails the request after
/// [`STALL_TIMEOUT`]. An explicit `timeout` setting is honoured.
#[cfg(feature = "cloud")]
fn client_options() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout_disabled()
        .with_read_timeout(STALL_TIMEOUT)
}

/// TLS over rustls with ring; a provider installed before is kept.
#[cfg(feature = "cloud")]
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One cloud backend's builder in `object_store`: S3, GCS or Azure, each
/// set up the same way by [`cloud`].
#[cfg(feature = "cloud")]
trait CloudBuilder: Sized {
    /// The backend's configuration keys.
    type Key: std::str::FromStr;
    /// The store it builds.
    type Store: ObjectStore;
    /// What the backend is called in messages.
    const NAME: &'static str;
    /// The prefix of the environment variables it reads.
    const ENV_PREFIX: &'static str;
    /// A builder set up from the environment.
    fn from_env() -> Self;
    /// The HTTP client setting `key` is, if it is one.
    fn client_key(key: &Self::Key) -> Option<object_store::ClientConfigKey>;
    /// Sets a configuration key.
    fn with_config(self, key: Self::Key, value: String) -> Self;
    /// Sets every HTTP client setting at once.
    fn with_client_options(self, options: object_store::ClientOptions) -> Self;
    /// Sets the retry policy.
    fn with_retry(self, retry: object_store::RetryConfig) -> Self;
    /// Names the bucket (or container).
    fn with_bucket(self, bucket: &str) -> Self;
    /// Builds the store.
    fn build(self) -> object_store::Result<Self::Store>;
}

/// Implements [`CloudBuilder`] for one `object_store` builder.
#[cfg(feature = "cloud")]
macro_rules! cloud_builder {
    ($builder:ty, $key:ty, $client:path, $store:ty, $name:literal, $env:literal, $bucket:ident) => {
        impl CloudBuilder for $builder {
            type Key = $key;
            type Store = $store;
            const NAME: &'static str = $name;
            const ENV_PREFIX: &'static str = $env;
            fn from_env() -> Self {
                <$builder>::from_env()
            }
            fn client_key(key: &$key) -> Option<object_store::ClientConfigKey> {
                match key {
                    $client(client) => Some(*client),
                    _ => None,
                }
            }
            fn with_config(self, key: $key, value: String) -> Self {
                <$builder>::with_config(self, key, value)
            }
            fn with_client_options(self, options: object_store::ClientOptions) -> Self {
                <$builder>::with_client_options(self, options)
            }
            fn with_retry(self, retry: object_store::RetryConfig) -> Self {
                <$builder>::with_retry(self, retry)
            }
            fn with_bucket(self, bucket: &str) -> Self {
                <$builder>::$bucket(self, bucket)
            }
            fn build(self) -> object_store::Result<$store> {
                <$builder>::build(self)
            }
        }
    };
}

#[cfg(feature = "s3")]
cloud_builder!(
    object_store::aws::AmazonS3Builder,
    object_store::aws::AmazonS3ConfigKey,
    object_store::aws::AmazonS3ConfigKey::Client,
    object_store::aws::AmazonS3,
    "S3",
    "AWS_",
    with_bucket_name
);
#[cfg(feature = "gcs")]
cloud_builder!(
    object_store::gcp::GoogleCloudStorageBuilder,
    object_store::gcp::GoogleConfigKey,
    object_store::gcp::GoogleConfigKey::Client,
    object_store::gcp::GoogleCloudStorage,
    "Google Cloud Storage",
    "GOOGLE_",
    with_bucket_name
);
#[cfg(feature = "azure")]
cloud_builder!(
    object_store::azure::MicrosoftAzureBuilder,
    object_store::azure::AzureConfigKey,
    object_store::azure::AzureConfigKey::Client,
    object_store::azure::MicrosoftAzure,
    "Azure",
    "AZURE_",
    with_container_name
);

/// A cloud backend's builder set up from the environment, then
/// `options` (keys lower-cased first; an unknown one is an error), with
/// [`client_options`] under both and this crate's retry policy.
#[cfg(feature = "cloud")]
fn configure<B, I, K, V>(bucket: &str, options: I) -> Result<B, ObjError>
where
    B: CloudBuilder,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    install_ring();
    // `from_env` reads the non-client settings; the client ones are
    // gathered into one `ClientOptions` over ours, which replaces the
    // builder's (a builder takes client options only whole).
    let mut builder = B::from_env().with_retry(retry());
    let mut client = client_options();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if !name.starts_with(B::ENV_PREFIX) {
            continue;
        }
        if let Some(key) = name
            .to_ascii_lowercase()
            .parse::<B::Key>()
            .ok()
            .as_ref()
            .and_then(B::client_key)
        {
            client = client.with_config(key, value);
        }
    }
    for (name, value) in options {
        let name = name.as_ref().to_ascii_lowercase();
        let key = name
            .parse::<B::Key>()
            .map_err(|_| ObjError::Config(format!("unknown {} setting {name}", B::NAME)))?;
        match B::client_key(&key) {
            Some(client_key) => client = client.with_config(client_key, value),
            None => builder = builder.with_config(key, value.into()),
        }
    }
    Ok(builder.with_client_options(client).with_bucket(bucket))
}

/// The cloud backend of `bucket` (see [`configure`]) under `prefix`.
#[cfg(feature = "cloud")]
fn cloud<B, I, K, V>(
    bucket: &str,
    prefix: &str,
    options: I,
) -> Result<Arc<dyn ObjectStore>, ObjError>
where
    B: CloudBuilder,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let store = configure::<B, _, _, _>(bucket, options)?
        .build()
        .map_err(|e| ObjError::Config(format!("cannot set up {} bucket {bucket}: {e}", B::NAME)))?;
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, Path::from(prefix)))
    })
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

    // The 1 GiB pull of bench/objstore.sh failed: object_store's default
    // 30 s limit on a whole request cut every blob GET that took longer
    // (a big blob, a slow client) at 30 s. Only a stall fails now.
    #[cfg(feature = "s3")]
    #[test]
    fn a_blob_stream_has_no_time_limit_but_a_stall_has() {
        use object_store::ClientConfigKey::{ReadTimeout, Timeout};
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey::Client};
        let builder =
            configure::<AmazonS3Builder, _, _, _>("bucket", [("aws_allow_http", "true")]).unwrap();
        assert_eq!(builder.get_config_value(&Client(Timeout)), None);
        assert_eq!(
            builder.get_config_value(&Client(ReadTimeout)).as_deref(),
            Some("30s")
        );
        // The other client settings still apply, and a limit asked for is kept.
        let builder = configure::<AmazonS3Builder, _, _, _>(
            "bucket",
            [("aws_allow_http", "true"), ("timeout", "2m")],
        )
        .unwrap();
        assert_eq!(
            builder
                .get_config_value(&Client(object_store::ClientConfigKey::AllowHttp))
                .as_deref(),
            Some("true")
        );
        assert_eq!(
            builder.get_config_value(&Client(Timeout)).as_deref(),
            Some("2m")
        );
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
