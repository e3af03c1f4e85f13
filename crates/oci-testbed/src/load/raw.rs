//! Raw one-request connections: uploads fed one byte at a time and the
//! PATCH/commit race.

use std::net::SocketAddr;

use oci_core::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use super::{location_path, with_query};

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
        let data = format!("race {round} ")
            .repeat(100 + round % 7)
            .into_bytes();
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
