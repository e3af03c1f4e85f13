//! The shared behavioural suite through the client against Debian's
//! docker-registry (distribution 2.8), for the behaviours it supports:
//! not sha512 manifests, tag deletion, or a clean MANIFEST_UNKNOWN for a
//! blob's digest read as a manifest (it answers 500).

mod support;

oci_core::testkit_tests!(support::distribution_client();
    push_pull_blob,
    blob_digest_mismatch,
    blob_size_mismatch,
    blob_range,
    chunked_upload,
    chunked_upload_resume,
    chunked_upload_cancel,
    upload_unknown_id,
    chunked_commit_wrong_digest,
    mount_blob,
    manifest_push_pull,
    manifest_multi_tag,
    manifest_missing_blobs,
    manifest_invalid,
    manifest_digest_mismatch,
    index_children,
    referrers,
    referrers_subject_missing,
    tag_pagination,
    catalog,
    delete_blob,
    delete_manifest,
    delete_referrer,
    retag,
);

/// Distribution deletes manifests by digest only; a tag deletion is
/// reported as unsupported rather than as its odd `DIGEST_INVALID`.
#[tokio::test]
async fn tag_deletion_is_unsupported_on_distribution() {
    use oci_core::{ErrorCode, Registry, testkit};
    let client = support::distribution_client();
    let repo = testkit::fresh_repo("delete-tag-unsupported");
    let tag = testkit::tag("v1");
    testkit::push_image(&client, &repo, Some(&tag)).await;
    let err = client.delete_tag(&repo, &tag).await.unwrap_err();
    assert!(err.is(ErrorCode::Unsupported), "{err}");
    client
        .resolve_tag(&repo, &tag)
        .await
        .expect("the tag is still there");
}

/// Without a referrers API every referrer push rewrites the subject's
/// `sha256-…` index tag; pushes that race must not drop each other's
/// entries (the client checks its update landed and merges again).
#[tokio::test]
async fn concurrent_referrer_pushes_keep_every_entry_in_the_fallback_tag() {
    use futures::StreamExt;
    use oci_core::{Registry, testkit};
    let client = support::distribution_client();
    let repo = testkit::fresh_repo("fallback-race");
    let subject = testkit::push_image(&client, &repo, None).await;
    let artifacts: Vec<_> = (0..8)
        .map(|_| testkit::build_artifact(subject.descriptor(), "application/vnd.example.race"))
        .collect();
    // Blobs first, one at a time: distribution 2.8 rewrites a repository's
    // blob link in place, so concurrent uploads of one blob (the shared
    // empty config) can make a concurrent manifest PUT read a half-written
    // link and fail with DIGEST_INVALID. The manifests go in parallel.
    let empty = bytes::Bytes::from_static(b"{}");
    testkit::push_bytes(&client, &repo, oci_core::media::OCI_EMPTY, &empty).await;
    for a in &artifacts {
        testkit::push_bytes(&client, &repo, &a.blob.media_type, &a.blob_bytes).await;
    }
    let pushes = artifacts
        .iter()
        .map(|a| client.push_manifest(&repo, &a.manifest, &[]));
    for pushed in futures::future::join_all(pushes).await {
        pushed.unwrap();
    }
    let listed: Vec<_> = client
        .referrers(&repo, subject.digest(), None)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|d| d.unwrap().digest)
        .collect();
    for artifact in &artifacts {
        assert!(
            listed.contains(artifact.digest()),
            "{} lost from the fallback index ({} of 8 listed)",
            artifact.digest(),
            listed.len()
        );
    }
    assert_eq!(listed.len(), artifacts.len());

    // Deleting half of them at once takes exactly those out.
    let (gone, kept) = artifacts.split_at(4);
    let deletes = gone
        .iter()
        .map(|a| client.delete_manifest(&repo, a.digest()));
    for result in futures::future::join_all(deletes).await {
        result.unwrap();
    }
    let mut left: Vec<_> = client
        .referrers(&repo, subject.digest(), None)
        .map(|d| d.unwrap().digest)
        .collect()
        .await;
    let mut expected: Vec<_> = kept.iter().map(|a| a.digest().clone()).collect();
    left.sort();
    expected.sort();
    assert_eq!(left, expected);
}

/// A referrer deleted behind the client's back (its manifest gone, the
/// fallback tag not updated) makes distribution refuse the stale index;
/// the next referrer push drops the dead entry and goes through.
#[tokio::test]
async fn a_stale_fallback_entry_is_dropped_on_the_next_update() {
    use futures::StreamExt;
    use oci_core::{Registry, testkit};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let client = support::distribution_client();
    let host = support::distribution::shared().host().to_owned();
    let repo = testkit::fresh_repo("fallback-stale");
    let subject = testkit::push_image(&client, &repo, None).await;
    let kind = "application/vnd.example.stale";
    let stale = testkit::build_artifact(subject.descriptor(), kind);
    stale.push(&client, &repo).await;

    // Another tool deletes the manifest but leaves the tag as it was.
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "DELETE /v2/{repo}/manifests/{} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        stale.digest()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 202"), "{answer}");

    let fresh = testkit::build_artifact(subject.descriptor(), kind);
    fresh.push(&client, &repo).await;
    let listed: Vec<_> = client
        .referrers(&repo, subject.digest(), None)
        .map(|d| d.unwrap().digest)
        .collect()
        .await;
    assert_eq!(listed, vec![fresh.digest().clone()]);
}
