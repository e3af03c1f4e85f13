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
mod normal;
mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub use normal::Normal;
pub use raw::{RaceOutcome, TinyUpload, commit_tiny, once, patch_commit_race, tiny_patches};

pub use oci_server::raise_open_files;

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
