//! Sending with retries: each attempt takes a concurrency slot and sends
//! once; a transient failure (a transport failure, 429, 502, 503, 504) is
//! tried again within the call's one budget ([`oci_core::retry`]) when the
//! body can be sent again and the request may be repeated (idempotent, or
//! never acted on: no connection made, 429, 503).
//!
//! A failure this step gave up on after spending the budget is handed on
//! marked as retried, so no layer above (`oci-large`) retries it again; a
//! failure it could not retry (a streamed body, a POST whose connection
//! broke) is handed on unmarked.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Uri};
use hyper::body::Incoming;
use oci_core::Result;
use oci_core::retry::{Retrier, RetryConfig};
use tokio::sync::OwnedSemaphorePermit;

use crate::client::Client;
use crate::error::ClientError;
use crate::retry::{is_retryable_status, is_unprocessed_status, retry_after};
use crate::transport::{Payload, SendError, redact};

/// The attempts of one call: its retry budget and its body.
#[derive(Debug)]
pub(crate) struct Attempts {
    retrier: Retrier,
    idempotent: bool,
    /// The body of the next attempt; `None` once a stream was sent.
    body: Option<Payload>,
    /// Whether a retryable status was given up on with the budget spent.
    spent: bool,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Payload::Empty => "Empty",
            Payload::Bytes(_) => "Bytes",
            Payload::Stream(_) => "Stream",
        })
    }
}

impl Attempts {
    /// The first attempt of a call.
    pub(crate) fn new(config: &RetryConfig, body: Payload, idempotent: bool) -> Attempts {
        Attempts {
            retrier: Retrier::new(config),
            idempotent,
            body: Some(body),
            spent: false,
        }
    }

    /// Whether the body can be sent again.
    pub(crate) fn can_repeat(&self) -> bool {
        self.body.is_some()
    }

    /// The next attempt goes to a redirect's URL, without a body.
    pub(crate) fn redirected(&mut self) {
        self.body = Some(Payload::Empty);
    }

    /// Whether the budget was spent on a transient status.
    pub(crate) fn spent(&self) -> bool {
        self.spent
    }

    /// The body of this attempt, keeping a copy for the next if it can be
    /// replayed.
    fn payload(&mut self) -> Payload {
        let payload = self.body.take().unwrap_or(Payload::Empty);
        self.body = payload.replay();
        payload
    }

    /// After a transport failure: the wait before another attempt, or the
    /// error to hand on.
    fn after_failure(&mut self, failure: SendError) -> Result<Duration> {
        let may = self.can_repeat() && (failure.connect || self.idempotent);
        if !may {
            return Err(failure.error);
        }
        match self.retrier.delay_after(&failure.error, None) {
            Some(delay) => {
                tracing::warn!(error = %failure.error, ?delay, "request failed; retrying");
                Ok(delay)
            }
            None => Err(self.retrier.give_up(failure.error)),
        }
    }

    /// After a response: the wait before another attempt when its status is
    /// a transient failure worth another, or `None` to take it as it is.
    pub(crate) fn after_status(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        let may = is_retryable_status(status)
            && self.can_repeat()
            && (self.idempotent || is_unprocessed_status(status));
        if !may {
            return None;
        }
        let delay = self.retrier.next_delay(retry_after(headers));
        self.spent = delay.is_none();
        delay
    }
}

impl Client {
    /// Sends one attempt of a call: a response and the concurrency slot it
    /// holds, or `None` after waiting out a transient failure (try again).
    pub(crate) async fn send_attempt(
        &self,
        method: &Method,
        url: &Uri,
        headers: HeaderMap,
        attempts: &mut Attempts,
    ) -> Result<Option<(http::Response<Incoming>, OwnedSemaphorePermit)>> {
        let payload = attempts.payload();
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Closed("client closed".into()))?;
        tracing::debug!(%method, url = %redact(url), "request");
        let sent = self
            .inner
            .transport
            .send(method.clone(), url.clone(), headers, payload)
            .await;
        match sent {
            Ok(res) => Ok(Some((res, permit))),
            Err(failure) => {
                drop(permit);
                let delay = attempts.after_failure(failure)?;
                tokio::time::sleep(delay).await;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{NetworkFailure, network_error};
    use futures::StreamExt;

    fn fast(max_retries: u32) -> RetryConfig {
        RetryConfig {
            max_retries,
            initial_backoff: Duration::ZERO,
            ..RetryConfig::default()
        }
    }

    fn failure(connect: bool, kind: NetworkFailure) -> SendError {
        SendError {
            connect,
            error: network_error(kind, format!("{kind:?}")),
        }
    }

    #[test]
    fn transport_failures_are_retried_within_one_budget_then_marked() {
        let mut a = Attempts::new(&fast(2), Payload::Empty, true);
        assert!(
            a.after_failure(failure(false, NetworkFailure::Connection))
                .is_ok()
        );
        assert!(
            a.after_failure(failure(true, NetworkFailure::Connect))
                .is_ok()
        );
        let err = a
            .after_failure(failure(true, NetworkFailure::Connect))
            .unwrap_err();
        assert!(err.is_transient() && err.is_retried(), "{err}");
    }

    #[test]
    fn what_cannot_be_repeated_is_handed_on_unmarked() {
        // A POST whose connection broke after it was sent.
        let mut post = Attempts::new(&fast(4), Payload::Empty, false);
        let err = post
            .after_failure(failure(false, NetworkFailure::Connection))
            .unwrap_err();
        assert!(err.is_transient() && !err.is_retried());
        // A POST whose connection was never made is sent again.
        assert!(
            post.after_failure(failure(true, NetworkFailure::Connect))
                .is_ok()
        );
        // A streamed body went with the first attempt.
        let stream = futures::stream::empty().boxed();
        let mut streamed = Attempts::new(&fast(4), Payload::Stream(stream), true);
        let _first = streamed.payload();
        let err = streamed
            .after_failure(failure(true, NetworkFailure::Connect))
            .unwrap_err();
        assert!(!err.is_retried());
        // TLS refusing the certificate is final.
        let mut get = Attempts::new(&fast(4), Payload::Empty, true);
        let err = get
            .after_failure(failure(true, NetworkFailure::Tls))
            .unwrap_err();
        assert!(!err.is_transient() && !err.is_retried());
    }

    #[test]
    fn statuses_are_retried_when_the_request_may_be_repeated() {
        let none = HeaderMap::new();
        let mut get = Attempts::new(&fast(1), Payload::Empty, true);
        assert!(get.after_status(StatusCode::BAD_GATEWAY, &none).is_some());
        assert!(get.after_status(StatusCode::BAD_GATEWAY, &none).is_none());
        assert!(get.spent(), "the budget went on the status");
        let mut patch = Attempts::new(&fast(1), Payload::Empty, false);
        assert!(patch.after_status(StatusCode::BAD_GATEWAY, &none).is_none());
        assert!(!patch.spent(), "a PATCH's 502 is left to the caller");
        assert!(
            patch
                .after_status(StatusCode::SERVICE_UNAVAILABLE, &none)
                .is_some()
        );
        let mut fresh = Attempts::new(&fast(1), Payload::Empty, true);
        for status in [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert!(fresh.after_status(status, &none).is_none(), "{status}");
        }
    }
}
