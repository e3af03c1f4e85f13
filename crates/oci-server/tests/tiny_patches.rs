//! 50,000 one-byte PATCHes, each on a new connection, into the in-memory
//! store: what is stored must cost about what it holds, not the
//! connection buffers its bytes arrived in (RSS once grew 400 MiB for 50 KB).
//! Alone in its test binary, so no other test moves the process's RSS.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use oci_core::{Digest, Registry, RepoName};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Uploads filled at once, one task each.
const UPLOADS: usize = 50;
/// One-byte PATCHes per upload.
const PATCHES: usize = 1_000;
/// The most the process may grow while storing 50,000 bytes this way.
const MAX_GROWTH: u64 = 32 << 20;

/// The process's resident set size in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// One request on a new connection from loopback address `source`; the
/// status line's code.
async fn once(server: SocketAddr, source: u8, request: &[u8]) -> (u16, String) {
    // Spread over several source addresses so 50,000 connections do not
    // run out of ephemeral ports.
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, source], 0)))
        .unwrap();
    let mut tcp = socket.connect(server).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    (status, answer)
}

/// Opens an upload; its location.
async fn open(server: SocketAddr, repo: &str) -> String {
    let request = format!(
        "POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, answer) = once(server, 1, request.as_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    answer
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .unwrap()
}

/// Sends `count` one-byte PATCHes to each of `UPLOADS` uploads of `repo`,
/// at once; the locations and the bytes each holds.
async fn fill(server: SocketAddr, repo: &str, count: usize) -> Vec<(String, Vec<u8>)> {
    let mut tasks = Vec::new();
    for u in 0..UPLOADS {
        let location = open(server, repo).await;
        tasks.push(tokio::spawn(async move {
            let mut data = Vec::with_capacity(count);
            for i in 0..count {
                // The first byte tells the uploads apart.
                let byte = if i == 0 { u as u8 } else { b'a' + ((u + i) % 26) as u8 };
                let request = format!(
                    "PATCH {location} HTTP/1.1\r\nHost: r\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{}",
                    byte as char
                );
                let source = 1 + (i % 8) as u8;
                let (status, answer) = once(server, source, request.as_bytes()).await;
                assert_eq!(status, 202, "{answer}");
                data.push(byte);
            }
            (location, data)
        }));
    }
    let mut filled = Vec::new();
    for task in tasks {
        filled.push(task.await.unwrap());
    }
    filled
}

/// Commits each upload; the digests.
async fn commit(server: SocketAddr, filled: &[(String, Vec<u8>)]) -> Vec<Digest> {
    let mut digests = Vec::new();
    for (location, data) in filled {
        let digest = Digest::sha256(data);
        let request = format!(
            "PUT {location}?digest={digest} HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = once(server, 1, request.as_bytes()).await;
        assert_eq!(status, 201, "{answer}");
        digests.push(digest);
    }
    digests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_patches_cost_what_they_store() {
    let registry = Arc::new(MemRegistry::new());
    let server = TestServer::start(registry.clone()).await;
    let addr = server.addr();

    // Warm up the runtime, the allocator and the connection paths.
    let warm = fill(addr, "warm/up", 40).await;
    commit(addr, &warm).await;
    let before = rss();

    let filled = fill(addr, "tiny/patches", PATCHES).await;
    let digests = commit(addr, &filled).await;
    let after = rss();
    let growth = after.saturating_sub(before);
    let stored = (UPLOADS * PATCHES) as u64;
    println!(
        "{} one-byte PATCHes: RSS {} KiB -> {} KiB, growth {} KiB ({} bytes per byte stored)",
        UPLOADS * PATCHES,
        before / 1024,
        after / 1024,
        growth / 1024,
        growth / stored
    );

    let repo: RepoName = "tiny/patches".parse().unwrap();
    for ((_, data), digest) in filled.iter().zip(&digests) {
        let read = registry.get_blob(&repo, digest).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), &data[..]);
    }
    assert!(
        growth < MAX_GROWTH,
        "storing {stored} bytes in one-byte PATCHes grew RSS by {} KiB",
        growth / 1024
    );

    for digest in &digests {
        registry.delete_blob(&repo, digest).await.unwrap();
    }
    println!("after deleting the blobs: RSS {} KiB", rss() / 1024);
}
