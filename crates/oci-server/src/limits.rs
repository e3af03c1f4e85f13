//! [`Limits`]: what a server grants one client, connection or repository,
//! so that slow, idle, numerous or greedy clients cannot stall it or
//! exhaust its memory and file descriptors; and the per-client token
//! bucket behind [`RateLimit`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The server's limits, each with a safe default; see each setter. The
/// timeouts run on Tokio's timer, so the runtime needs its time driver
/// (`enable_all` or `enable_time`), as any runtime built by
/// `#[tokio::main]` has.
///
/// ```
/// use std::time::Duration;
/// use oci_server::{Limits, RateLimit, ServerOptions};
///
/// let limits = Limits::new()
///     .max_connections(512)
///     .upload_expiry(Some(Duration::from_secs(3600)))
///     .rate_limit(Some(RateLimit::new(50.0, 100)));
/// let options = ServerOptions::new().limits(limits);
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) body_idle_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_uploads: usize,
    pub(crate) max_uploads_per_repo: usize,
    pub(crate) upload_expiry: Option<Duration>,
    pub(crate) max_blob_size: Option<u64>,
    pub(crate) rate_limit: Option<RateLimit>,
}

/// Default [`Limits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`Limits::body_idle_timeout`].
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default [`Limits::max_headers`].
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Default [`Limits::max_uploads`].
pub const DEFAULT_MAX_UPLOADS: usize = 10_000;
/// Default [`Limits::max_uploads_per_repo`].
pub const DEFAULT_MAX_UPLOADS_PER_REPO: usize = 1_000;
/// Default [`Limits::upload_expiry`].
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            body_idle_timeout: Some(DEFAULT_BODY_IDLE_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_headers: DEFAULT_MAX_HEADERS,
            max_uploads: DEFAULT_MAX_UPLOADS,
            max_uploads_per_repo: DEFAULT_MAX_UPLOADS_PER_REPO,
            upload_expiry: Some(DEFAULT_UPLOAD_EXPIRY),
            max_blob_size: None,
            rate_limit: None,
        }
    }
}

impl Limits {
    /// The defaults: 30 s to send request headers, connections idle for
    /// 120 s closed, request bodies stalled for 60 s dropped, 4,096
    /// connections, 256 request headers, 10,000 open upload sessions (1,000
    /// per repository) expiring after 24 h idle, blobs of any size, no rate
    /// limit.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// How long a client has to send a request's headers once its
    /// connection is quiet (just opened, or every request answered and
    /// sent); the connection is closed after it. This closes slowly sent
    /// headers and idle keep-alive connections, HTTP/1 and HTTP/2 alike,
    /// and bounds a TLS handshake. `None` waits for ever.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Limits {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a connection may move no bytes, in either direction, while
    /// no request on it is being handled, before it is closed: idle
    /// keep-alive connections (HTTP/1 and HTTP/2) and clients that stopped
    /// reading a response. `None` keeps them.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Limits {
        self.idle_timeout = timeout;
        self
    }

    /// How long a request body may send nothing before the request fails
    /// (an upload keeps what it received and stays resumable). `None`
    /// waits for ever.
    pub fn body_idle_timeout(mut self, timeout: Option<Duration>) -> Limits {
        self.body_idle_timeout = timeout;
        self
    }

    /// How many connections are served at once; one more is answered at
    /// once with `503` and `Retry-After` (or closed when even those pile
    /// up), never left waiting.
    pub fn max_connections(mut self, connections: usize) -> Limits {
        self.max_connections = connections.max(1);
        self
    }

    /// How many headers an HTTP/1 request may carry (hyper's own default
    /// is 100); more is a `431`.
    pub fn max_headers(mut self, headers: usize) -> Limits {
        self.max_headers = headers.max(1);
        self
    }

    /// How many upload sessions this server has opened and not yet seen
    /// committed, cancelled or expired, in total; one more POST is a `429
    /// TOOMANYREQUESTS` with `Retry-After`.
    pub fn max_uploads(mut self, sessions: usize) -> Limits {
        self.max_uploads = sessions;
        self
    }

    /// The same, per repository.
    pub fn max_uploads_per_repo(mut self, sessions: usize) -> Limits {
        self.max_uploads_per_repo = sessions;
        self
    }

    /// How long an upload session may receive nothing before a background
    /// sweep cancels it (through `Registry::expire_uploads`, on stores
    /// that support it) and stops counting it. `None` never expires them.
    pub fn upload_expiry(mut self, idle: Option<Duration>) -> Limits {
        self.upload_expiry = idle;
        self
    }

    /// The largest blob an upload may grow to; more is a `413
    /// SIZE_INVALID`. `None` (the default) is unbounded: blobs stream to
    /// the store and are never held whole.
    pub fn max_blob_size(mut self, bytes: Option<u64>) -> Limits {
        self.max_blob_size = bytes;
        self
    }

    /// A per-client-address request rate; `None` (the default) is
    /// unlimited.
    pub fn rate_limit(mut self, rate: Option<RateLimit>) -> Limits {
        self.rate_limit = rate;
        self
    }
}

/// A token bucket per client IP address: `burst` requests at once, refilled
/// at `per_second`. A request finding the bucket empty is a `429
/// TOOMANYREQUESTS` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
}

impl RateLimit {
    /// `per_second` requests a second on average, `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> RateLimit {
        RateLimit {
            per_second: if per_second.is_finite() && per_second > 0.0 {
                per_second
            } else {
                1.0
            },
            burst: burst.max(1),
        }
    }
}

/// How many clients the rate limiter remembers before it forgets those
/// whose buckets are full again.
const REMEMBERED_CLIENTS: usize = 4096;

/// The token buckets of the clients seen recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter for `rate`.
    pub(crate) fn new(rate: RateLimit) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`; when there is none, how long until one.
    pub(crate) fn take(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let RateLimit { per_second, burst } = self.rate;
        let burst = f64::from(burst);
        let refill = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= REMEMBERED_CLIENTS && !buckets.contains_key(&client) {
            buckets.retain(|_, b| refill(b) < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(bucket);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills() {
        let limiter = RateLimiter::new(RateLimit::new(1000.0, 3));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            limiter.take(a).unwrap();
        }
        let wait = limiter.take(a).unwrap_err();
        assert!(wait <= Duration::from_millis(1), "{wait:?}");
        // Other clients have their own bucket.
        limiter.take(b).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        limiter.take(a).unwrap();
    }
}
