//! A raw HTTP/1 test client: sends one request exactly as built, collects
//! the whole response, and offers assertions on status, headers and the
//! spec's error bodies. The conformance suite and the server's API tests
//! both send through it.
//!
//! Tests move small bodies only, so responses are collected into memory;
//! this is test tooling, not a transfer path.
//!
//! ```no_run
//! use oci_testbed::raw_http::{RawClient, full};
//!
//! # async fn demo() -> Result<(), String> {
//! let client = RawClient::new();
//! let req = http::Request::get("http://127.0.0.1:5000/v2/")
//!     .body(full(bytes::Bytes::new()))
//!     .map_err(|e| e.to_string())?;
//! let resp = client.send(req).await?;
//! resp.expect_status(200);
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oci_core::{ErrorBody, ErrorCode};

/// A request body: whole bytes ([`full`]) or any stream of frames.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body of `bytes`, whose length is known.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A plain-HTTP client over keep-alive connections that sends requests as
/// built: no redirects, retries or added headers.
#[derive(Clone)]
pub struct RawClient {
    http: Client<HttpConnector, Body>,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient").finish_non_exhaustive()
    }
}

impl Default for RawClient {
    fn default() -> RawClient {
        RawClient::new()
    }
}

impl RawClient {
    /// A client with no connections yet.
    pub fn new() -> RawClient {
        RawClient {
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends `req` and collects the response. A failure before the
    /// response's head is the error; a body that breaks off is kept in
    /// [`Response::body_error`] (the body is then empty).
    pub async fn send(&self, req: Request<Body>) -> Result<Response, String> {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| format!("{what}: request failed: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let (body, body_error) = match resp.into_body().collect().await {
            Ok(collected) => (collected.to_bytes(), None),
            Err(e) => (Bytes::new(), Some(e.to_string())),
        };
        Ok(Response {
            what,
            status,
            headers,
            body,
            body_error,
        })
    }
}

/// The error codes of the distribution spec's table.
pub const SPEC_ERROR_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// A collected response, with the request it answers kept for messages.
#[derive(Debug)]
pub struct Response {
    /// `METHOD URL` of the request.
    pub what: String,
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// Why reading the body failed, if it did (the body is then empty).
    pub body_error: Option<String>,
}

impl Response {
    /// A header's value as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header's value; panics if it is missing.
    pub fn require_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("{}: response lacks the {name} header", self.what))
    }

    /// The `Location` header, which must be present.
    pub fn location(&self) -> &str {
        self.require_header("location")
    }

    /// The body as text for messages (lossy, shortened).
    pub fn body_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(400).collect()
    }

    /// The body as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}): {:?}",
                self.what,
                self.body_text()
            )
        })
    }

    /// Asserts the status code and that the body was read whole.
    pub fn expect_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.body_error, None,
            "{}: the response body could not be read",
            self.what
        );
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{}: expected status {expected}, got {} with body {:?}",
            self.what,
            self.status,
            self.body_text()
        );
        self
    }

    /// Asserts a header's exact value.
    pub fn expect_header(&self, name: &str, expected: &str) -> &Self {
        assert_eq!(
            self.header(name),
            Some(expected),
            "{}: header {name}",
            self.what
        );
        self
    }

    /// Asserts the body is the spec's error JSON, strictly:
    /// `{"errors":[{"code":C,"message":M,…},…]}` with at least one entry,
    /// every `code` one of the spec's codes (or `RANGE_INVALID` on a 416,
    /// as distribution answers) and every `message` a string.
    pub fn expect_spec_error_body(&self) -> &Self {
        let body = self.json();
        let entries = body["errors"].as_array().unwrap_or_else(|| {
            panic!(
                "{}: error body has no errors array: {:?}",
                self.what,
                self.body_text()
            )
        });
        assert!(
            !entries.is_empty(),
            "{}: error body with no errors",
            self.what
        );
        for entry in entries {
            let code = entry["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: error entry without a code: {entry}", self.what));
            let known = SPEC_ERROR_CODES.contains(&code)
                || (code == "RANGE_INVALID" && self.status.as_u16() == 416);
            assert!(
                known,
                "{}: error code {code:?} is not one of the spec's",
                self.what
            );
            assert!(
                entry["message"].is_string(),
                "{}: error entry without a message string: {entry}",
                self.what
            );
        }
        self
    }

    /// Asserts the status and that the body is the spec's error JSON whose
    /// first (or any) entry carries `code`.
    pub fn expect_error(&self, status: u16, code: ErrorCode) -> &Self {
        self.expect_status(status);
        self.expect_spec_error_body();
        let body: ErrorBody = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: error body is not the spec's JSON ({e}): {:?}",
                self.what,
                self.body_text()
            )
        });
        assert!(
            body.errors.iter().any(|entry| entry.code == code),
            "{}: expected error code {code}, got {:?}",
            self.what,
            body.errors
        );
        self
    }

    /// Asserts a strict spec error response: `status`, a JSON content
    /// type, and a body `{"errors":[{"code":…,"message":…}]}` with exactly
    /// one entry, of `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "{}: status; body {:?}",
            self.what, self.body
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json = self.json();
        let errors = json["errors"].as_array().expect("an errors array");
        assert_eq!(errors.len(), 1, "{json}");
        assert_eq!(errors[0]["code"], code, "{json}");
        assert!(errors[0]["message"].is_string(), "{json}");
    }
}
