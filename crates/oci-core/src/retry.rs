//! The one retry policy of the workspace: which failures are worth another
//! try ([`Error::is_transient`], and not already retried by a lower layer),
//! and how long to wait before it (exponential backoff with full jitter, or
//! the server's hint), bounded in attempts and total time.
//!
//! Each failure is retried by exactly one layer, with that layer's budget:
//! a layer that retried a transient failure until its budget was spent
//! hands it on marked ([`Error::is_retried`]), and [`is_retryable`] is false
//! for it above. `oci-client` retries each request; `oci-large` retries a
//! whole chunk only for a transient failure the layer below did not retry
//! (a stream body that could not be sent again, an in-process store).
//!
//! The policy only computes delays; the caller sleeps on its own runtime.
//!
//! ```
//! use std::time::Duration;
//! use oci_core::Error;
//! use oci_core::retry::{Retrier, RetryConfig};
//!
//! let mut retrier = Retrier::new(&RetryConfig { max_retries: 1, ..RetryConfig::default() });
//! let reset = Error::transient("connection reset");
//! assert!(retrier.delay_after(&reset, None).is_some());
//! assert!(retrier.delay_after(&reset, None).is_none(), "budget spent");
//! assert!(retrier.give_up(reset).is_retried());
//! assert!(retrier.delay_after(&Error::internal("bad config"), None).is_none());
//! ```

use std::time::{Duration, Instant};

use crate::Error;

/// How often and how patiently an operation is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The largest backoff (and the largest server hint honoured).
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

/// Whether a failure is worth another attempt at this layer: transient,
/// and not already retried by a layer below.
pub fn is_retryable(err: &Error) -> bool {
    err.is_transient() && !err.is_retried()
}

/// The retry state of one operation: attempts made, time spent, next
/// backoff. One per operation, so its budget is the operation's.
#[derive(Debug)]
pub struct Retrier {
    config: RetryConfig,
    started: Instant,
    retries: u32,
    next_backoff: Duration,
}

impl Retrier {
    /// A fresh state for an operation about to start.
    pub fn new(config: &RetryConfig) -> Retrier {
        Retrier {
            config: config.clone(),
            started: Instant::now(),
            retries: 0,
            next_backoff: config.initial_backoff,
        }
    }

    /// How long to wait before the next attempt, or `None` when the budget
    /// (attempts or time) is spent. `retry_after` is the server's hint.
    /// For callers that decide retryability themselves (an HTTP status);
    /// [`Retrier::delay_after`] decides it from an error.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
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

    /// How long to wait before trying again after `err`, or `None` when it
    /// is not [`is_retryable`] or the budget is spent.
    pub fn delay_after(&mut self, err: &Error, retry_after: Option<Duration>) -> Option<Duration> {
        if !is_retryable(err) {
            return None;
        }
        self.next_delay(retry_after)
    }

    /// The error to hand on once this layer stops: a retryable one is
    /// marked [`Error::is_retried`] (this layer's budget was spent on it),
    /// unless this layer was configured not to retry at all.
    pub fn give_up(&self, err: Error) -> Error {
        if self.config.max_retries > 0 && is_retryable(&err) {
            err.with_retried()
        } else {
            err
        }
    }

    /// How many retries were made.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

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
    fn only_transient_failures_not_retried_below_are_retried() {
        let mut r = Retrier::new(&config(10));
        for permanent in [
            Error::internal("a corrupt file"),
            Error::new(ErrorCode::Denied, "no"),
            Error::new(ErrorCode::BlobUnknown, "gone"),
            Error::from_response(ErrorCode::ManifestInvalid, "bad", 400),
        ] {
            assert!(r.delay_after(&permanent, None).is_none(), "{permanent}");
            assert!(!r.give_up(permanent).is_retried());
        }
        assert_eq!(r.retries(), 0, "no budget spent on permanent failures");
        let reset = Error::transient("reset");
        assert!(r.delay_after(&reset, None).is_some());
        assert!(
            r.delay_after(&reset.clone().with_retried(), None).is_none(),
            "retried below"
        );
        assert!(
            r.delay_after(&Error::new(ErrorCode::TooManyRequests, ""), None)
                .is_some()
        );
    }

    #[test]
    fn a_spent_budget_marks_the_failure_for_the_layers_above() {
        let mut r = Retrier::new(&config(1));
        let unavailable = Error::from_response(ErrorCode::Unknown, "unavailable", 503);
        assert!(r.delay_after(&unavailable, None).is_some());
        assert!(r.delay_after(&unavailable, None).is_none());
        let handed_on = r.give_up(unavailable);
        assert!(handed_on.is_transient() && handed_on.is_retried());
        assert!(!is_retryable(&handed_on));
        // A layer told not to retry leaves the failure to the layers above.
        let none = Retrier::new(&RetryConfig::none());
        assert!(is_retryable(&none.give_up(Error::transient("reset"))));
    }
}
