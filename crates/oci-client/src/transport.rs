//! One HTTP exchange: request bodies, hyper's pooled client with our
//! connector, and reading responses (bounded bodies, streams, errors).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use oci_core::{BlobStream, Error, ErrorCode, Result};
use tokio::sync::OwnedSemaphorePermit;

use crate::connector::Connector;
use crate::error::ClientError;

/// The body type hyper sends.
pub(crate) type HyperBody = UnsyncBoxBody<Bytes, Error>;

/// A request body: nothing, bytes that can be sent again, or a stream
/// that can be sent once.
pub(crate) enum Payload {
    /// No body.
    Empty,
    /// Bytes in memory (replayable).
    Bytes(Bytes),
    /// A stream (sent at most once).
    Stream(BlobStream),
}

impl Payload {
    /// A copy for another attempt, if the body can be replayed.
    pub(crate) fn replay(&self) -> Option<Payload> {
        match self {
            Payload::Empty => Some(Payload::Empty),
            Payload::Bytes(b) => Some(Payload::Bytes(b.clone())),
            Payload::Stream(_) => None,
        }
    }

    /// The body's length, when known without reading it.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Payload::Empty => Some(0),
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Stream(_) => None,
        }
    }

    fn into_body(self) -> HyperBody {
        match self {
            Payload::Empty => Empty::new().map_err(|never| match never {}).boxed_unsync(),
            Payload::Bytes(b) => Full::new(b).map_err(|never| match never {}).boxed_unsync(),
            Payload::Stream(s) => StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync(),
        }
    }
}

/// hyper's client over our connector, with the response-header timeout.
#[derive(Clone)]
pub(crate) struct Transport {
    http: HyperClient<Connector, HyperBody>,
    pub(crate) connector: Connector,
    timeout: Option<Duration>,
}

/// How a request failed before a response arrived.
#[derive(Debug)]
pub(crate) struct SendError {
    /// Whether the connection was never made (the request was not sent).
    pub(crate) connect: bool,
    /// The error, coded `UNKNOWN`; not transient when trying again cannot
    /// help (TLS refused the certificate or the protocol).
    pub(crate) error: Error,
}

impl Transport {
    /// A transport over `connector`.
    pub(crate) fn new(connector: Connector, timeout: Option<Duration>) -> Transport {
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector.clone());
        Transport {
            http,
            connector,
            timeout,
        }
    }

    /// Sends one request and waits for the response headers.
    pub(crate) async fn send(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Payload,
    ) -> Result<http::Response<Incoming>, SendError> {
        let mut req = http::Request::new(body.into_body());
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers;
        if uri.scheme_str() == Some("http")
            && let Some(proxy) = self.connector.proxy_for(&uri)
            && let Some(auth) = proxy.basic_auth()
        {
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        let fut = self.http.request(req);
        let res = match self.timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(SendError {
                        connect: false,
                        error: network_error(
                            NetworkFailure::Timeout,
                            format!(
                                "{method} {} timed out after {t:?} waiting for a response",
                                redact(&uri)
                            ),
                        ),
                    });
                }
            },
            None => fut.await,
        };
        res.map_err(|e| {
            let mut msg = format!("{method} {}: {e}", redact(&uri));
            let mut permanent = false;
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                permanent |= is_tls_failure(s);
                source = s.source();
            }
            let kind = if permanent {
                NetworkFailure::Tls
            } else if e.is_connect() {
                NetworkFailure::Connect
            } else {
                NetworkFailure::Connection
            };
            SendError {
                connect: e.is_connect(),
                error: ClientError::Transport {
                    kind,
                    message: msg,
                    source: Some(Box::new(e)),
                }
                .into(),
            }
        })
    }
}

/// How a request failed on the network, before or while a response came:
/// kept in the error's detail (`{"network": "tls"}`), so a caller can tell
/// a network failure from a registry's answer without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// TLS refused the connection (certificate, protocol).
    Tls,
    /// The connection broke or stalled while talking.
    Connection,
    /// No response within the request timeout.
    Timeout,
}

impl NetworkFailure {
    /// The detail value.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkFailure::Connect => "connect",
            NetworkFailure::Tls => "tls",
            NetworkFailure::Connection => "connection",
            NetworkFailure::Timeout => "timeout",
        }
    }

    /// The network failure an error records, if it is one.
    pub fn of(e: &Error) -> Option<NetworkFailure> {
        let v = e.detail()?.get("network")?.as_str()?;
        [
            NetworkFailure::Connect,
            NetworkFailure::Tls,
            NetworkFailure::Connection,
            NetworkFailure::Timeout,
        ]
        .into_iter()
        .find(|k| k.as_str() == v)
    }
}

