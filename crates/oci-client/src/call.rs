//! [`Call`]: one request to make, as the operations describe it: method,
//! URL, headers, body, the access it needs, and how it may be repeated.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::auth::token::Scope;
use crate::transport::Payload;

/// One request to make: what, where, with which body, needing which access.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Payload,
    pub(crate) scope: Scope,
    pub(crate) follow_redirects: bool,
    pub(crate) idempotent: bool,
}

impl Call {
    /// A request without body.
    pub(crate) fn new(method: Method, url: Uri, scope: Scope) -> Call {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Call {
            method,
            url,
            headers: HeaderMap::new(),
            body: Payload::Empty,
            scope,
            follow_redirects: false,
            idempotent,
        }
    }

    /// Adds a header (values built by this crate are always valid).
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Call {
        match HeaderValue::from_str(value) {
            Ok(v) => {
                self.headers.append(name, v);
            }
            Err(_) => tracing::warn!(%name, value, "dropping an invalid header value"),
        }
        self
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: Payload) -> Call {
        if let Some(len) = body.len() {
            self = self.header(http::header::CONTENT_LENGTH, &len.to_string());
        }
        self.body = body;
        self
    }

    /// Follows redirects (blob reads only).
    pub(crate) fn follow_redirects(mut self) -> Call {
        self.follow_redirects = true;
        self
    }
}
