use oci_core::{Algorithm, Digest, media};
use oci_server::ServerOptions;

use crate::support::{Harness, image_json};

/// Pushes a config blob to `repo` and returns an image manifest body for it.
async fn body(h: &Harness, repo: &str, extra: &str) -> String {
    let config = b"{\"os\":\"linux\"}";
    let digest = h.blob(repo, config).await;
    image_json(&digest, config.len(), extra)
}

const OCI: (&str, &str) = ("content-type", media::OCI_MANIFEST);

#[tokio::test]
async fn put_then_get_serves_the_exact_bytes() {
    let h = Harness::new().await;
    // Unusual spacing and an unknown field must survive unchanged.
    let json = body(&h, "a/b", r#",  "x-extra" : [1, 2]"#).await;
    let digest = Digest::sha256(json.as_bytes());
    let r = h
        .send("PUT", "/v2/a/b/manifests/v1", &[OCI], json.clone())
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/a/b/manifests/{digest}").as_str())
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    assert!(r.header("oci-subject").is_none());

    for path in [
        "/v2/a/b/manifests/v1".to_owned(),
        format!("/v2/a/b/manifests/{digest}"),
    ] {
        let r = h.get(&path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(media::OCI_MANIFEST));
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.to_string().as_str())
        );
        assert_eq!(&r.body[..], json.as_bytes());
        assert_eq!(r.headers.get_all("content-length").iter().count(), 1);

        let r = h.head(&path).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-length"),
            Some(json.len().to_string().as_str())
        );
        assert_eq!(r.header("content-type"), Some(media::OCI_MANIFEST));
        assert!(r.body.is_empty());
    }
}

#[tokio::test]
async fn extra_tags_and_subject_header() {
    let h = Harness::new().await;
    let subject = h.image("a", &["base"], "").await;
    let extra = format!(
        r#","subject":{{"mediaType":"{}","digest":"{}","size":{}}}"#,
        media::OCI_MANIFEST,
        subject.digest(),
        subject.bytes.len()
    );
    let json = body(&h, "a", &extra).await;
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1?tag=v2&tag=v3",
            &[OCI],
            json.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.header("oci-subject"),
        Some(subject.digest().to_string().as_str())
    );
    for tag in ["v1", "v2", "v3"] {
        let r = h.get(&format!("/v2/a/manifests/{tag}")).await;
        assert_eq!(&r.body[..], json.as_bytes(), "{tag}");
    }
    h.send("PUT", "/v2/a/manifests/v1?tag=-bad", &[OCI], json)
        .await
        .assert_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn content_type_must_match_the_body() {
    let h = Harness::new().await;
    let json = body(&h, "a", "").await;
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", media::DOCKER_MANIFEST)],
            json.clone(),
        )
        .await;
    r.assert_error(400, "MANIFEST_INVALID");
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", "text/plain")],
            json,
        )
        .await;
    r.assert_error(400, "MANIFEST_INVALID");
    h.send("PUT", "/v2/a/manifests/v1", &[OCI], "{not json")
        .await
        .assert_error(400, "MANIFEST_INVALID");
    assert_eq!(h.head("/v2/a/manifests/v1").await.status, 404);
}

#[tokio::test]
async fn oversized_manifests_are_413() {
    let h = Harness::with_options(ServerOptions::new().max_manifest_size(512)).await;
    let json = body(
        &h,
        "a",
        &format!(r#","annotations":{{"pad":"{}"}}"#, "x".repeat(600)),
    )
    .await;
    // Declared by Content-Length, and streamed without a length.
    h.send("PUT", "/v2/a/manifests/v1", &[OCI], json.clone())
        .await
        .assert_error(413, "SIZE_INVALID");
    let pieces = json
        .as_bytes()
        .chunks(100)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    h.send_chunked("PUT", "/v2/a/manifests/v1", &[OCI], pieces)
        .await
        .assert_error(413, "SIZE_INVALID");
    // Under the cap it goes through.
    let small = body(&h, "a", "").await;
    assert_eq!(
        h.send("PUT", "/v2/a/manifests/v1", &[OCI], small)
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn sha512_digest_reference_and_mismatch() {
    let h = Harness::new().await;
    let json = body(&h, "a", "").await;
    let digest = Digest::of(Algorithm::Sha512, json.as_bytes());
    let path = format!("/v2/a/manifests/{digest}");
    let r = h.send("PUT", &path, &[OCI], json.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.to_string().as_str())
    );
    assert_eq!(r.header("location"), Some(path.as_str()));
    let r = h.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], json.as_bytes());

    let wrong = Digest::sha256(b"not this");
    h.send("PUT", &format!("/v2/a/manifests/{wrong}"), &[OCI], json)
        .await
        .assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn accept_negotiation() {
    let h = Harness::new().await;
    let child = h.image("a", &[], "").await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
        media::OCI_INDEX,
        media::OCI_MANIFEST,
        child.digest(),
        child.bytes.len()
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/multi",
            &[("content-type", media::OCI_INDEX)],
            index.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let digest = Digest::sha256(index.as_bytes());

    let schema2_only = format!(
        "{}, {}",
        media::DOCKER_MANIFEST,
        media::DOCKER_MANIFEST_LIST
    );
    let r = h
        .send(
            "GET",
            "/v2/a/manifests/multi",
            &[("accept", &schema2_only)],
            "",
        )
        .await;
    r.assert_error(404, "MANIFEST_UNKNOWN");
    let r = h
        .send(
            "HEAD",
            "/v2/a/manifests/multi",
            &[("accept", &schema2_only)],
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());

    for accept in [
        "*/*".to_owned(),
        "application/*;q=0.5".to_owned(),
        format!("{schema2_only}, {};q=0.9", media::OCI_INDEX),
    ] {
        let r = h
            .send("GET", "/v2/a/manifests/multi", &[("accept", &accept)], "")
            .await;
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(r.header("content-type"), Some(media::OCI_INDEX));
    }
    // By digest the same rule holds; without Accept anything is served.
    let by_digest = format!("/v2/a/manifests/{digest}");
    let r = h
        .send("GET", &by_digest, &[("accept", &schema2_only)], "")
        .await;
    r.assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(h.get(&by_digest).await.status, 200);
}

#[tokio::test]
async fn delete_by_tag_keeps_the_manifest_and_by_digest_removes_it() {
    let h = Harness::new().await;
    let m = h.image("a", &["v1"], "").await;
    let by_digest = format!("/v2/a/manifests/{}", m.digest());
    assert_eq!(
        h.send("DELETE", "/v2/a/manifests/v1", &[], "").await.status,
        202
    );
    h.get("/v2/a/manifests/v1")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(h.get(&by_digest).await.status, 200);
    assert_eq!(h.send("DELETE", &by_digest, &[], "").await.status, 202);
    h.get(&by_digest)
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn manifest_blobs_must_exist() {
    let h = Harness::new().await;
    let json = image_json(&Digest::sha256(b"absent"), 6, "");
    h.send("PUT", "/v2/a/manifests/v1", &[OCI], json)
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
}
