//! Seeding a registry with the content a check then reads, using the plain
//! two-step upload (POST, then PUT with the digest) every registry supports.

use http::header::CONTENT_TYPE;
use oci_core::{Digest, Manifest, media};

use crate::client::{Response, with_query};
use crate::fixtures::{Blob, Image};
use crate::routes;
use crate::target::Target;

/// Uploads a blob with POST + PUT and asserts the registry created it.
pub async fn push_blob(target: &Target, repo: &str, blob: &Blob) {
    push_blob_as(target, repo, blob, &blob.digest).await;
}

/// Uploads a blob under `digest` (which may use another algorithm).
pub async fn push_blob_as(target: &Target, repo: &str, blob: &Blob, digest: &Digest) -> Response {
    let started = target
        .seed_client()
        .post(&routes::uploads(repo))
        .send()
        .await;
    started.expect_status(202);
    let location = with_query(started.location(), &format!("digest={digest}"));
    let done = target
        .seed_client()
        .put(&location)
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await;
    done.expect_status(201);
    done
}

/// Puts a manifest under `reference` and asserts 201 Created.
pub async fn push_manifest(
    target: &Target,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) -> Response {
    let resp = put_manifest(target, repo, reference, manifest).await;
    resp.expect_status(201);
    resp
}

/// Puts a manifest under `reference` and returns whatever the registry said.
pub async fn put_manifest(
    target: &Target,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) -> Response {
    target
        .seed_client()
        .put(&routes::manifest(repo, reference))
        .header(CONTENT_TYPE, manifest.media_type())
        .body(manifest.bytes.clone())
        .send()
        .await
}

/// Uploads every blob of an image, then its manifest under `reference`.
pub async fn push_image(target: &Target, repo: &str, image: &Image, reference: &str) -> Response {
    for blob in image.blobs() {
        push_blob(target, repo, blob).await;
    }
    push_manifest(target, repo, reference, &image.manifest).await
}

/// Pushes a fresh random image tagged `tag` to the target's repository.
pub async fn seeded_image(target: &Target, tag: &str) -> Image {
    let image = Image::random();
    push_image(target, target.repo(), &image, tag).await;
    image
}
