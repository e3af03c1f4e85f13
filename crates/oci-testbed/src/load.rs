//! Hostile and ordinary load for a registry on loopback, shared by the
//! soak tests and `bench/soak.sh` (its `soak-load` binary): connections
//! that download a blob and barely read it, connections that sit idle, a
//! normal client pushing and pulling with every request timed, and
//! uploads fed one byte per connection.
//!
//! Everything speaks plain HTTP/1.1 to any registry (ours or Debian's
//! `docker-registry`), follows `Location`s, absolute or not, and reports
//! failures as values, so a benchmark can count them and a test can
//! assert there are none.
//!
//! ```no_run
//! use oci_testbed::load::Normal;
//!
//! # async fn demo(addr: std::net::SocketAddr) {
//! let mut normal = Normal::new(addr);
//! for round in 0..10 {
//!     normal.round(round).await;
//! }
//! assert!(normal.errors.is_empty(), "{:?}", normal.errors);
//! println!("{}", normal.summary());
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oci_core::{Digest, media};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Raises this process's soft open-file limit towards `wanted` (at most
/// to the hard limit); the limit now in force.
#[allow(unsafe_code)]
pub fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain struct
    // passed by pointer, which lives for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
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

/// The resident set size of process `pid` (this process when `None`),
/// in bytes, from `/proc`.
pub fn rss(pid: Option<u32>) -> std::io::Result<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("no VmRSS line"))
}

/// Connections that ask for a blob and read its answer a little at a
/// time through a small receive window, until stopped.
pub struct SlowReaders {
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SlowReaders {
    /// Starts `count` readers of `path` (e.g. `/v2/a/blobs/sha256:…`).
    pub fn start(addr: SocketAddr, path: &str, count: usize) -> SlowReaders {
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicU64::new(0));
        let tasks = (0..count)
            .map(|_| {
                let (stop, read) = (stop.clone(), read.clone());
                let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                tokio::spawn(async move {
                    let Ok(socket) = TcpSocket::new_v4() else {
                        return;
                    };
                    let _ = socket.set_recv_buffer_size(4096);
                    let Ok(mut tcp) = socket.connect(addr).await else {
                        return;
                    };
                    if tcp.write_all(request.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 512];
                    while !stop.load(Ordering::Relaxed) {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => read.fetch_add(n as u64, Ordering::Relaxed),
                        };
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                })
            })
            .collect();
        SlowReaders { stop, read, tasks }
    }

    /// Bytes read so far by all the readers together.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Stops the readers and waits for them to close their connections.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Opens `count` connections that send nothing, or (every other one) a
/// single `GET /v2/` whose answer they read, then nothing. Connections
/// the server refused are left out.
pub async fn idle_connections(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    for i in 0..count {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            continue;
        };
        if i % 2 == 0 {
            let request = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            let mut buf = [0u8; 12];
            if tcp.write_all(request.as_bytes()).await.is_err()
                || tcp.read_exact(&mut buf).await.is_err()
            {
                continue;
            }
        }
        open.push(tcp);
    }
    open
}

