//! Responses: the success builder every handler uses, and errors written as
//! the spec's JSON body with the status from the core error table.

use http::header::{CONTENT_TYPE, HeaderValue, IntoHeaderName, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use oci_core::{Error, ErrorBody};

use crate::body::{self, ResponseBody};

/// A response as handlers return it.
pub(crate) type HttpResponse = Response<ResponseBody>;

/// What a handler answers: a response, or an error response.
pub(crate) type Answer = std::result::Result<HttpResponse, Failure>;

/// An error on its way out, with any headers that must go with it (e.g. an
/// upload's `Range` on a 416).
/// Boxed, so that handler results stay small.
#[derive(Debug)]
pub(crate) struct Failure(Box<FailureParts>);

#[derive(Debug)]
struct FailureParts {
    error: Error,
    headers: HeaderMap,
}

impl Failure {
    /// The error; its status and code decide the response.
    pub(crate) fn error(&self) -> &Error {
        &self.0.error
    }

    /// The same failure with a header added.
    pub(crate) fn with_header(mut self, name: impl IntoHeaderName, value: &str) -> Failure {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.headers.insert(name, value);
        }
        self
    }

    /// The HTTP response: the JSON error body, or no body for a HEAD request.
    pub(crate) fn into_response(self, head: bool) -> HttpResponse {
        let FailureParts { error, headers } = *self.0;
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if head {
            Response::new(body::empty())
        } else {
            let json = ErrorBody::from_error(&error).to_json();
            let mut r = Response::new(body::full(json));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        };
        *response.status_mut() = status;
        if let Some(wait) = error.retry_after()
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response.headers_mut().extend(headers);
        response
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure(Box::new(FailureParts {
            error,
            headers: HeaderMap::new(),
        }))
    }
}

/// Builds a successful response header by header. Header values come from
/// validated types (digests, names, numbers); one that is not a valid
/// header value is skipped and logged rather than failing the request.
pub(crate) struct Reply {
    response: HttpResponse,
}

impl Reply {
    /// A reply with a status and an empty body.
    pub(crate) fn new(status: StatusCode) -> Reply {
        let mut response = Response::new(body::empty());
        *response.status_mut() = status;
        Reply { response }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: impl IntoHeaderName, value: &str) -> Reply {
        match HeaderValue::from_str(value) {
            Ok(v) => {
                self.response.headers_mut().append(name, v);
            }
            Err(_) => tracing::warn!(value, "skipping an invalid header value"),
        }
        self
    }

    /// Adds a `Content-Length` header (for HEAD answers and streamed bodies).
    pub(crate) fn content_length(self, length: u64) -> Reply {
        self.header(http::header::CONTENT_LENGTH, &length.to_string())
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: ResponseBody) -> Reply {
        *self.response.body_mut() = body;
        self
    }

    /// The finished response.
    pub(crate) fn done(self) -> Answer {
        Ok(self.response)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use oci_core::ErrorCode;

    #[test]
    fn a_wait_the_error_carries_is_written_as_retry_after() {
        let limited = Error::new(ErrorCode::TooManyRequests, "slow down")
            .with_retry_after(Duration::from_secs(7));
        let response = Failure::from(limited).into_response(false);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "7");

        let plain = Error::new(ErrorCode::TooManyRequests, "slow down");
        let response = Failure::from(plain).into_response(true);
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }
}
