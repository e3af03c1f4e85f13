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
