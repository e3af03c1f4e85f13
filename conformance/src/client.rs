//! A tiny raw HTTP/1 client for the checks: builds one request, collects the
//! whole response, and offers assertions on status, headers and error bodies.
//!
//! The checks move small bodies only (kilobytes), so responses are collected
//! into memory here; this is test tooling, not a transfer path.
//!
//! A client follows URLs in one of two [`UrlMode`]s: as sent, or the way Go
//! clients (resty, used by the official conformance suite) do, with the path
//! percent-decoded before the request goes out. A registry whose upload
//! `Location` only works as sent fails every upload flow in the second mode.

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{Method, Request};
use oci_testbed::raw_http::{RawClient, full};
pub use oci_testbed::raw_http::{Response, SPEC_ERROR_CODES};

/// How a client treats the path of a URL it is given (a `Location` it
/// follows, or a path it built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlMode {
    /// Percent-decode the path, then escape again only what a path cannot
    /// hold, as Go's `net/url` round trip in resty does: `%2F` becomes `/`,
    /// `%3A` becomes `:`. The suite's own paths carry no escapes, so only
    /// followed `Location`s change. The default: real clients do this.
    #[default]
    Decoding,
    /// Send every URL exactly as given.
    AsSent,
}

impl UrlMode {
    /// The URL this mode sends for `url` (absolute, or a path with a query).
    pub fn apply(self, url: &str) -> String {
        match self {
            UrlMode::AsSent => url.to_owned(),
            UrlMode::Decoding => {
                let (before_path, rest) = match url.find("://") {
                    Some(i) => {
                        let after = &url[i + 3..];
                        let host_end = after.find('/').map_or(url.len(), |j| i + 3 + j);
                        url.split_at(host_end)
                    }
                    None => ("", url),
                };
                let (path, query) = match rest.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (rest, None),
                };
                let mut out = format!("{before_path}{}", decode_path(path));
                if let Some(q) = query {
                    out.push('?');
                    out.push_str(q);
                }
                out
            }
        }
    }
}

/// A path with every `%XX` decoded, then every byte a path may not hold
/// (outside RFC 3986 `pchar` and `/`) escaped again.
fn decode_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                decoded.push(b);
                i += 3;
            }
            (b, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for b in decoded {
        let plain = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client bound to one registry root URL, with optional basic auth.
#[derive(Clone)]
pub struct Client {
    root: String,
    auth: Option<HeaderValue>,
    mode: UrlMode,
    http: RawClient,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("root", &self.root)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Client {
    /// A client for the registry at `root` (e.g. `http://127.0.0.1:5000`),
    /// in the default [`UrlMode`].
    pub fn new(root: &str) -> Client {
        Client {
            root: root.trim_end_matches('/').to_owned(),
            auth: None,
            mode: UrlMode::default(),
            http: RawClient::new(),
        }
    }

    /// The same client treating URLs in `mode`.
    pub fn with_mode(mut self, mode: UrlMode) -> Client {
        self.mode = mode;
        self
    }

    /// A client with the same root, credentials and URL mode but none of
    /// this one's connections, as another program would be.
    pub fn fresh(&self) -> Client {
        Client {
            http: RawClient::new(),
            root: self.root.clone(),
            auth: self.auth.clone(),
            mode: self.mode,
        }
    }

    /// How this client treats the URLs it follows.
    pub fn mode(&self) -> UrlMode {
        self.mode
    }

    /// The same client sending `Authorization: Basic …` on every request.
    pub fn with_basic_auth(mut self, username: &str, password: &str) -> Client {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.auth = HeaderValue::from_str(&format!("Basic {token}")).ok();
        self
    }

    /// The registry root URL, without a trailing slash.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Starts a request; `target` is a path (`/v2/…`) or an absolute URL,
    /// as a `Location` header may be either. The client's [`UrlMode`]
    /// decides what is sent.
    pub fn request(&self, method: Method, target: &str) -> RequestBuilder<'_> {
        let target = self.mode.apply(target);
        let url = if target.starts_with("http://") || target.starts_with("https://") {
            target
        } else {
            format!("{}{}", self.root, target)
        };
        RequestBuilder {
            client: self,
            method,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A GET request.
    pub fn get(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, target)
    }

    /// A HEAD request.
    pub fn head(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::HEAD, target)
    }

    /// A POST request.
    pub fn post(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, target)
    }

    /// A PUT request.
    pub fn put(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, target)
    }

    /// A PATCH request.
    pub fn patch(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, target)
    }

    /// A DELETE request.
    pub fn delete(&self, target: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, target)
    }
}

/// Appends `query` (already encoded) to a URL that may carry a query.
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// One request being built.
pub struct RequestBuilder<'a> {
    client: &'a Client,
    method: Method,
    url: String,
    headers: Vec<(HeaderName, String)>,
    body: Bytes,
}

impl RequestBuilder<'_> {
    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body (and its `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and collects the response; panics on a transport
    /// failure, naming the request.
    pub async fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.url);
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(&self.url);
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some(auth) = &self.client.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let has_body = !self.body.is_empty()
            || matches!(self.method, Method::PUT | Method::POST | Method::PATCH);
        if has_body {
            req = req.header(http::header::CONTENT_LENGTH, self.body.len());
        }
        let req = req
            .body(full(self.body))
            .unwrap_or_else(|e| panic!("{what}: cannot build the request: {e}"));
        let resp = self
            .client
            .http
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tracing::debug!(request = %what, status = resp.status.as_u16(), "response");
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_mode_decodes_paths_only() {
        let loc = "/v2/a/blobs/uploads/http%3A%2F%2Fh%3A1%2Fx%20y?_state=a%2Fb";
        assert_eq!(UrlMode::AsSent.apply(loc), loc);
        assert_eq!(
            UrlMode::Decoding.apply(loc),
            "/v2/a/blobs/uploads/http://h:1/x%20y?_state=a%2Fb"
        );
        assert_eq!(
            UrlMode::Decoding.apply("http://127.0.0.1:5/v2/a/blobs/uploads/a%2Fb"),
            "http://127.0.0.1:5/v2/a/blobs/uploads/a/b"
        );
        assert_eq!(
            UrlMode::Decoding.apply("/v2/a/blobs/uploads/abc-_.~09"),
            "/v2/a/blobs/uploads/abc-_.~09"
        );
    }
}
