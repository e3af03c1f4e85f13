use bytes::Bytes;
use oci_core::Digest;

use crate::support::Harness;

/// Starts an upload session and returns its location.
async fn open(h: &Harness, repo: &str) -> String {
    let r = h
        .send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], "")
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.header("range"), Some("0-0"));
    assert!(r.header("docker-upload-uuid").is_some());
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("/v2/{repo}/blobs/uploads/")));
    location
}

#[tokio::test]
async fn chunked_upload_continues_with_content_range() {
    let h = Harness::new().await;
    let loc = open(&h, "a/b").await;
    let r = h
        .send("PATCH", &loc, &[("content-range", "0-3")], "abcd")
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-3"));
    let loc = r.header("location").unwrap().to_owned();

    // A chunk streamed without a length continues where the last ended.
    let pieces = vec![Bytes::from_static(b"ef"), Bytes::from_static(b"gh")];
    let r = h
        .send_chunked("PATCH", &loc, &[("content-range", "4-7")], pieces)
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-7"));

    let status = h.get(&loc).await;
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-7"));
    assert_eq!(status.header("location"), Some(loc.as_str()));

    let digest = Digest::sha256(b"abcdefghij");
    let r = h
        .send("PUT", &format!("{loc}?digest={digest}"), &[], "ij")
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/a/b/blobs/{digest}").as_str())
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    let blob = h.get(&format!("/v2/a/b/blobs/{digest}")).await;
    assert_eq!(&blob.body[..], b"abcdefghij");
}

#[tokio::test]
async fn out_of_order_chunk_is_416_and_the_upload_survives() {
    let h = Harness::new().await;
    let loc = open(&h, "a").await;
    let r = h
        .send("PATCH", &loc, &[("content-range", "0-2")], "abc")
        .await;
    assert_eq!(r.status, 202);

    let r = h
        .send("PATCH", &loc, &[("content-range", "5-7")], "fgh")
        .await;
    r.assert_error(416, "RANGE_INVALID");
    assert_eq!(r.header("range"), Some("0-2"));
    assert_eq!(r.header("location"), Some(loc.as_str()));

    // Content-Length disagreeing with Content-Range is refused as well.
    let r = h
        .send("PATCH", &loc, &[("content-range", "3-9")], "def")
        .await;
    r.assert_error(416, "RANGE_INVALID");

    // Still intact: the right chunk goes on, and the blob completes.
    assert_eq!(h.get(&loc).await.header("range"), Some("0-2"));
    let r = h
        .send("PATCH", &loc, &[("content-range", "3-5")], "def")
        .await;
    assert_eq!(r.status, 202);
    let digest = Digest::sha256(b"abcdef");
    let r = h
        .send("PUT", &format!("{loc}?digest={digest}"), &[], "")
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn put_with_a_wrong_or_missing_digest_is_digest_invalid() {
    let h = Harness::new().await;
    let loc = open(&h, "a").await;
    h.send("PATCH", &loc, &[], "data").await;

    // Missing and malformed digests are refused before the upload is touched.
    h.send("PUT", &loc, &[], "")
        .await
        .assert_error(400, "DIGEST_INVALID");
    h.send("PUT", &format!("{loc}?digest=sha256:xyz"), &[], "")
        .await
        .assert_error(400, "DIGEST_INVALID");
    assert_eq!(h.get(&loc).await.header("range"), Some("0-3"));

    let wrong = Digest::sha256(b"other");
    h.send("PUT", &format!("{loc}?digest={wrong}"), &[], "")
        .await
        .assert_error(400, "DIGEST_INVALID");
    assert_eq!(h.head(&format!("/v2/a/blobs/{wrong}")).await.status, 404);
}

#[tokio::test]
async fn monolithic_post_creates_the_blob() {
    let h = Harness::new().await;
    let digest = Digest::sha256(b"whole");
    let r = h
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={digest}"),
            &[],
            "whole",
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/a/blobs/{digest}").as_str())
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    assert_eq!(
        &h.get(&format!("/v2/a/blobs/{digest}")).await.body[..],
        b"whole"
    );

    let r = h
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={digest}"),
            &[],
            "wrong",
        )
        .await;
    r.assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn mount_links_a_blob_or_falls_back_to_a_session() {
    let h = Harness::new().await;
    let digest = h.blob("src", b"shared").await;
    let r = h
        .send(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={digest}&from=src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/dst/blobs/{digest}").as_str())
    );
    assert_eq!(h.head(&format!("/v2/dst/blobs/{digest}")).await.status, 200);

    let missing = Digest::sha256(b"missing");
    let r = h
        .send(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={missing}&from=src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("/v2/dst/blobs/uploads/")
    );

    h.send(
        "POST",
        "/v2/dst/blobs/uploads/?mount=sha256:1&from=src",
        &[],
        "",
    )
    .await
    .assert_error(400, "DIGEST_INVALID");
    h.send(
        "POST",
        &format!("/v2/dst/blobs/uploads/?mount={digest}&from=Bad"),
        &[],
        "",
    )
    .await
    .assert_error(400, "NAME_INVALID");
}

#[tokio::test]
async fn cancelled_and_unknown_uploads_are_404() {
    let h = Harness::new().await;
    let loc = open(&h, "a").await;
    let r = h.send("DELETE", &loc, &[], "").await;
    assert_eq!(r.status, 204);
    h.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    h.send("PATCH", "/v2/a/blobs/uploads/no-such-id", &[], "x")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    // An upload belongs to its repository.
    let loc = open(&h, "a").await;
    let other = loc.replacen("/v2/a/", "/v2/b/", 1);
    h.get(&other).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn an_interrupted_chunk_leaves_the_upload_resumable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::new().await;
    let loc = open(&h, "a").await;
    // Promise 100 bytes, send 10, then close the sending side: the server
    // sees the body fail mid-stream and still answers on the open half.
    let mut socket = tokio::net::TcpStream::connect(h.server.addr())
        .await
        .unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nhost: {}\r\ncontent-length: 100\r\n\r\n0123456789",
        h.server.addr()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");

    // The session is still there, holding what arrived; it continues from it.
    let status = h.get(&loc).await;
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-9"));
    let r = h
        .send("PATCH", &loc, &[("content-range", "10-15")], "abcdef")
        .await;
    assert_eq!(r.status, 202);
    let digest = Digest::sha256(b"0123456789abcdef");
    let r = h
        .send("PUT", &format!("{loc}?digest={digest}"), &[], "")
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}