/// An `UNKNOWN` error recording a network failure (transient, unless TLS
/// refused the connection).
pub(crate) fn network_error(kind: NetworkFailure, message: String) -> Error {
    ClientError::network(kind, message).into()
}

/// Whether an error in a failure's chain is rustls refusing the
/// connection (io::Error hides its inner error from `source()`).
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<rustls::Error>()
        || e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// The URI without its query (which may carry tokens or upload state).
pub(crate) fn redact(uri: &Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or(""),
        uri.path()
    )
}

/// A response: status, headers, the final URL, and the body (which holds
/// a concurrency slot until it is read or dropped).
pub(crate) struct Response {
    /// The status.
    pub(crate) status: StatusCode,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The URL that answered (after redirects).
    pub(crate) url: Uri,
    body: Incoming,
    permit: Option<OwnedSemaphorePermit>,
    read_timeout: Option<Duration>,
    /// Whether the client gave up retrying this answer's status.
    retried: bool,
}

impl Response {
    /// Wraps a hyper response.
    pub(crate) fn new(
        res: http::Response<Incoming>,
        url: Uri,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Response {
        let (parts, body) = res.into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            url,
            body,
            permit,
            read_timeout: None,
            retried: false,
        }
    }

    /// A header as a string, if present and valid.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Content-Length`, if present.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// Reads the whole body, failing with `SIZE_INVALID` past `limit` bytes.
    pub(crate) async fn bytes_limited(self, limit: usize) -> Result<Bytes> {
        if let Some(len) = self.content_length()
            && len > limit as u64
        {
            return Err(too_large(len, limit));
        }
        let mut body = self.body;
        let mut out = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport {
                kind: NetworkFailure::Connection,
                message: format!("reading response: {e}"),
                source: Some(Box::new(e)),
            })?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(too_large((out.len() + data.len()) as u64, limit));
                }
                out.extend_from_slice(&data);
            }
        }
        drop(self.permit);
        Ok(out.freeze())
    }

    /// Marks the answer as one the client retried until its budget was
    /// spent (its error then says so, see [`oci_core::retry`]).
    pub(crate) fn with_retried(mut self, retried: bool) -> Response {
        self.retried = retried;
        self
    }

    /// How long a body read may wait for the next bytes before it fails
    /// (and a blob read resumes).
    pub(crate) fn with_read_timeout(mut self, timeout: Option<Duration>) -> Response {
        self.read_timeout = timeout;
        self
    }

    /// The body as a stream of bytes; the concurrency slot is held until
    /// the stream ends or is dropped. A stall longer than the read timeout
    /// ends the stream with an error.
    pub(crate) fn into_stream(self) -> BlobStream {
        let timeout = self.read_timeout;
        let body = BodyStream::new(self.body);
        stream::unfold(Some((body, self.permit)), move |state| async move {
            let (mut body, permit) = state?;
            loop {
                let next = match timeout {
                    Some(t) => match tokio::time::timeout(t, body.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            let err = network_error(
                                NetworkFailure::Timeout,
                                format!("no data received for {t:?}"),
                            );
                            return Some((Err(err), None));
                        }
                    },
                    None => body.next().await,
                };
                match next {
                    None => return None,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Some((Ok(data), Some((body, permit))));
                        }
                    }
                    Some(Err(e)) => {
                        let err = network_error(
                            NetworkFailure::Connection,
                            format!("connection failed while reading: {e}"),
                        );
                        return Some((Err(err), None));
                    }
                }
            }
        })
        .boxed()
    }

    /// The spec error this (failed) response carries; `not_found` is what
    /// a body-less 404 means for the request at hand.
    pub(crate) async fn into_error(self, not_found: ErrorCode) -> Error {
        let status = self.status.as_u16();
        let retried = self.retried;
        let wait = crate::retry::retry_after(&self.headers);
        let body = self.bytes_limited(64 * 1024).await.unwrap_or_default();
        let err: Error = ClientError::Status {
            status,
            body,
            not_found,
            retried,
        }
        .into();
        match wait {
            Some(wait) => err.with_retry_after(wait),
            None => err,
        }
    }
}

fn too_large(len: u64, limit: usize) -> Error {
    Error::new(
        ErrorCode::SizeInvalid,
        format!("response body of {len} bytes is over the {limit}-byte limit"),
    )
}
