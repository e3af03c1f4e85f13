use crate::support::Harness;

const DATA: &[u8] = b"0123456789";

#[tokio::test]
async fn head_describes_a_blob_without_a_body() {
    let h = Harness::new().await;
    let digest = h.blob("a/b", DATA).await;
    let r = h.head(&format!("/v2/a/b/blobs/{digest}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn get_streams_the_whole_blob() {
    let h = Harness::new().await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digest = h.blob("a", &data).await;
    let r = h.get(&format!("/v2/a/blobs/{digest}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("200000"));
    assert_eq!(&r.body[..], &data[..]);
}

#[tokio::test]
async fn range_get_answers_206_with_content_range() {
    let h = Harness::new().await;
    let digest = h.blob("a", DATA).await;
    let path = format!("/v2/a/blobs/{digest}");
    let r = h.send("GET", &path, &[("range", "bytes=2-5")], "").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(&r.body[..], b"2345");

    let r = h.send("GET", &path, &[("range", "bytes=-3")], "").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 7-9/10"));
    assert_eq!(&r.body[..], b"789");

    let r = h.send("GET", &path, &[("range", "bytes=8-")], "").await;
    assert_eq!(r.status, 206);
    assert_eq!(&r.body[..], b"89");
}

#[tokio::test]
async fn unsatisfiable_or_malformed_ranges_are_416() {
    let h = Harness::new().await;
    let digest = h.blob("a", DATA).await;
    let path = format!("/v2/a/blobs/{digest}");
    for range in ["bytes=10-20", "bytes=abc", "bytes=5-2", "0-1"] {
        let r = h.send("GET", &path, &[("range", range)], "").await;
        r.assert_error(416, "RANGE_INVALID");
        assert_eq!(r.header("content-range"), Some("bytes */10"), "{range}");
    }
    // An unknown blob is unknown, whatever the range.
    let other = oci_core::Digest::sha256(b"other");
    let r = h
        .send(
            "GET",
            &format!("/v2/a/blobs/{other}"),
            &[("range", "bytes=0-1")],
            "",
        )
        .await;
    r.assert_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn ranges_of_another_unit_or_several_ranges_are_ignored() {
    // RFC 9110 §14.2: a server ignores a Range it does not understand and
    // may ignore several ranges; either way the answer is the whole blob.
    let h = Harness::new().await;
    let digest = h.blob("a", DATA).await;
    let path = format!("/v2/a/blobs/{digest}");
    for range in ["items=0-5", "bytes=0-1,3-4", "pages=1-2"] {
        let r = h.send("GET", &path, &[("range", range)], "").await;
        assert_eq!(r.status, 200, "{range}: {:?}", r.body);
        assert_eq!(&r.body[..], DATA, "{range}");
        assert_eq!(r.header("content-range"), None, "{range}");
    }
}

#[tokio::test]
async fn unknown_blobs_are_404_and_head_has_no_body() {
    let h = Harness::new().await;
    let digest = h.blob("a", DATA).await;
    h.blob("b", b"something else").await;
    // Known in `a`, not in `b`.
    h.get(&format!("/v2/b/blobs/{digest}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    let r = h.head(&format!("/v2/b/blobs/{digest}")).await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn delete_blob_is_202_then_gone() {
    let h = Harness::new().await;
    let digest = h.blob("a", DATA).await;
    let path = format!("/v2/a/blobs/{digest}");
    let r = h.send("DELETE", &path, &[], "").await;
    assert_eq!(r.status, 202);
    assert_eq!(h.head(&path).await.status, 404);
}
