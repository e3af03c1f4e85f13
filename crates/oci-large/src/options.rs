//! Settings of a download or an upload, and their retry budgets under the
//! shared policy ([`oci_core::retry`]): a chunk is retried only for a
//! transient failure that the registry below (`oci-client`) did not
//! already retry.

use std::time::Duration;

use oci_core::retry::RetryConfig;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// How a big blob is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Range requests in flight at once (at least 1). Also the most chunks
    /// held in memory: in flight, or done and waiting for earlier ones.
    pub concurrency: usize,
    /// The size of the first chunk.
    pub initial_chunk: u64,
    /// The smallest chunk the tuner goes down to.
    pub min_chunk: u64,
    /// The largest chunk the tuner goes up to.
    pub max_chunk: u64,
    /// The span of time one range request should take; the chunk size is
    /// tuned towards it as the transfer goes.
    pub target_request_time: (Duration, Duration),
    /// Further attempts per chunk after a transient failure that the
    /// registry below did not retry itself.
    pub retries: u32,
    /// The longest wait before the first retry (jittered); it doubles with
    /// each retry.
    pub retry_delay: Duration,
}

impl Default for DownloadOptions {
    fn default() -> DownloadOptions {
        DownloadOptions {
            concurrency: 4,
            initial_chunk: 4 * MIB,
            min_chunk: MIB,
            max_chunk: 64 * MIB,
            target_request_time: (Duration::from_millis(500), Duration::from_secs(1)),
            retries: 3,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// How a big blob is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// Bytes per chunk (raised to the store's minimum if it has one).
    pub chunk: u64,
    /// Further attempts per chunk after a transient failure that the
    /// registry below did not retry itself, each resuming the upload at the
    /// offset the store reports.
    pub retries: u32,
    /// The longest wait before the first retry (jittered); it doubles with
    /// each retry.
    pub retry_delay: Duration,
}

impl Default for UploadOptions {
    fn default() -> UploadOptions {
        UploadOptions {
            chunk: 16 * MIB,
            retries: 3,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// The shared retry policy ([`oci_core::retry`]) with `retries` retries,
/// the first after up to `delay` (full jitter), doubling up to 30 s.
fn policy(retries: u32, delay: Duration) -> RetryConfig {
    RetryConfig {
        max_retries: retries,
        initial_backoff: delay,
        max_backoff: Duration::from_secs(30),
        ..RetryConfig::default()
    }
}

impl DownloadOptions {
    /// The retry budget of one chunk.
    pub(crate) fn retry_config(&self) -> RetryConfig {
        policy(self.retries, self.retry_delay)
    }
}

impl UploadOptions {
    /// The retry budget of one chunk (its writes and the resumes between).
    pub(crate) fn retry_config(&self) -> RetryConfig {
        policy(self.retries, self.retry_delay)
    }
}

/// Waits `delay` unless it is nothing.
pub(crate) async fn wait(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::retry::Retrier;
    use oci_core::{Error, ErrorCode};

    #[test]
    fn a_chunk_is_retried_only_for_transient_failures_not_retried_below() {
        let options = UploadOptions::default();
        let mut r = Retrier::new(&options.retry_config());
        assert!(
            r.delay_after(&Error::transient("connection reset"), None)
                .is_some()
        );
        assert!(
            r.delay_after(&Error::new(ErrorCode::TooManyRequests, ""), None)
                .is_some()
        );
        for permanent in [
            Error::new(ErrorCode::BlobUnknown, ""),
            Error::new(ErrorCode::Denied, ""),
            Error::internal("corrupt data in the store: invalid index.json"),
            Error::internal("docker-credential-x get failed"),
            Error::transient("reset after four retries").with_retried(),
        ] {
            assert!(r.delay_after(&permanent, None).is_none(), "{permanent}");
        }
    }
}
