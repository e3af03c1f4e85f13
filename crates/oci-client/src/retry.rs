//! Retry policy: which failures are worth another try, and how long to
//! wait before it (exponential backoff with full jitter, or the server's
//! `Retry-After`), bounded in attempts and total time.

use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The largest backoff (and the largest `Retry-After` honoured).
    pub max_backoff: Duration,
    /// Each backoff is this many times the previous one.
    pub base: f64,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            max_retries: 4,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> RetryConfig {
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        }
    }
}

/// The retry state of one request: attempts made, time spent, next backoff.
#[derive(Debug)]
pub(crate) struct Retrier {
    config: RetryConfig,
    started: Instant,
    retries: u32,
    next_backoff: Duration,
}

impl Retrier {
    /// A fresh state for a request about to be made.
    pub(crate) fn new(config: &RetryConfig) -> Retrier {
        Retrier {
            config: config.clone(),
            started: Instant::now(),
            retries: 0,
            next_backoff: config.initial_backoff,
        }
    }

    /// How long to wait before the next attempt, or `None` when the budget
    /// (attempts or time) is spent. `retry_after` is the server's hint.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.retries >= self.config.max_retries {
            return None;
        }
        let backoff = self.next_backoff;
        let grown = backoff.as_secs_f64() * self.config.base.max(1.0);
        self.next_backoff = Duration::from_secs_f64(grown).min(self.config.max_backoff);
        // Full jitter: anywhere between nothing and the current backoff.
        let jittered = backoff.mul_f64(rand::random::<f64>());
        let delay = match retry_after {
            Some(hint) => hint.min(self.config.max_backoff).max(jittered),
            None => jittered,
        };
        if self.started.elapsed() + delay > self.config.max_elapsed {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }

    /// How many retries were made.
    #[cfg(test)]
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }
}

/// Whether a response status is a transient failure worth retrying.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Whether a response status means the request was not acted on, so even a
/// non-idempotent request may be sent again.
pub(crate) fn is_unprocessed_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503)
}

/// The `Retry-After` header as a delay (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate_parse(value)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if year < 1970 || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years >= 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_retries: u32) -> RetryConfig {
        RetryConfig {
            max_retries,
            max_elapsed: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            base: 2.0,
        }
    }

    #[test]
    fn backoff_is_bounded_in_attempts_and_size() {
        let mut r = Retrier::new(&config(5));
        let delays: Vec<_> = std::iter::from_fn(|| r.next_delay(None)).collect();
        assert_eq!(delays.len(), 5);
        assert_eq!(r.retries(), 5);
        let caps = [100, 200, 400, 400, 400];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(*d <= Duration::from_millis(cap), "{d:?} > {cap}ms");
        }
        assert!(
            Retrier::new(&RetryConfig::none())
                .next_delay(None)
                .is_none()
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut r = Retrier::new(&config(3));
        let d = r.next_delay(Some(Duration::from_millis(300))).unwrap();
        assert_eq!(d, Duration::from_millis(300));
        let d = r.next_delay(Some(Duration::from_secs(60))).unwrap();
        assert_eq!(d, Duration::from_millis(400));
    }

    #[test]
    fn total_time_budget_stops_retries() {
        let mut c = config(10);
        c.max_elapsed = Duration::from_millis(50);
        let mut r = Retrier::new(&c);
        assert!(r.next_delay(Some(Duration::from_millis(300))).is_none());
    }

    #[test]
    fn retry_after_header_forms() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        assert_eq!(
            httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn statuses() {
        for s in [429, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()));
        }
        for s in [200, 400, 401, 404, 500] {
            assert!(!is_retryable_status(StatusCode::from_u16(s).unwrap()));
        }
        assert!(is_unprocessed_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_unprocessed_status(StatusCode::BAD_GATEWAY));
    }
}
