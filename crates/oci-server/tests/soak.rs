//! Soak: 500 connections reading a blob very slowly and 1,000 idle ones
//! held open while a normal client pushes and pulls. Every request of the
//! normal client must succeed; its latencies are printed, not asserted (the
//! machine is shared). Loopback only, bounded in count, stops by itself.
//! Alone in its test binary: it raises the open-file limit it needs.

#![allow(clippy::unwrap_used)]
// Raising RLIMIT_NOFILE goes through libc.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oci_core::registry::bytes_stream;
use oci_core::{Digest, Registry, RepoName, media};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SLOW_READERS: usize = 500;
const IDLE: usize = 1_000;
/// Rounds of the normal client's push-and-pull workflow.
const ROUNDS: usize = 200;
/// The blob the slow readers download.
const SLOW_BLOB: usize = 256 * 1024;

/// Raises the soft open-file limit to `wanted` (or the hard limit); the
/// limit now in force.
fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain struct
    // passed by pointer, which lives for the whole call.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// A connection that asks for the blob and then reads it a little at a
/// time, with a small receive window, until told to stop.
async fn slow_reader(addr: SocketAddr, path: String, stop: Arc<AtomicBool>, read: Arc<AtomicU64>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: r\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read.fetch_add(n as u64, Ordering::Relaxed),
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A connection that does nothing (or one request, then nothing).
async fn idle(addr: SocketAddr, ask_once: bool) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    if ask_once {
        tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    tcp
}

/// The normal client: each request timed, each answer checked.
struct Normal {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    latencies: Vec<(&'static str, Duration)>,
}

impl Normal {
    async fn send(
        &mut self,
        what: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        expect: u16,
    ) -> http::Response<Bytes> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let started = Instant::now();
        let resp = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        self.latencies.push((what, started.elapsed()));
        assert_eq!(parts.status.as_u16(), expect, "{what} {path}: {body:?}");
        http::Response::from_parts(parts, body)
    }

    /// Pushes a blob in two chunks and an image naming it, then pulls both.
    async fn round(&mut self, round: usize) {
        let repo = format!("soak/app{}", round % 4);
        let layer = Bytes::from(format!("layer {round} ").repeat(4096));
        let digest = Digest::sha256(&layer);
        let started = self
            .send(
                "POST upload",
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
                202,
            )
            .await;
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let half = layer.len() / 2;
        let patched = self
            .send(
                "PATCH chunk",
                Method::PATCH,
                &location,
                &[("content-type", "application/octet-stream")],
                layer.slice(..half),
                202,
            )
            .await;
        let location = patched.headers()["location"].to_str().unwrap().to_owned();
        self.send(
            "PUT commit",
            Method::PUT,
            &format!("{location}?digest={digest}"),
            &[("content-type", "application/octet-stream")],
            layer.slice(half..),
            201,
        )
        .await;
        let config = Bytes::from(format!("{{\"round\":{round}}}"));
        let config_digest = Digest::sha256(&config);
        self.send(
            "POST monolithic",
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={config_digest}"),
            &[("content-type", "application/octet-stream")],
            config.clone(),
            201,
        )
        .await;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{digest}","size":{}}}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            config.len(),
            media::OCI_LAYER_GZIP,
            layer.len()
        );
        let tag = format!("r{round}");
        self.send(
            "PUT manifest",
            Method::PUT,
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("content-type", media::OCI_MANIFEST)],
            Bytes::from(manifest.clone()),
            201,
        )
        .await;
        let got = self
            .send(
                "GET manifest",
                Method::GET,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("accept", media::OCI_MANIFEST)],
                Bytes::new(),
                200,
            )
            .await;
        assert_eq!(got.body(), manifest.as_bytes());
        self.send(
            "HEAD blob",
            Method::HEAD,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            Bytes::new(),
            200,
        )
        .await;
        let got = self
            .send(
                "GET blob",
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
                200,
            )
            .await;
        assert_eq!(got.body(), &layer);
        self.send(
            "GET tags",
            Method::GET,
            &format!("/v2/{repo}/tags/list"),
            &[],
            Bytes::new(),
            200,
        )
        .await;
    }

    /// Prints the latency figures of each kind of request and of all.
    fn report(&self) {
        let mut kinds: Vec<&str> = self.latencies.iter().map(|(k, _)| *k).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let line = |name: &str, mut times: Vec<Duration>| {
            times.sort_unstable();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "{name:>16}: n={:<4} p50={:>7.2?} p99={:>7.2?} max={:>7.2?}",
                times.len(),
                at(0.5),
                at(0.99),
                times[times.len() - 1]
            );
        };
        for kind in kinds {
            let times = self
                .latencies
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, t)| *t)
                .collect();
            line(kind, times);
        }
        line("all", self.latencies.iter().map(|(_, t)| *t).collect());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_client_is_served_beside_slow_readers_and_idle_connections() {
    // Each loopback connection is two descriptors in this one process.
    let wanted = 2 * (SLOW_READERS + IDLE) as u64 + 512;
    let limit = raise_open_files(wanted);
    assert!(
        limit >= wanted,
        "this test needs {wanted} open files; the hard limit is {limit}"
    );

    let registry = Arc::new(MemRegistry::new());
    let server = TestServer::start(registry.clone()).await;
    let addr = server.addr();
    let repo: RepoName = "soak/big".parse().unwrap();
    let blob = Bytes::from(vec![7u8; SLOW_BLOB]);
    let digest = Digest::sha256(&blob);
    registry
        .push_blob(&repo, &digest, None, bytes_stream(blob, 65536))
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let mut slow = Vec::new();
    for _ in 0..SLOW_READERS {
        let path = format!("/v2/{repo}/blobs/{digest}");
        slow.push(tokio::spawn(slow_reader(
            addr,
            path,
            stop.clone(),
            read.clone(),
        )));
    }
    let mut idle_connections = Vec::new();
    for i in 0..IDLE {
        idle_connections.push(idle(addr, i % 2 == 0).await);
    }

    let mut normal = Normal {
        base: server.url(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        latencies: Vec::new(),
    };
    let started = Instant::now();
    for round in 0..ROUNDS {
        normal.round(round).await;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    println!(
        "{SLOW_READERS} slow readers ({} KiB read in all), {IDLE} idle connections; {} normal requests in {took:.2?}, all answered as expected:",
        read.load(Ordering::Relaxed) / 1024,
        normal.latencies.len()
    );
    normal.report();
    assert_eq!(normal.latencies.len(), ROUNDS * 9);
    drop(idle_connections);
    for task in slow {
        task.await.unwrap();
    }
}
