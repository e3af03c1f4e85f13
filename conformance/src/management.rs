//! Content management: deleting manifests, tags and blobs, and what reads
//! and listings say afterwards.

use oci_core::{ErrorCode, media};

use crate::discovery;
use crate::fixtures::Blob;
use crate::routes;
use crate::seed;
use crate::target::Target;

async fn delete_manifest(t: &Target, reference: &str) -> crate::client::Response {
    t.client()
        .delete(&routes::manifest(t.repo(), reference))
        .send()
        .await
}

async fn manifest_status(t: &Target, reference: &str) -> u16 {
    crate::pull::get_manifest(t, reference, false)
        .await
        .status
        .as_u16()
}

/// DELETE of a manifest by digest: 202, then the digest and its tag are gone.
pub async fn management_delete_manifest(t: &Target) {
    let image = seed::seeded_image(t, "doomed").await;
    let digest = image.manifest.digest().to_string();
    delete_manifest(t, &digest).await.expect_status(202);
    crate::pull::get_manifest(t, &digest, false)
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
    assert_eq!(
        manifest_status(t, "doomed").await,
        404,
        "tag of a deleted manifest"
    );
}

/// A deleted manifest's tags leave the tags list.
pub async fn management_delete_manifest_untags(t: &Target) {
    let image = discovery::seed_tags(t).await;
    let keep = seed::seeded_image(t, "keep").await;
    delete_manifest(t, &image.manifest.digest().to_string())
        .await
        .expect_status(202);
    let resp = t.client().get(&routes::tags(t.repo())).send().await;
    assert_eq!(discovery::tags_of(t, &resp), ["keep"], "{}", resp.what);
    assert_eq!(
        manifest_status(t, &keep.manifest.digest().to_string()).await,
        200,
        "an unrelated manifest survives"
    );
}

/// DELETE of a tag: 202, the tag is gone, the manifest stays by digest.
pub async fn management_delete_tag(t: &Target) {
    let image = seed::seeded_image(t, "temporary").await;
    delete_manifest(t, "temporary").await.expect_status(202);
    assert_eq!(manifest_status(t, "temporary").await, 404, "deleted tag");
    assert_eq!(
        manifest_status(t, &image.manifest.digest().to_string()).await,
        200,
        "the manifest of a deleted tag"
    );
}

/// DELETE of an unknown manifest: 404 MANIFEST_UNKNOWN.
pub async fn management_delete_unknown_manifest(t: &Target) {
    seed::seeded_image(t, "exists").await;
    delete_manifest(t, &Blob::random(16).digest.to_string())
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
}

/// DELETE of every blob of an image: 202 each, then 404 on HEAD and GET.
/// With `OCI_DELETE_MANIFEST_BEFORE_BLOBS` the manifest goes first. An
/// unrelated image keeps the repository in existence throughout.
pub async fn management_delete_blobs(t: &Target) {
    seed::seeded_image(t, "keep").await;
    let image = seed::seeded_image(t, "blobs").await;
    let digest = image.manifest.digest().to_string();
    if t.config().delete_manifest_before_blobs {
        delete_manifest(t, &digest).await.expect_status(202);
    }
    for blob in image.blobs() {
        let path = routes::blob(t.repo(), &blob.digest);
        t.client().delete(&path).send().await.expect_status(202);
        t.client().head(&path).send().await.expect_status(404);
        t.client()
            .get(&path)
            .send()
            .await
            .expect_error(404, ErrorCode::BlobUnknown);
    }
    if !t.config().delete_manifest_before_blobs {
        delete_manifest(t, &digest).await.expect_status(202);
    }
}

/// DELETE of an unknown blob: 404 BLOB_UNKNOWN.
pub async fn management_delete_unknown_blob(t: &Target) {
    seed::seeded_image(t, "exists").await;
    t.client()
        .delete(&routes::blob(t.repo(), &Blob::random(16).digest))
        .send()
        .await
        .expect_error(404, ErrorCode::BlobUnknown);
}

/// A deleted artifact leaves its subject's referrers list.
pub async fn management_delete_referrer(t: &Target) {
    let r = discovery::seed_referrers(t).await;
    delete_manifest(t, &r.sbom.manifest.digest().to_string())
        .await
        .expect_status(202);
    let resp = discovery::get_referrers(t, &r.subject.manifest, None).await;
    let left = discovery::referrer_descriptors(&resp);
    assert_eq!(left.len(), 1, "{}: referrers {left:?}", resp.what);
    assert_eq!(
        left[0]["digest"],
        r.signature.manifest.digest().to_string(),
        "{}",
        resp.what
    );
    assert_eq!(left[0]["mediaType"], media::OCI_MANIFEST, "{}", resp.what);
}

/// DELETE of a manifest by a reference that cannot name one: 404
/// MANIFEST_UNKNOWN, and nothing else is touched.
pub async fn management_delete_invalid_reference(t: &Target) {
    let image = seed::seeded_image(t, "exists").await;
    delete_manifest(t, crate::pull::INVALID_REFERENCE)
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
    assert_eq!(
        manifest_status(t, &image.manifest.digest().to_string()).await,
        200,
        "the repository's manifest survives"
    );
}
