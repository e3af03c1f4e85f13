use oci_core::Digest;

use crate::support::Harness;

#[tokio::test]
async fn base_endpoint_answers_the_version_check() {
    let h = Harness::new().await;
    let r = h.get("/v2/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({}));
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r = h.head("/v2/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn invalid_names_digests_and_tags_are_400() {
    let h = Harness::new().await;
    let d = Digest::sha256(b"x");
    for path in [
        format!("/v2/UPPER/blobs/{d}"),
        "/v2/a//b/manifests/v1".to_owned(),
        "/v2/-a/tags/list".to_owned(),
        "/v2/a_/blobs/uploads/".to_owned(),
    ] {
        h.get(&path).await.assert_error(400, "NAME_INVALID");
    }
    for path in [
        "/v2/a/blobs/sha256:abc",
        "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
        "/v2/a/referrers/notadigest",
    ] {
        h.get(path).await.assert_error(400, "DIGEST_INVALID");
    }
    // A manifest write under a reference that is neither a tag nor a
    // digest is refused for the reference.
    let long = "t".repeat(129);
    let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let index = [("content-type", "application/vnd.oci.image.index.v1+json")];
    for (path, code) in [
        ("/v2/a/manifests/sha256:ABC".to_owned(), "DIGEST_INVALID"),
        ("/v2/a/manifests/.dot".to_owned(), "MANIFEST_INVALID"),
        (format!("/v2/a/manifests/{long}"), "MANIFEST_INVALID"),
    ] {
        h.send("PUT", &path, &index, body)
            .await
            .assert_error(400, code);
    }
    h.send(
        "PUT",
        &format!("/v2/a/manifests/{d}?tag=.dot"),
        &index,
        body,
    )
    .await
    .assert_error(400, "MANIFEST_INVALID");
    // HEAD errors carry the status alone.
    let r = h.head(&format!("/v2/UPPER/blobs/{d}")).await;
    assert_eq!(r.status, 400);
    assert!(r.body.is_empty());
}

/// A read or delete of a manifest by a reference that is neither a tag nor
/// a digest answers 404 MANIFEST_UNKNOWN: no such manifest can exist (as
/// distribution and the official conformance suite expect).
#[tokio::test]
async fn manifest_reads_by_invalid_references_are_404() {
    let h = Harness::new().await;
    h.image("a", &["v1"], "").await;
    let long = "t".repeat(129);
    for reference in [
        ".INVALID_MANIFEST_NAME".to_owned(),
        "-dash".to_owned(),
        "sha256:ABC".to_owned(),
        "sha256%3Atotallywrong".to_owned(),
        "%zz".to_owned(),
        long,
    ] {
        let path = format!("/v2/a/manifests/{reference}");
        h.get(&path).await.assert_error(404, "MANIFEST_UNKNOWN");
        h.send("DELETE", &path, &[], "")
            .await
            .assert_error(404, "MANIFEST_UNKNOWN");
        let r = h.head(&path).await;
        assert_eq!(r.status, 404, "HEAD {path}");
        assert!(r.body.is_empty());
    }
    assert_eq!(h.get("/v2/a/manifests/v1").await.status, 200);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let h = Harness::new().await;
    for path in ["/", "/v1/", "/v2/a/unknown", "/v2/a/tags/all"] {
        h.get(path).await.assert_error(404, "UNSUPPORTED");
    }
    let d = Digest::sha256(b"x");
    h.send("POST", &format!("/v2/a/blobs/{d}"), &[], "")
        .await
        .assert_error(405, "UNSUPPORTED");
    h.send("DELETE", "/v2/a/tags/list", &[], "")
        .await
        .assert_error(405, "UNSUPPORTED");
    h.send("PUT", "/v2/", &[], "")
        .await
        .assert_error(405, "UNSUPPORTED");
}

#[tokio::test]
async fn unknown_things_have_their_codes() {
    let h = Harness::new().await;
    h.image("a", &["v1"], "").await;
    h.get("/v2/a/manifests/nope")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    h.get(&format!("/v2/a/manifests/{}", Digest::sha256(b"m")))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    h.get(&format!("/v2/a/blobs/{}", Digest::sha256(b"b")))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
}
