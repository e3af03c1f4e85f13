use oci_core::{Digest, media};

use crate::support::Harness;

#[tokio::test]
async fn tags_paginate_with_link() {
    let h = Harness::new().await;
    h.image("a/b", &["v1", "v2", "v3"], "").await;

    let r = h.get("/v2/a/b/tags/list").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "a/b", "tags": ["v1", "v2", "v3"]})
    );
    assert!(r.header("link").is_none());

    let r = h.get("/v2/a/b/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["v1", "v2"]));
    let link = r.header("link").unwrap();
    assert_eq!(link, r#"</v2/a/b/tags/list?n=2&last=v2>; rel="next""#);

    let next = oci_core::wire::parse_link_next(link).unwrap();
    let r = h.get(&next).await;
    assert_eq!(r.json()["tags"], serde_json::json!(["v3"]));
    assert!(r.header("link").is_none());

    // Exactly n left: no next page.
    let r = h.get("/v2/a/b/tags/list?n=3").await;
    assert_eq!(r.json()["tags"].as_array().unwrap().len(), 3);
    assert!(r.header("link").is_none());

    let r = h.get("/v2/a/b/tags/list?n=0").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], serde_json::json!([]));

    let r = h.get("/v2/a/b/tags/list?last=v1").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["v2", "v3"]));
}

#[tokio::test]
async fn tag_listing_errors() {
    let h = Harness::new().await;
    h.image("a", &["v1"], "").await;
    h.get("/v2/a/tags/list?n=x")
        .await
        .assert_error(400, "SIZE_INVALID");
    h.get("/v2/a/tags/list?n=-1")
        .await
        .assert_error(400, "SIZE_INVALID");
    h.get("/v2/a/tags/list?last=-x")
        .await
        .assert_error(400, "MANIFEST_INVALID");
    h.get("/v2/nope/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
    h.get("/v2/nope/tags/list?n=0")
        .await
        .assert_error(404, "NAME_UNKNOWN");
    h.get("/v2/nope/tags/list?n=5")
        .await
        .assert_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_paginates_with_link() {
    let h = Harness::new().await;
    for repo in ["x", "y/z", "w"] {
        h.image(repo, &["t"], "").await;
    }
    let r = h.get("/v2/_catalog").await;
    assert_eq!(
        r.json(),
        serde_json::json!({"repositories": ["w", "x", "y/z"]})
    );
    let r = h.get("/v2/_catalog?n=1&last=w").await;
    assert_eq!(r.json(), serde_json::json!({"repositories": ["x"]}));
    assert_eq!(
        r.header("link"),
        Some(r#"</v2/_catalog?n=1&last=x>; rel="next""#)
    );
    let r = h.get("/v2/_catalog?n=2&last=x").await;
    assert_eq!(r.json(), serde_json::json!({"repositories": ["y/z"]}));
    assert!(r.header("link").is_none());
    h.get("/v2/_catalog?n=many")
        .await
        .assert_error(400, "SIZE_INVALID");
}

#[tokio::test]
async fn referrers_list_and_filter() {
    let h = Harness::new().await;
    let subject = h.image("a", &["v1"], "").await;
    let refers = |artifact: &str| {
        format!(
            r#","artifactType":"{artifact}","subject":{{"mediaType":"{}","digest":"{}","size":{}}}"#,
            media::OCI_MANIFEST,
            subject.digest(),
            subject.bytes.len()
        )
    };
    let sig = h
        .image("a", &[], &refers("application/vnd.example.sig"))
        .await;
    h.image("a", &[], &refers("application/vnd.example.sbom"))
        .await;
    let path = format!("/v2/a/referrers/{}", subject.digest());

    let r = h.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(media::OCI_INDEX));
    assert!(r.header("oci-filters-applied").is_none());
    let index = r.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], media::OCI_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);

    let r = h
        .get(&format!(
            "{path}?artifactType=application%2Fvnd.example.sig"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let manifests = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], sig.digest().to_string());
    assert_eq!(manifests[0]["artifactType"], "application/vnd.example.sig");

    // An unknown subject has no referrers, not an error.
    let r = h
        .get(&format!("/v2/a/referrers/{}", Digest::sha256(b"x")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
}