/// Latency figures of a set of requests.
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    /// How many requests.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Latencies {
    /// The figures of `times` (all zero when there are none).
    pub fn of(mut times: Vec<Duration>) -> Latencies {
        times.sort_unstable();
        let at = |q: f64| {
            let last = times.len().saturating_sub(1);
            times
                .get((last as f64 * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        Latencies {
            count: times.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: times.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={:<5} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
            self.count, self.p50, self.p99, self.max
        )
    }
}

/// The path and query of a `Location`, absolute or not.
pub fn location_path(location: &str) -> &str {
    match location.find("://") {
        Some(i) => {
            let rest = &location[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => location,
    }
}

/// `target` with `name=value` added to its query.
pub fn with_query(target: &str, name: &str, value: &str) -> String {
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{name}={value}")
}

/// The normal client: an image workflow over keep-alive connections,
/// each request timed and its answer checked.
pub struct Normal {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Each request made: what it was and how long it took.
    pub latencies: Vec<(&'static str, Duration)>,
    /// Each request that failed or was answered other than expected.
    pub errors: Vec<String>,
}

impl Normal {
    /// A client of the registry at `addr`.
    pub fn new(addr: SocketAddr) -> Normal {
        Normal {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            latencies: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Sends one request, times it, and checks its status.
    async fn send(
        &mut self,
        what: &'static str,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        expect: u16,
    ) -> Result<Response<Bytes>, ()> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, location_path(target)));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            self.errors.push(format!("{what} {target}: {e}"));
        })?;
        let started = Instant::now();
        let answer = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>(Response::from_parts(parts, body))
        }
        .await;
        self.latencies.push((what, started.elapsed()));
        match answer {
            Ok(resp) if resp.status().as_u16() == expect => Ok(resp),
            Ok(resp) => {
                self.errors.push(format!(
                    "{what} {target}: {} {}",
                    resp.status(),
                    String::from_utf8_lossy(resp.body())
                ));
                Err(())
            }
            Err(e) => {
                self.errors.push(format!("{what} {target}: {e}"));
                Err(())
            }
        }
    }

    fn location(&mut self, what: &str, resp: &Response<Bytes>) -> Result<String, ()> {
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(l) => Ok(location_path(l).to_owned()),
            None => {
                self.errors.push(format!("{what}: no Location"));
                Err(())
            }
        }
    }

    /// Pushes `blob` to `repo`: a POST opening an upload, then one PUT
    /// with the whole blob and its digest (what every registry supports);
    /// false (and an error noted) if it was not stored.
    pub async fn push_blob(&mut self, repo: &str, blob: Bytes) -> bool {
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let Ok(started) = self
            .send("POST upload", Method::POST, &uploads, &[], Bytes::new(), 202)
            .await
        else {
            return false;
        };
        let Ok(location) = self.location("POST upload", &started) else {
            return false;
        };
        let target = with_query(&location, "digest", &Digest::sha256(&blob).to_string());
        let octets = [("content-type", "application/octet-stream")];
        self.send("PUT monolithic", Method::PUT, &target, &octets, blob, 201)
            .await
            .is_ok()
    }

    /// One round: a blob pushed in two chunks, a config pushed whole, an
    /// image manifest naming both, then the manifest, blob and tags read
    /// back and compared. Ten requests when all goes well.
    pub async fn round(&mut self, round: usize) {
        let _ = self.try_round(round).await;
    }

    async fn try_round(&mut self, round: usize) -> Result<(), ()> {
        let repo = format!("soak/app{}", round % 4);
        let layer = Bytes::from(format!("layer {round} ").repeat(4096));
        let digest = Digest::sha256(&layer);
        let octets = [("content-type", "application/octet-stream")];
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let started = self
            .send("POST upload", Method::POST, &uploads, &[], Bytes::new(), 202)
            .await?;
        let location = self.location("POST upload", &started)?;
        let half = layer.len() / 2;
        let patched = self
            .send(
                "PATCH chunk",
                Method::PATCH,
                &location,
                &octets,
                layer.slice(..half),
                202,
            )
            .await?;
        let location = self.location("PATCH chunk", &patched)?;
        let commit = with_query(&location, "digest", &digest.to_string());
        self.send(
            "PUT commit",
            Method::PUT,
            &commit,
            &octets,
            layer.slice(half..),
            201,
        )
        .await?;
        let config = Bytes::from(format!("{{\"round\":{round}}}"));
        let config_digest = Digest::sha256(&config);
        if !self.push_blob(&repo, config.clone()).await {
            return Err(());
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{digest}","size":{}}}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            config.len(),
            media::OCI_LAYER,
            layer.len()
        );
        let manifest_path = format!("/v2/{repo}/manifests/r{round}");
        self.send(
            "PUT manifest",
            Method::PUT,
            &manifest_path,
            &[("content-type", media::OCI_MANIFEST)],
            Bytes::from(manifest.clone()),
            201,
        )
        .await?;
        let got = self
            .send(
                "GET manifest",
                Method::GET,
                &manifest_path,
                &[("accept", media::OCI_MANIFEST)],
                Bytes::new(),
                200,
            )
            .await?;
        if got.body() != manifest.as_bytes() {
            self.errors
                .push(format!("GET {manifest_path}: other bytes than pushed"));
        }
        let blob_path = format!("/v2/{repo}/blobs/{digest}");
        self.send("HEAD blob", Method::HEAD, &blob_path, &[], Bytes::new(), 200)
            .await?;
        let got = self
            .send("GET blob", Method::GET, &blob_path, &[], Bytes::new(), 200)
            .await?;
        if got.body() != &layer {
            self.errors
                .push(format!("GET {blob_path}: other bytes than pushed"));
        }
        let tags = format!("/v2/{repo}/tags/list");
        self.send("GET tags", Method::GET, &tags, &[], Bytes::new(), 200)
            .await?;
        Ok(())
    }

    /// The figures of every request together.
    pub fn summary(&self) -> Latencies {
        Latencies::of(self.latencies.iter().map(|(_, t)| *t).collect())
    }

    /// The figures of each kind of request, then of all, one a line.
    pub fn report(&self) -> String {
        let mut kinds: Vec<&str> = self.latencies.iter().map(|(k, _)| *k).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut out = String::new();
        for kind in kinds {
            let times = self
                .latencies
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, t)| *t)
                .collect();
            out.push_str(&format!("{kind:>16}: {}\n", Latencies::of(times)));
        }
        out.push_str(&format!("{:>16}: {}\n", "all", self.summary()));
        out
    }
}

