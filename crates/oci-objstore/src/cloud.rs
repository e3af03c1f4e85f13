//! The cloud backends (S3, Google Cloud Storage, Azure): each
//! `object_store` builder set up the same way, from the environment and
//! the caller's settings, with this crate's retry policy and HTTP client
//! limits (see [`client_options`]).

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

use crate::error::ObjError;

/// A request gives up after a few quick retries (object_store's own
/// default waits up to 3 minutes): the client sees a 503 and retries the
/// request itself, rather than a connection held that long.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(10),
        ..object_store::RetryConfig::default()
    }
}

/// A backend that stops answering for this long fails the request: a
/// response not begun, or a body with no bytes coming.
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The HTTP client settings before the environment's and the caller's.
///
/// No limit on a whole request (object_store's default is 30 s from
/// connecting to the body's end): a blob streams for as long as its
/// client takes to read it, and a 1 GiB blob to a slow client is not cut
/// off at 30 s. A backend that stalls still fails the request after
/// [`STALL_TIMEOUT`]. An explicit `timeout` setting is honoured.
fn client_options() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout_disabled()
        .with_read_timeout(STALL_TIMEOUT)
}

/// TLS over rustls with ring; a provider installed before is kept.
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One cloud backend's builder in `object_store`: S3, GCS or Azure, each
/// set up the same way by [`backend`].
pub(crate) trait CloudBuilder: Sized {
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
pub(crate) fn backend<B, I, K, V>(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
