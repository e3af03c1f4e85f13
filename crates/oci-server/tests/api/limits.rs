//! The server's limits, each seen as a client sees it: idle and slow
//! connections closed, stalled bodies failed, excess connections and
//! upload sessions refused with an answer, not left hanging.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use oci_core::Digest;
use oci_server::{Limits, RateLimit, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Harness;

/// How long a test waits for something the server should do long before;
/// only a safety net against hanging, never a measured time.
const PATIENCE: Duration = Duration::from_secs(60);

async fn with_limits(limits: Limits) -> Harness {
    Harness::with_options(ServerOptions::new().limits(limits)).await
}

/// Reads until the server closes the connection; what it sent.
async fn read_until_closed(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends raw bytes and reads the whole answer (the request asks to close).
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut tcp).await
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let h = with_limits(
        Limits::new()
            .header_read_timeout(None)
            .idle_timeout(Some(Duration::from_millis(200))),
    )
    .await;
    // A connection that never sends anything...
    let mut silent = TcpStream::connect(h.server.addr()).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
    // ...and one idle after a request.
    let mut kept = TcpStream::connect(h.server.addr()).await.unwrap();
    kept.write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn headers_sent_too_slowly_close_the_connection() {
    let h = with_limits(
        Limits::new()
            .header_read_timeout(Some(Duration::from_millis(200)))
            .idle_timeout(None),
    )
    .await;
    let mut slow = TcpStream::connect(h.server.addr()).await.unwrap();
    slow.write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(!answer.contains(" 200 "), "{answer}");
}

#[tokio::test]
async fn a_stalled_body_fails_and_the_upload_keeps_what_arrived() {
    let h = with_limits(Limits::new().body_idle_timeout(Some(Duration::from_millis(200)))).await;
    let r = h.send("POST", "/v2/slow/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, 202);
    let location = r.header("location").unwrap().to_owned();
    let mut tcp = TcpStream::connect(h.server.addr()).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: r\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nabc"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // Seven bytes never come.
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");
    let r = h.get(&location).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("range"), Some("0-2"));
}

#[tokio::test]
async fn connections_over_the_limit_get_503_with_retry_after() {
    let h = with_limits(Limits::new().max_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(h.server.addr()).await.unwrap();
        // A request answered proves the server has taken the connection.
        tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(tcp);
    }
    let answer = raw(
        h.server.addr(),
        "GET /v2/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("TOOMANYREQUESTS"), "{answer}");
    // Once a connection goes, new ones are served again.
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        let answer = raw(
            h.server.addr(),
            "GET /v2/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "no connection was served after one was freed");
}

#[tokio::test]
async fn requests_may_carry_more_headers_than_hypers_default() {
    let h = Harness::new().await;
    let headers: Vec<(String, String)> = (0..180)
        .map(|i| (format!("x-forwarded-{i}"), "proxy".to_owned()))
        .collect();
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = h.send("GET", "/v2/", &borrowed, "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn upload_sessions_are_capped_per_repository_and_in_total() {
    let h = with_limits(Limits::new().max_uploads(3).max_uploads_per_repo(2)).await;
    let post = |repo: &'static str| {
        let h = &h;
        async move {
            h.send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], "")
                .await
        }
    };
    let first = post("a").await;
    assert_eq!(first.status, 202);
    assert_eq!(post("a").await.status, 202);
    let refused = post("a").await;
    refused.assert_error(429, "TOOMANYREQUESTS");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(post("b").await.status, 202);
    post("c").await.assert_error(429, "TOOMANYREQUESTS");

    // Cancelling a session frees its place...
    let location = first.header("location").unwrap();
    assert_eq!(h.send("DELETE", location, &[], "").await.status, 204);
    let next = post("a").await;
    assert_eq!(next.status, 202);
    // ...and so does committing one.
    let data = Bytes::from_static(b"payload");
    let location = next.header("location").unwrap();
    let put = format!("{location}?digest={}", Digest::sha256(&data));
    assert_eq!(h.send("PUT", &put, &[], data).await.status, 201);
    assert_eq!(post("c").await.status, 202);
    // Monolithic pushes open no session and are not capped.
    let data = Bytes::from_static(b"monolithic");
    let path = format!("/v2/c/blobs/uploads/?digest={}", Digest::sha256(&data));
    assert_eq!(h.send("POST", &path, &[], data).await.status, 201);
}

#[tokio::test]
async fn idle_upload_sessions_expire_and_free_their_place() {
    let h = with_limits(
        Limits::new()
            .max_uploads(1)
            .upload_expiry(Some(Duration::from_millis(300))),
    )
    .await;
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, 202);
    let location = r.header("location").unwrap().to_owned();
    let mut expired = false;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if h.get(&location).await.status == 404 {
            expired = true;
            break;
        }
    }
    assert!(expired, "the session never expired");
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn blobs_over_the_size_limit_are_413() {
    let h = with_limits(Limits::new().max_blob_size(Some(8))).await;
    let r = h.send("POST", "/v2/big/blobs/uploads/", &[], "").await;
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(h.send("PATCH", &location, &[], "12345").await.status, 202);
    h.send("PATCH", &location, &[], "6789")
        .await
        .assert_error(413, "SIZE_INVALID");
    // Streamed without a length, refused once it passes the limit; what
    // came before stays, as after any failed chunk.
    let pieces = vec![Bytes::from_static(b"678"), Bytes::from_static(b"9ab")];
    let r = h.send_chunked("PATCH", &location, &[], pieces).await;
    r.assert_error(413, "SIZE_INVALID");
    assert_eq!(r.header("range"), Some("0-7"));
    let put = format!("{location}?digest={}", Digest::sha256(b"12345678"));
    assert_eq!(h.send("PUT", &put, &[], "").await.status, 201);
    let data = Bytes::from_static(b"123456789");
    let path = format!("/v2/big/blobs/uploads/?digest={}", Digest::sha256(&data));
    h.send("POST", &path, &[], data)
        .await
        .assert_error(413, "SIZE_INVALID");
}

#[tokio::test]
async fn clients_over_the_rate_limit_get_429_with_retry_after() {
    let h = with_limits(Limits::new().rate_limit(Some(RateLimit::new(0.01, 3)))).await;
    for _ in 0..3 {
        assert_eq!(h.get("/v2/").await.status, 200);
    }
    let r = h.get("/v2/").await;
    r.assert_error(429, "TOOMANYREQUESTS");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1, "{wait}");
}

#[tokio::test]
async fn a_download_read_slowly_is_not_cut_by_the_header_timeout() {
    // The header timeout runs only while the connection is quiet: a
    // response still being sent, even slowly, keeps it.
    let h = with_limits(
        Limits::new()
            .header_read_timeout(Some(Duration::from_millis(100)))
            .idle_timeout(Some(Duration::from_secs(60))),
    )
    .await;
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = h.blob("slow/read", &data).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(h.server.addr()).await.unwrap();
    let request = format!(
        "GET /v2/slow/read/blobs/{digest} HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reads = 0;
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(&got[body_at..], &data[..]);
}