/// One request on a new connection from loopback address `127.0.0.source`
/// (several sources so tens of thousands of connections do not run out
/// of ephemeral ports), read until the server closes it: the status and
/// the whole answer.
pub async fn once(addr: SocketAddr, source: u8, request: &[u8]) -> Result<(u16, String), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from(([127, 0, 0, source], 0)))
        .map_err(|e| e.to_string())?;
    let mut tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    tcp.write_all(request).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    Ok((status, answer))
}

/// The `Location` of a raw answer, as a path.
fn raw_location(answer: &str) -> Option<String> {
    answer.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| location_path(value.trim()).to_owned())
    })
}

/// An upload fed one byte per connection: where it continues, and what
/// it holds.
#[derive(Debug, Clone)]
pub struct TinyUpload {
    /// The path (and query) the next request of the upload goes to.
    pub location: String,
    /// The bytes sent so far.
    pub data: Vec<u8>,
}

/// Opens `uploads` uploads in `repo` and sends each `patches` one-byte
/// PATCHes, every one on a new connection, the uploads at once.
pub async fn tiny_patches(
    addr: SocketAddr,
    repo: &str,
    uploads: usize,
    patches: usize,
) -> Result<Vec<TinyUpload>, String> {
    let mut tasks = Vec::new();
    for u in 0..uploads {
        let request = format!(
            "POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = once(addr, 1, request.as_bytes()).await?;
        let location = match (status, raw_location(&answer)) {
            (202, Some(location)) => location,
            _ => return Err(format!("POST upload: {answer}")),
        };
        tasks.push(tokio::spawn(async move {
            let mut upload = TinyUpload {
                location,
                data: Vec::with_capacity(patches),
            };
            for i in 0..patches {
                // The first byte tells the uploads apart.
                let byte = if i == 0 {
                    u as u8
                } else {
                    b'a' + ((u + i) % 26) as u8
                };
                let request = format!(
                    "PATCH {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{}",
                    upload.location, byte as char
                );
                let (status, answer) = once(addr, 1 + (i % 8) as u8, request.as_bytes()).await?;
                match (status, raw_location(&answer)) {
                    (202, Some(next)) => upload.location = next,
                    _ => return Err(format!("PATCH {i}: {answer}")),
                }
                upload.data.push(byte);
            }
            Ok(upload)
        }));
    }
    let mut filled = Vec::new();
    for task in tasks {
        filled.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(filled)
}

/// Commits each upload under the digest of its bytes; the digests.
pub async fn commit_tiny(addr: SocketAddr, filled: &[TinyUpload]) -> Result<Vec<Digest>, String> {
    let mut digests = Vec::new();
    for upload in filled {
        let digest = Digest::sha256(&upload.data);
        let target = with_query(&upload.location, "digest", &digest.to_string());
        let request = format!(
            "PUT {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = once(addr, 1, request.as_bytes()).await?;
        if status != 201 {
            return Err(format!("PUT commit: {answer}"));
        }
        digests.push(digest);
    }
    Ok(digests)
}

/// What a run of [`patch_commit_race`] saw.
#[derive(Debug, Default)]
pub struct RaceOutcome {
    /// Rounds whose commit was answered 201.
    pub committed: usize,
    /// Rounds whose commit was refused (4xx).
    pub refused: usize,
    /// Committed digests served with other bytes (or not served whole).
    pub corrupted: Vec<String>,
    /// Answers that are 5xx, or carry `leak` (a server path).
    pub bad_answers: Vec<String>,
}

/// A request with `body` and `Connection: close`, as raw bytes.
fn raw_request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// `rounds` times over HTTP: an upload gets a first PATCH, then a second
/// PATCH races the `PUT ?digest=` commit of the first PATCH's bytes. A
/// commit answered 201 must leave the digest serving exactly those bytes;
/// no answer may be a 5xx or contain `leak` (the store's directory).
pub async fn patch_commit_race(addr: SocketAddr, rounds: usize, leak: &str) -> RaceOutcome {
    let mut outcome = RaceOutcome::default();
    for round in 0..rounds {
        // Distinct bytes each round, so no digest is already present.
        let data = format!("race {round} ").repeat(100 + round % 7).into_bytes();
        let digest = Digest::sha256(&data);
        let post = raw_request(addr, "POST", "/v2/race/blob/blobs/uploads/", b"");
        let first = match once(addr, 1, &post).await {
            Ok((202, answer)) => raw_location(&answer),
            other => {
                outcome.bad_answers.push(format!("POST: {other:?}"));
                continue;
            }
        };
        let Some(upload) = first else {
            outcome.bad_answers.push("POST: no Location".to_owned());
            continue;
        };
        let upload = match once(addr, 1, &raw_request(addr, "PATCH", &upload, &data)).await {
            Ok((202, answer)) => raw_location(&answer).unwrap_or(upload),
            other => {
                outcome.bad_answers.push(format!("first PATCH: {other:?}"));
                continue;
            }
        };
        let extra = vec![b'x'; 64 * 1024];
        let patch = raw_request(addr, "PATCH", &upload, &extra);
        let racer = tokio::spawn(async move { once(addr, 2, &patch).await });
        let commit_target = with_query(&upload, "digest", &digest.to_string());
        let commit = once(addr, 3, &raw_request(addr, "PUT", &commit_target, b"")).await;
        let raced = racer.await.map_err(|e| e.to_string()).and_then(|r| r);
        let mut committed = false;
        for (what, answer) in [("commit", &commit), ("racing PATCH", &raced)] {
            // A connection cut short is no answer to judge.
            if let Ok((status, text)) = answer {
                if *status >= 500 || (!leak.is_empty() && text.contains(leak)) {
                    outcome
                        .bad_answers
                        .push(format!("round {round} {what}: {text}"));
                }
                committed |= what == "commit" && *status == 201;
            }
        }
        if !committed {
            outcome.refused += 1;
            // Cancel what is left of the session (it may already be gone).
            let _ = once(addr, 1, &raw_request(addr, "DELETE", &upload, b"")).await;
            continue;
        }
        outcome.committed += 1;
        let get = format!(
            "GET /v2/race/blob/blobs/{digest} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        let served = match once(addr, 1, get.as_bytes()).await {
            Ok((200, answer)) => answer
                .split_once("\r\n\r\n")
                .is_some_and(|(_, body)| body.as_bytes() == data.as_slice()),
            _ => false,
        };
        if !served {
            outcome
                .corrupted
                .push(format!("round {round}: {digest} not served as committed"));
        }
    }
    outcome
}
