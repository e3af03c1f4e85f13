//! Settings of a download or an upload, and which failures are worth
//! another attempt.

use std::time::Duration;

use oci_core::{Error, ErrorCode};

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
    /// Further attempts per chunk after a retryable failure.
    pub retries: u32,
    /// The wait before the first retry; it doubles with each retry.
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
    /// Further attempts per chunk after a retryable failure, each resuming
    /// the upload at the offset the store reports.
    pub retries: u32,
    /// The wait before the first retry; it doubles with each retry.
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

/// Whether another attempt may succeed: internal or transport failures
/// (`UNKNOWN`) and rate limiting, not answers about the content.
pub(crate) fn is_retryable(err: &Error) -> bool {
    matches!(err.code(), ErrorCode::Unknown | ErrorCode::TooManyRequests)
}

/// The wait before retry number `attempt` (0-based): `base` doubled per
/// attempt, at most 30 s.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(30))
}

/// Waits before retry number `attempt`.
pub(crate) async fn wait_before_retry(base: Duration, attempt: u32) {
    let wait = backoff(base, attempt);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert_eq!(backoff(base, 40), Duration::from_secs(30));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(is_retryable(&Error::internal("connection reset")));
        assert!(is_retryable(&Error::new(ErrorCode::TooManyRequests, "")));
        assert!(!is_retryable(&Error::new(ErrorCode::BlobUnknown, "")));
        assert!(!is_retryable(&Error::new(ErrorCode::Denied, "")));
    }
}
