//! A scripted registry: a closure answers each request, and every
//! request is recorded for the test to inspect afterwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;

use super::http::{Body, handler, serve};

/// One request as the scripted registry saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query.
    pub query: String,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Seen {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running scripted registry.
pub struct Script {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    /// Starts a registry answering with `answer`.
    pub async fn start<F>(answer: F) -> Script
    where
        F: Fn(&Seen) -> Response<Body> + Send + Sync + 'static,
    {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let answer = Arc::new(answer);
        let addr = serve(handler(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let (log, answer) = (log.clone(), answer.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let seen = Seen {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().unwrap_or("").to_owned(),
                        headers: parts.headers,
                        body,
                    };
                    log.lock().unwrap().push(seen.clone());
                    answer(&seen)
                }
            },
        ))
        .await;
        Script { addr, seen }
    }

    /// `host:port`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A body that sends `data` and then breaks the connection (after a
/// pause, so that the headers and data go out first).
pub fn broken_body(data: Bytes) -> Body {
    let first = futures::stream::iter([Ok::<_, oci_core::Error>(Frame::data(data))]);
    let then = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err(oci_core::Error::internal("connection dropped on purpose"))
    });
    StreamBody::new(first.chain(then).boxed()).boxed_unsync()
}

/// A body that sends `data` and then never sends anything again.
pub fn stalled_body(data: Bytes) -> Body {
    let first = futures::stream::iter([Ok::<_, oci_core::Error>(Frame::data(data))]);
    StreamBody::new(first.chain(futures::stream::pending()).boxed()).boxed_unsync()
}
