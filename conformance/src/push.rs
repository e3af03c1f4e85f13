//! Push: blob uploads (monolithic, single POST, chunked, mounted) and
//! manifest uploads, with the errors the spec names for bad input.

use bytes::Bytes;
use http::header::{CONTENT_RANGE, CONTENT_TYPE};
use oci_core::{Algorithm, Digest, ErrorCode, Manifest, media, wire};

use crate::client::{Response, with_query};
use crate::fixtures::{self, Blob, Image};
use crate::routes;
use crate::seed;
use crate::target::Target;

/// Asserts a blob is readable in `repo` with exactly `blob`'s bytes.
pub async fn expect_blob(t: &Target, repo: &str, blob: &Blob) {
    let resp = t
        .client()
        .get(&routes::blob(repo, &blob.digest))
        .send()
        .await;
    resp.expect_status(200);
    assert_eq!(resp.body, blob.data, "{}: body", resp.what);
}

/// Asserts the answer to a completed blob upload: 201, Location, digest.
fn expect_blob_created(resp: &Response, digest: &Digest) {
    resp.expect_status(201)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &digest.to_string());
    resp.location();
}

/// Starts an upload session and returns its location.
pub async fn start_upload(t: &Target) -> Response {
    let resp = t.client().post(&routes::uploads(t.repo())).send().await;
    resp.expect_status(202);
    resp.location();
    resp
}

/// Sends one chunk to an upload session.
pub async fn patch_chunk(t: &Target, location: &str, start: u64, chunk: Bytes) -> Response {
    let end = start + chunk.len() as u64 - 1;
    t.client()
        .patch(location)
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .header(CONTENT_RANGE, format!("{start}-{end}"))
        .body(chunk)
        .send()
        .await
}

/// The chunk size to use: 1 KiB, or the registry's advertised minimum.
fn chunk_size(started: &Response) -> usize {
    let min = started
        .header(wire::OCI_CHUNK_MIN_LENGTH)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    min.max(1024)
}

