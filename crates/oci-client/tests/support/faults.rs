//! A fault-injecting reverse proxy on loopback: it forwards every request
//! to a real registry and, as a schedule decides, answers 429 or 503
//! itself or cuts the registry's answer off halfway through its body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::http::{Body, handler, respond, serve};

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and its answer untouched.
    Pass,
    /// Answer 429 with `Retry-After: 1` without forwarding.
    TooMany,
    /// Answer 503 without forwarding.
    Unavailable,
    /// Forward it, send the answer's head and half its body, then drop
    /// the connection.
    CutBody,
}

/// How many faults of each kind were injected.
#[derive(Debug, Default)]
pub struct Injected {
    /// Requests seen.
    pub requests: AtomicU64,
    /// 429 answers.
    pub too_many: AtomicU64,
    /// 503 answers.
    pub unavailable: AtomicU64,
    /// Bodies cut off.
    pub cut: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it has done so far.
    pub injected: Arc<Injected>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`host:port`, plain http); `schedule` gets the
    /// request's number (from 0), method and path.
    pub async fn start<F>(upstream: &str, schedule: F) -> FaultProxy
    where
        F: Fn(u64, &str, &str) -> Fault + Send + Sync + 'static,
    {
        let injected = Arc::new(Injected::default());
        let counters = injected.clone();
        let schedule = Arc::new(schedule);
        let upstream = upstream.to_owned();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let addr = serve(handler(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let (counters, schedule, client) =
                    (counters.clone(), schedule.clone(), client.clone());
                let upstream = upstream.clone();
                async move {
                    let n = counters.requests.fetch_add(1, Ordering::SeqCst);
                    let fault = schedule(n, req.method().as_str(), req.uri().path());
                    match fault {
                        Fault::TooMany => {
                            counters.too_many.fetch_add(1, Ordering::SeqCst);
                            return respond(429, &[("retry-after", "1")], "slow down");
                        }
                        Fault::Unavailable => {
                            counters.unavailable.fetch_add(1, Ordering::SeqCst);
                            return respond(503, &[], "");
                        }
                        Fault::Pass | Fault::CutBody => {}
                    }
                    let (mut parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let path = parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    parts.uri = format!("http://{upstream}{path}").parse().unwrap();
                    let forwarded = hyper::Request::from_parts(parts, Full::new(body));
                    let answer = match client.request(forwarded).await {
                        Ok(answer) => answer,
                        Err(e) => return respond(502, &[], format!("upstream: {e}")),
                    };
                    let (parts, body) = answer.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let body: Body = if fault == Fault::CutBody && body.len() > 1 {
                        counters.cut.fetch_add(1, Ordering::SeqCst);
                        let half = body.slice(..body.len() / 2);
                        let frames = futures::stream::iter([
                            Ok(Frame::data(half)),
                            Err(oci_core::Error::internal(
                                "connection cut by the fault proxy",
                            )),
                        ]);
                        StreamBody::new(frames.boxed()).boxed_unsync()
                    } else {
                        Full::new(body)
                            .map_err(|never| match never {})
                            .boxed_unsync()
                    };
                    Response::from_parts(parts, body)
                }
            },
        ))
        .await;
        FaultProxy { addr, injected }
    }

    /// `127.0.0.1:<port>`, to give the client as the registry host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// A counter's current value.
    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}
