//! Mutated HTTP requests over raw TCP: request lines, headers and bodies
//! of real API calls, edited at random (`testkit::mutate`, fixed seed). Every answer must be a
//! 4xx (or hyper closing a connection it cannot parse), never a 5xx, a
//! panic or a hang; afterwards the server still answers and what was stored
//! before is intact.

use std::time::Duration;

use bytes::Bytes;
use oci_core::testkit::mutate::Mutator;
use oci_core::{Digest, Registry, media};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Harness, image_json, name};

/// Mutants sent per request template.
const ROUNDS: usize = 400;

/// Bytes that matter to HTTP and to the API's grammars.
const INTERESTING: &[u8] = b"/:@.-_=&?%;,\"{}[] \r\n0123456789abcdef*\x00\xff";

/// Sends raw bytes, half-closes, and reads the status of the answer if
/// one comes.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything.
    let _ = tcp.write_all(request).await;
    let _ = tcp.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "no answer and no close within 10 s to {:?}",
        String::from_utf8_lossy(request)
    );
    let head = String::from_utf8_lossy(&answer);
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    Some(status.parse().unwrap())
}

fn request(head: &str, body: &[u8]) -> Vec<u8> {
    let mut r = head.replace('\n', "\r\n").into_bytes();
    r.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn mutated_requests_get_client_errors_and_change_nothing_stored() {
    let h = Harness::new().await;
    let kept = h.image("kept/app", &["v1"], "").await;
    let blob = h.blob("kept/app", b"precious bytes").await;
    let scratch_image = h.image("scratch/app", &["s1"], "").await;
    let config = h.blob("scratch/app", b"{}").await;
    let manifest = image_json(&config, 2, "");
    let upload = h
        .send("POST", "/v2/scratch/app/blobs/uploads/", &[], "")
        .await;
    let location = upload.header("location").unwrap().to_owned();
    let data = b"abcd";
    let data_digest = Digest::sha256(data);

    let templates: Vec<Vec<u8>> = vec![
        request(
            &format!(
                "GET /v2/kept/app/manifests/v1 HTTP/1.1\nHost: r\nAccept: {}, {}\n",
                media::OCI_MANIFEST,
                media::OCI_INDEX
            ),
            b"",
        ),
        request(
            &format!("GET /v2/kept/app/blobs/{blob} HTTP/1.1\nHost: r\nRange: bytes=2-7\n"),
            b"",
        ),
        request(
            &format!(
                "PUT /v2/scratch/app/manifests/s2 HTTP/1.1\nHost: r\nContent-Type: {}\n",
                media::OCI_MANIFEST
            ),
            manifest.as_bytes(),
        ),
        request(
            &format!(
                "POST /v2/scratch/app/blobs/uploads/?digest={data_digest} HTTP/1.1\nHost: r\nContent-Type: application/octet-stream\n"
            ),
            data,
        ),
        request(
            &format!(
                "PATCH {location} HTTP/1.1\nHost: r\nContent-Type: application/octet-stream\nContent-Range: 0-3\n"
            ),
            data,
        ),
        request(
            &format!("PUT {location}?digest={data_digest} HTTP/1.1\nHost: r\n"),
            data,
        ),
        request(
            "GET /v2/kept/app/tags/list?n=2&last=a HTTP/1.1\nHost: r\n",
            b"",
        ),
        request(
            "GET /v2/_catalog?n=1&last=kept%2Fapp HTTP/1.1\nHost: r\n",
            b"",
        ),
        request(
            &format!(
                "GET /v2/kept/app/referrers/{}?artifactType=application%2Fx HTTP/1.1\nHost: r\n",
                kept.digest()
            ),
            b"",
        ),
        request(
            &format!(
                "DELETE /v2/scratch/app/manifests/{} HTTP/1.1\nHost: r\n",
                scratch_image.digest()
            ),
            b"",
        ),
        request(
            &format!(
                "POST /v2/scratch/app/blobs/uploads/?mount={blob}&from=kept/app HTTP/1.1\nHost: r\n"
            ),
            b"",
        ),
    ];

    let addr = h.server.addr();
    let mut mutator = Mutator::new(0x5e4e_0bad_c0de_0001, INTERESTING);
    let mut answered = 0;
    for template in &templates {
        for _ in 0..ROUNDS {
            let mutant = mutator.mutate(template);
            if let Some(status) = exchange(addr, &mutant).await {
                answered += 1;
                assert!(
                    status < 500,
                    "{status} for {:?}",
                    String::from_utf8_lossy(&mutant)
                );
            }
        }
    }
    // Most mutants still parse as HTTP and reach the API.
    assert!(
        answered > templates.len() * ROUNDS / 2,
        "{answered} answered"
    );

    // The server still answers, and what it held is intact.
    let r = h.get("/v2/kept/app/manifests/v1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, kept.bytes);
    let stored = h.registry.get_blob(&name("kept/app"), &blob).await.unwrap();
    assert_eq!(
        stored.bytes().await.unwrap(),
        Bytes::from_static(b"precious bytes")
    );
}