/// POST then PUT with the whole blob: 201 and the blob is readable.
pub async fn push_blob_monolithic(t: &Target) {
    let blob = Blob::random(3000);
    let started = start_upload(t).await;
    let resp = t
        .client()
        .put(&with_query(
            started.location(),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// A single `POST ?digest=` with the body creates the blob at once: 201.
pub async fn push_blob_single_post(t: &Target) {
    let blob = Blob::random(3000);
    let resp = t
        .client()
        .post(&with_query(
            &routes::uploads(t.repo()),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// Three PATCHes with Content-Range, then a PUT with the digest.
pub async fn push_blob_chunked(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 3);
    let mut location = started.location().to_owned();
    for (i, chunk) in blob.data.chunks(size).enumerate() {
        let start = (i * size) as u64;
        let resp = patch_chunk(t, &location, start, blob.data.slice_ref(chunk)).await;
        resp.expect_status(202)
            .expect_header("range", &wire::upload_range(start + chunk.len() as u64));
        location = resp.location().to_owned();
    }
    let resp = t
        .client()
        .put(&with_query(&location, &format!("digest={}", blob.digest)))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// The last chunk may ride on the closing PUT.
pub async fn push_blob_chunked_last_in_put(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 2);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    let resp = t
        .client()
        .put(&with_query(
            first.location(),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .header(CONTENT_RANGE, format!("{size}-{}", 2 * size - 1))
        .body(blob.data.slice(size..))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// A chunk that does not start where the upload ends: 416.
pub async fn push_blob_chunk_out_of_order(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 3);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    let skipped = (2 * size) as u64;
    patch_chunk(t, first.location(), skipped, blob.data.slice(2 * size..))
        .await
        .expect_status(416);
}

/// GET on an upload session: 204 with the Range received so far.
pub async fn push_blob_upload_status(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 2);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    let status = t.client().get(first.location()).send().await;
    status
        .expect_status(204)
        .expect_header("range", &wire::upload_range(size as u64));
    let location = status.location().to_owned();
    let rest = patch_chunk(t, &location, size as u64, blob.data.slice(size..)).await;
    rest.expect_status(202);
    let resp = t
        .client()
        .put(&with_query(
            rest.location(),
            &format!("digest={}", blob.digest),
        ))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
}

/// Closing an upload with the wrong digest: 400 DIGEST_INVALID.
pub async fn push_blob_digest_mismatch(t: &Target) {
    let blob = Blob::random(1000);
    let wrong = Blob::random(16).digest;
    let started = start_upload(t).await;
    t.client()
        .put(&with_query(started.location(), &format!("digest={wrong}")))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await
        .expect_error(400, ErrorCode::DigestInvalid);
    t.client()
        .head(&routes::blob(t.repo(), &wrong))
        .send()
        .await
        .expect_status(404);
}

/// A blob pushed and read back under a sha512 digest.
pub async fn push_blob_sha512(t: &Target) {
    let blob = Blob::random(2000);
    let digest = blob.digest_with(Algorithm::Sha512);
    let resp = seed::push_blob_as(t, t.repo(), &blob, &digest).await;
    resp.expect_header(wire::DOCKER_CONTENT_DIGEST, &digest.to_string());
    let head = t
        .client()
        .head(&routes::blob(t.repo(), &digest))
        .send()
        .await;
    head.expect_status(200)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &digest.to_string());
}

/// A zero-length blob pushed monolithically, then read back empty.
pub async fn push_blob_empty(t: &Target) {
    let blob = Blob::new(Bytes::new());
    seed::push_blob(t, t.repo(), &blob).await;
    let resp = t
        .client()
        .head(&routes::blob(t.repo(), &blob.digest))
        .send()
        .await;
    resp.expect_status(200).expect_header("content-length", "0");
    expect_blob(t, t.repo(), &blob).await;
}

/// DELETE on an upload session cancels it: 204, then the session is
/// unknown (404 BLOB_UPLOAD_UNKNOWN).
pub async fn push_blob_upload_cancel(t: &Target) {
    let started = start_upload(t).await;
    let first = patch_chunk(t, started.location(), 0, Blob::random(1024).data).await;
    first.expect_status(202);
    let location = first.location().to_owned();
    t.client().delete(&location).send().await.expect_status(204);
    t.client()
        .get(&location)
        .send()
        .await
        .expect_error(404, ErrorCode::BlobUploadUnknown);
}

/// `POST ?mount=&from=` of a blob the other repository has: 201.
pub async fn push_blob_mount(t: &Target) {
    let blob = Blob::random(2500);
    seed::push_blob(t, t.cross_repo(), &blob).await;
    let query = format!("mount={}&from={}", blob.digest, t.cross_repo());
    let resp = t
        .client()
        .post(&with_query(&routes::uploads(t.repo()), &query))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// A mount of a blob the source lacks starts an ordinary session: 202.
pub async fn push_blob_mount_unknown(t: &Target) {
    let blob = Blob::random(1200);
    let query = format!("mount={}&from={}", blob.digest, t.cross_repo());
    let resp = t
        .client()
        .post(&with_query(&routes::uploads(t.repo()), &query))
        .send()
        .await;
    resp.expect_status(202);
    expect_unreserved_upload_id(&resp);
    let done = t
        .client()
        .put(&with_query(
            resp.location(),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await;
    expect_blob_created(&done, &blob.digest);
}

/// Asserts the answer to a manifest PUT: 201, Location, digest.
fn expect_manifest_created(resp: &Response, manifest: &Manifest) {
    resp.expect_status(201)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &manifest.digest().to_string());
    resp.location();
}

async fn image_with_blobs(t: &Target) -> Image {
    let image = Image::random();
    for blob in image.blobs() {
        seed::push_blob(t, t.repo(), blob).await;
    }
    image
}

/// Asserts `reference` resolves to `manifest` in the target repository.
pub async fn expect_manifest(t: &Target, reference: &str, manifest: &Manifest) {
    let resp = crate::pull::get_manifest(t, reference, false).await;
    resp.expect_status(200);
    assert_eq!(resp.body, manifest.bytes, "{}: body", resp.what);
}

/// A manifest PUT by tag: 201, then the tag resolves to it.
pub async fn push_manifest_by_tag(t: &Target) {
    let image = image_with_blobs(t).await;
    let resp = seed::put_manifest(t, t.repo(), "v1", &image.manifest).await;
    expect_manifest_created(&resp, &image.manifest);
    expect_manifest(t, "v1", &image.manifest).await;
}

/// A manifest PUT by its digest: 201, then the digest resolves.
pub async fn push_manifest_by_digest(t: &Target) {
    let image = image_with_blobs(t).await;
    let digest = image.manifest.digest().to_string();
    let resp = seed::put_manifest(t, t.repo(), &digest, &image.manifest).await;
    expect_manifest_created(&resp, &image.manifest);
    expect_manifest(t, &digest, &image.manifest).await;
}

/// A manifest PUT by sha512 digest resolves under that digest.
pub async fn push_manifest_sha512(t: &Target) {
    let image = image_with_blobs(t).await;
    let digest = Digest::of(Algorithm::Sha512, &image.manifest.bytes).to_string();
    let resp = seed::put_manifest(t, t.repo(), &digest, &image.manifest).await;
    resp.expect_status(201)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &digest);
    expect_manifest(t, &digest, &image.manifest).await;
}

/// `PUT …/manifests/<digest>?tag=a&tag=b` creates every tag.
pub async fn push_manifest_several_tags(t: &Target) {
    let image = image_with_blobs(t).await;
    let path = with_query(
        &routes::manifest(t.repo(), &image.manifest.digest().to_string()),
        "tag=one&tag=two&tag=three",
    );
    let resp = t
        .client()
        .put(&path)
        .header(CONTENT_TYPE, image.manifest.media_type())
        .body(image.manifest.bytes.clone())
        .send()
        .await;
    expect_manifest_created(&resp, &image.manifest);
    for tag in ["one", "two", "three"] {
        expect_manifest(t, tag, &image.manifest).await;
    }
}

/// A body that is not a manifest: 400 MANIFEST_INVALID.
pub async fn push_manifest_invalid(t: &Target) {
    t.client()
        .put(&routes::manifest(t.repo(), "broken"))
        .header(CONTENT_TYPE, media::OCI_MANIFEST)
        .body(Bytes::from_static(b"{\"schemaVersion\": 2, \"layers\": 7"))
        .send()
        .await
        .expect_error(400, ErrorCode::ManifestInvalid);
}

/// A manifest naming blobs the repository lacks: 400 MANIFEST_BLOB_UNKNOWN.
pub async fn push_manifest_blob_unknown(t: &Target) {
    let image = Image::random();
    seed::put_manifest(t, t.repo(), "orphan", &image.manifest)
        .await
        .expect_error(400, ErrorCode::ManifestBlobUnknown);
}

/// A manifest PUT under a digest it does not hash to: 400 DIGEST_INVALID.
pub async fn push_manifest_digest_mismatch(t: &Target) {
    let image = image_with_blobs(t).await;
    let wrong = Blob::random(16).digest.to_string();
    seed::put_manifest(t, t.repo(), &wrong, &image.manifest)
        .await
        .expect_error(400, ErrorCode::DigestInvalid);
}

/// A manifest with a subject: 201 and `OCI-Subject` names the subject.
pub async fn push_manifest_with_subject(t: &Target) {
    let subject = seed::seeded_image(t, "subject").await;
    let artifact = Image::artifact(&subject.manifest, "application/vnd.example.sbom");
    for blob in artifact.blobs() {
        seed::push_blob(t, t.repo(), blob).await;
    }
    let digest = artifact.manifest.digest().to_string();
    let resp = seed::put_manifest(t, t.repo(), &digest, &artifact.manifest).await;
    expect_manifest_created(&resp, &artifact.manifest);
    resp.expect_header(wire::OCI_SUBJECT, &subject.manifest.digest().to_string());
}

/// A manifest whose subject does not exist (yet) is still accepted.
pub async fn push_manifest_with_missing_subject(t: &Target) {
    let absent = Image::random();
    let artifact = Image::artifact(&absent.manifest, "application/vnd.example.sig");
    for blob in artifact.blobs() {
        seed::push_blob(t, t.repo(), blob).await;
    }
    let digest = artifact.manifest.digest().to_string();
    let resp = seed::put_manifest(t, t.repo(), &digest, &artifact.manifest).await;
    expect_manifest_created(&resp, &artifact.manifest);
}

/// An index whose children exist: 201 by tag.
pub async fn push_index(t: &Target) {
    let a = seed::seeded_image(t, "a").await;
    let b = seed::seeded_image(t, "b").await;
    let index = fixtures::index(&[&a.manifest, &b.manifest], None);
    let resp = seed::put_manifest(t, t.repo(), "both", &index).await;
    expect_manifest_created(&resp, &index);
    expect_manifest(t, "both", &index).await;
}

/// The upload id of a session `Location`: its last path segment.
pub fn upload_id_of(location: &str) -> &str {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default()
}

/// Asserts a session `Location`'s id is non-empty and holds only
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`), so that no client's URL
/// handling (decoding, normalising) can change it.
pub fn expect_unreserved_upload_id(resp: &Response) {
    let location = resp.location();
    let id = upload_id_of(location);
    assert!(
        oci_core::upload_id::is_valid(id),
        "{}: upload id {id:?} of Location {location:?} is empty or holds characters \
         outside A-Z a-z 0-9 - . _ ~",
        resp.what
    );
}

/// Every upload id handed out (on POST, after each PATCH, on a status GET)
/// holds only unreserved characters.
pub async fn push_blob_upload_id_unreserved(t: &Target) {
    let started = start_upload(t).await;
    expect_unreserved_upload_id(&started);
    let size = chunk_size(&started);
    let blob = Blob::random(size * 2);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    expect_unreserved_upload_id(&first);
    let status = t.client().get(first.location()).send().await;
    status.expect_status(204);
    expect_unreserved_upload_id(&status);
    let resp = t
        .client()
        .put(&with_query(
            status.location(),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .header(CONTENT_RANGE, format!("{size}-{}", 2 * size - 1))
        .body(blob.data.slice(size..))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
}

/// A first chunk that does not start at byte 0: 416, as in the official
/// suite's out-of-order check (POST with `Content-Length: 0`, then the
/// second chunk).
pub async fn push_blob_chunk_out_of_order_first(t: &Target) {
    let started = t
        .client()
        .post(&routes::uploads(t.repo()))
        .header(http::header::CONTENT_LENGTH, "0")
        .send()
        .await;
    started.expect_status(202);
    let size = chunk_size(&started);
    let blob = Blob::random(size * 2);
    let resp = patch_chunk(t, started.location(), size as u64, blob.data.slice(size..)).await;
    resp.expect_status(416);
}

/// The same chunk sent twice: the second is refused with 416, and the
/// upload still completes from where it stands.
pub async fn push_blob_chunk_repeated(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 2);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    let location = first.location().to_owned();
    patch_chunk(t, &location, 0, blob.data.slice(..size))
        .await
        .expect_status(416);
    let status = t.client().get(&location).send().await;
    status
        .expect_status(204)
        .expect_header("range", &wire::upload_range(size as u64));
    let rest = patch_chunk(t, status.location(), size as u64, blob.data.slice(size..)).await;
    rest.expect_status(202);
    let resp = t
        .client()
        .put(&with_query(
            rest.location(),
            &format!("digest={}", blob.digest),
        ))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// An upload left after a chunk and picked up again by a fresh client:
/// GET on the session answers 204 with `Range` and `Location`, and the
/// upload finishes from that `Location`.
pub async fn push_blob_upload_resume(t: &Target) {
    let started = start_upload(t).await;
    let size = chunk_size(&started);
    let blob = Blob::random(size * 3);
    let first = patch_chunk(t, started.location(), 0, blob.data.slice(..size)).await;
    first.expect_status(202);
    let second = patch_chunk(
        t,
        first.location(),
        size as u64,
        blob.data.slice(size..2 * size),
    )
    .await;
    second.expect_status(202);
    // A new client, as after a restart, with only the last Location.
    let fresh = t.client().fresh();
    let status = fresh.get(second.location()).send().await;
    status
        .expect_status(204)
        .expect_header("range", &wire::upload_range(2 * size as u64));
    assert!(status.body.is_empty(), "{}: 204 with a body", status.what);
    let resp = fresh
        .put(&with_query(
            status.location(),
            &format!("digest={}", blob.digest),
        ))
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .header(CONTENT_RANGE, format!("{}-{}", 2 * size, 3 * size - 1))
        .body(blob.data.slice(2 * size..))
        .send()
        .await;
    expect_blob_created(&resp, &blob.digest);
    expect_blob(t, t.repo(), &blob).await;
}

/// `POST ?mount=` without `from`: a registry with automatic content
/// discovery mounts the blob (201); one without opens a session (202)
/// that then takes the blob. Both are the spec's.
pub async fn push_blob_mount_without_from(t: &Target) {
    let blob = Blob::random(2200);
    seed::push_blob(t, t.cross_repo(), &blob).await;
    let query = format!("mount={}", blob.digest);
    let resp = t
        .client()
        .post(&with_query(&routes::uploads(t.repo()), &query))
        .send()
        .await;
    match resp.status.as_u16() {
        201 => expect_blob_created(&resp, &blob.digest),
        202 => {
            expect_unreserved_upload_id(&resp);
            let done = t
                .client()
                .put(&with_query(
                    resp.location(),
                    &format!("digest={}", blob.digest),
                ))
                .header(CONTENT_TYPE, media::OCTET_STREAM)
                .body(blob.data.clone())
                .send()
                .await;
            expect_blob_created(&done, &blob.digest);
        }
        _ => panic!(
            "{}: expected 201 (mounted) or 202 (a session), got {} with body {:?}",
            resp.what,
            resp.status,
            resp.body_text()
        ),
    }
    expect_blob(t, t.repo(), &blob).await;
}

/// Every error an upload or a manifest write answers with a 4xx carries
/// the spec's JSON error body.
pub async fn push_errors_are_spec_json(t: &Target) {
    let blob = Blob::random(1000);
    let wrong = Blob::random(16).digest;
    let mut answers = Vec::new();
    // A digest that does not match.
    let started = start_upload(t).await;
    answers.push(
        t.client()
            .put(&with_query(started.location(), &format!("digest={wrong}")))
            .header(CONTENT_TYPE, media::OCTET_STREAM)
            .body(blob.data.clone())
            .send()
            .await,
    );
    // A chunk out of order.
    let started = start_upload(t).await;
    answers.push(patch_chunk(t, started.location(), 10, blob.data.slice(10..)).await);
    // An unknown session.
    let unknown_session = format!("{}0123456789abcdef", routes::uploads(t.repo()));
    answers.push(t.client().get(&unknown_session).send().await);
    // A manifest that is not JSON, one naming missing blobs, one under a
    // reference that cannot be a tag.
    answers.push(
        t.client()
            .put(&routes::manifest(t.repo(), "broken"))
            .header(CONTENT_TYPE, media::OCI_MANIFEST)
            .body(bytes::Bytes::from_static(
                b"{\"schemaVersion\": 2, \"layers\": 7",
            ))
            .send()
            .await,
    );
    let image = Image::random();
    answers.push(seed::put_manifest(t, t.repo(), "orphan", &image.manifest).await);
    answers.push(
        t.client()
            .put(&routes::manifest(t.repo(), "sha256:totallywrong"))
            .header(CONTENT_TYPE, media::OCI_MANIFEST)
            .body(image.manifest.bytes.clone())
            .send()
            .await,
    );
    for resp in &answers {
        assert!(
            resp.status.is_client_error(),
            "{}: expected a 4xx, got {}",
            resp.what,
            resp.status
        );
        resp.expect_spec_error_body();
    }
}
