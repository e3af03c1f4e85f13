//! The suite against Debian's `docker-registry` (CNCF distribution 2.8).
//! Every check runs on its own registry process.
//!
//! Distribution 2.8 predates parts of the v1.1 spec. Those checks are not
//! in the list below; each has its own test asserting what distribution
//! actually does, with a comment, so a change in its behaviour shows up.

use oci_conformance::{Config, Target, distribution};

async fn target() -> Target {
    distribution::target(Config::from_env())
        .await
        .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"))
}

oci_conformance::conformance_tests!(target;
    pull::pull_api_root,
    pull::pull_manifest_head_by_tag,
    pull::pull_manifest_get_by_tag,
    pull::pull_manifest_head_by_digest,
    pull::pull_manifest_get_by_digest,
    pull::pull_index_by_tag,
    pull::pull_blob_head,
    pull::pull_blob_get,
    pull::pull_blob_range,
    pull::pull_blob_range_open_ended,
    pull::pull_manifest_unknown_tag,
    pull::pull_manifest_unknown_digest,
    pull::pull_blob_unknown,
    pull::pull_unknown_repository,
    push::push_blob_monolithic,
    push::push_blob_chunked,
    push::push_blob_chunked_last_in_put,
    push::push_blob_upload_status,
    push::push_blob_upload_resume,
    push::push_blob_upload_id_unreserved,
    push::push_blob_digest_mismatch,
    push::push_blob_empty,
    push::push_blob_upload_cancel,
    push::push_blob_mount,
    push::push_blob_mount_unknown,
    push::push_blob_mount_without_from,
    push::push_manifest_by_tag,
    push::push_manifest_by_digest,
    push::push_manifest_invalid,
    push::push_manifest_blob_unknown,
    push::push_manifest_digest_mismatch,
    push::push_manifest_with_missing_subject,
    push::push_index,
    discovery::discovery_tags_unknown_repository,
    management::management_delete_manifest,
    management::management_delete_manifest_untags,
    management::management_delete_unknown_manifest,
    management::management_delete_blobs,
    management::management_delete_unknown_blob,
);

// ---------------------------------------------------------------------------
// Known differences of distribution 2.8, each asserted as it behaves.
// ---------------------------------------------------------------------------

use http::header::CONTENT_TYPE;
use oci_conformance::client::with_query;
use oci_conformance::fixtures::{Blob, Image};
use oci_conformance::{discovery, pull, push, routes, seed};
use oci_core::{Algorithm, Digest, ErrorCode, media, wire};

/// Distribution 2.8 ignores `?digest=` on POST: it opens a session (202)
/// instead of creating the blob, which the spec allows; the client then
/// finishes with PUT.
#[tokio::test]
async fn push_blob_single_post() {
    let t = target().await;
    let blob = Blob::random(3000);
    let post = with_query(
        &routes::uploads(t.repo()),
        &format!("digest={}", blob.digest),
    );
    let resp = t
        .client()
        .post(&post)
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .body(blob.data.clone())
        .send()
        .await;
    resp.expect_status(202);
    t.client()
        .head(&routes::blob(t.repo(), &blob.digest))
        .send()
        .await
        .expect_status(404);
    let done = t
        .client()
        .put(&with_query(
            resp.location(),
            &format!("digest={}", blob.digest),
        ))
        .body(blob.data.clone())
        .send()
        .await;
    done.expect_status(201);
    push::expect_blob(&t, t.repo(), &blob).await;
}

/// Distribution 2.8 does not check a chunk's Content-Range: a chunk that
/// leaves a gap is appended (202) instead of refused with 416.
#[tokio::test]
async fn push_blob_chunk_out_of_order() {
    let t = target().await;
    let started = push::start_upload(&t).await;
    let blob = Blob::random(3072);
    let first = push::patch_chunk(&t, started.location(), 0, blob.data.slice(..1024)).await;
    first.expect_status(202);
    let gap = push::patch_chunk(&t, first.location(), 2048, blob.data.slice(2048..)).await;
    gap.expect_status(202)
        .expect_header("range", &wire::upload_range(2048));
}

/// Distribution 2.8 answers an unsatisfiable range with 416 but declares the
/// blob's length as Content-Length and sends a shorter body, so the
/// response breaks off.
#[tokio::test]
async fn pull_blob_range_unsatisfiable() {
    let t = target().await;
    let blob = Blob::random(4096);
    seed::push_blob(&t, t.repo(), &blob).await;
    let resp = t
        .client()
        .get(&routes::blob(t.repo(), &blob.digest))
        .header(http::header::RANGE, "bytes=5000-5100")
        .send()
        .await;
    assert_eq!(resp.status.as_u16(), 416, "{}", resp.what);
    assert_eq!(resp.header("content-length"), Some("4096"), "{}", resp.what);
    assert!(resp.body_error.is_some(), "{}: body read whole", resp.what);
}

/// Distribution 2.8 stores a blob pushed under a sha512 digest and serves
/// it by that digest, but reports its sha256 digest in Docker-Content-Digest.
#[tokio::test]
async fn push_blob_sha512() {
    let t = target().await;
    let blob = Blob::random(2000);
    let digest = blob.digest_with(Algorithm::Sha512);
    seed::push_blob_as(&t, t.repo(), &blob, &digest).await;
    t.client()
        .head(&routes::blob(t.repo(), &digest))
        .send()
        .await
        .expect_status(200)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &blob.digest.to_string());
}

async fn image_with_blobs(t: &Target) -> Image {
    let image = Image::random();
    for blob in image.blobs() {
        seed::push_blob(t, t.repo(), blob).await;
    }
    image
}

/// Distribution 2.8 hashes manifests with sha256 only: a PUT under the
/// sha512 digest is refused as DIGEST_INVALID.
#[tokio::test]
async fn push_manifest_sha512() {
    let t = target().await;
    let image = image_with_blobs(&t).await;
    let digest = Digest::of(Algorithm::Sha512, &image.manifest.bytes).to_string();
    seed::put_manifest(&t, t.repo(), &digest, &image.manifest)
        .await
        .expect_error(400, ErrorCode::DigestInvalid);
}

/// Distribution 2.8 ignores `?tag=` on a manifest PUT: the manifest is
/// stored by digest but no tag is created.
#[tokio::test]
async fn push_manifest_several_tags() {
    let t = target().await;
    let image = image_with_blobs(&t).await;
    let digest = image.manifest.digest().to_string();
    let path = with_query(&routes::manifest(t.repo(), &digest), "tag=one&tag=two");
    t.client()
        .put(&path)
        .header(CONTENT_TYPE, image.manifest.media_type())
        .body(image.manifest.bytes.clone())
        .send()
        .await
        .expect_status(201);
    push::expect_manifest(&t, &digest, &image.manifest).await;
    for tag in ["one", "two"] {
        pull::get_manifest(&t, tag, false)
            .await
            .expect_error(404, ErrorCode::ManifestUnknown);
    }
}

/// Distribution 2.8 accepts a manifest with a subject but, knowing nothing
/// of referrers, sends no OCI-Subject header.
#[tokio::test]
async fn push_manifest_with_subject() {
    let t = target().await;
    let subject = seed::seeded_image(&t, "subject").await;
    let artifact = Image::artifact(&subject.manifest, "application/vnd.example.sbom");
    let digest = artifact.manifest.digest().to_string();
    let resp = seed::push_image(&t, t.repo(), &artifact, &digest).await;
    assert_eq!(resp.header(wire::OCI_SUBJECT), None, "{}", resp.what);
}

/// Distribution 2.8 lists every tag but in storage order, not lexical order.
#[tokio::test]
async fn discovery_tags_list() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let resp = t.client().get(&routes::tags(t.repo())).send().await;
    let mut tags = discovery::tags_of(&t, &resp);
    tags.sort();
    assert_eq!(tags, discovery::TAGS);
}

/// Distribution 2.8 ignores `n`: one page with every tag and no Link header.
#[tokio::test]
async fn discovery_tags_paginated() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let resp = t
        .client()
        .get(&with_query(&routes::tags(t.repo()), "n=2"))
        .send()
        .await;
    assert_eq!(discovery::tags_of(&t, &resp).len(), discovery::TAGS.len());
    assert_eq!(resp.header("link"), None, "{}", resp.what);
}

/// Distribution 2.8 ignores `last`: every tag comes back.
#[tokio::test]
async fn discovery_tags_last() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let url = with_query(&routes::tags(t.repo()), "n=10&last=bravo");
    let resp = t.client().get(&url).send().await;
    assert_eq!(discovery::tags_of(&t, &resp).len(), discovery::TAGS.len());
}

/// Distribution 2.8 has no referrers API: the route does not exist and
/// answers a plain-text 404 (clients then fall back to the tag schema).
async fn expect_no_referrers_api(t: &Target, subject: &oci_core::Manifest) {
    let resp = discovery::get_referrers(t, subject, None).await;
    resp.expect_status(404);
    assert_eq!(
        resp.header("content-type").map(media::essence).as_deref(),
        Some("text/plain"),
        "{}",
        resp.what
    );
}

/// See [`expect_no_referrers_api`].
#[tokio::test]
async fn discovery_referrers() {
    let t = target().await;
    let r = discovery::seed_referrers(&t).await;
    expect_no_referrers_api(&t, &r.subject.manifest).await;
}

/// See [`expect_no_referrers_api`]; the filter changes nothing.
#[tokio::test]
async fn discovery_referrers_filtered() {
    let t = target().await;
    let r = discovery::seed_referrers(&t).await;
    let query = format!("artifactType={}", wire::encode_query_value(discovery::SBOM));
    let resp = discovery::get_referrers(&t, &r.subject.manifest, Some(&query)).await;
    resp.expect_status(404);
    assert_eq!(
        resp.header(wire::OCI_FILTERS_APPLIED),
        None,
        "{}",
        resp.what
    );
}

/// See [`expect_no_referrers_api`]; an index with a subject is stored
/// but not listed anywhere.
#[tokio::test]
async fn discovery_referrers_index_artifact() {
    let t = target().await;
    let subject = seed::seeded_image(&t, "subject").await;
    let child = seed::seeded_image(&t, "child").await;
    let index = oci_conformance::fixtures::index(&[&child.manifest], Some(&subject.manifest));
    let digest = index.digest().to_string();
    seed::push_manifest(&t, t.repo(), &digest, &index).await;
    expect_no_referrers_api(&t, &subject.manifest).await;
}

/// See [`expect_no_referrers_api`]: 404 rather than an empty index.
#[tokio::test]
async fn discovery_referrers_unknown_subject() {
    let t = target().await;
    let image = seed::seeded_image(&t, "unrelated").await;
    let absent = Image::artifact(&image.manifest, "application/x.none");
    expect_no_referrers_api(&t, &absent.manifest).await;
}

/// Distribution 2.8 cannot delete a tag alone: DELETE by tag answers 400
/// DIGEST_INVALID and the tag stays.
#[tokio::test]
async fn management_delete_tag() {
    let t = target().await;
    let image = seed::seeded_image(&t, "temporary").await;
    t.client()
        .delete(&routes::manifest(t.repo(), "temporary"))
        .send()
        .await
        .expect_error(400, ErrorCode::DigestInvalid);
    push::expect_manifest(&t, "temporary", &image.manifest).await;
}

/// Deleting an artifact works in distribution 2.8 (202, then 404), but with
/// no referrers API there is no list to check.
#[tokio::test]
async fn management_delete_referrer() {
    let t = target().await;
    let r = discovery::seed_referrers(&t).await;
    let digest = r.sbom.manifest.digest().to_string();
    t.client()
        .delete(&routes::manifest(t.repo(), &digest))
        .send()
        .await
        .expect_status(202);
    pull::get_manifest(&t, &digest, false)
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
    expect_no_referrers_api(&t, &r.subject.manifest).await;
}

/// Distribution 2.8 routes manifests only for references that are tags or
/// digests: any other reference matches no route and answers its router's
/// plain-text `404 page not found` rather than the spec's JSON error (a 404
/// all the same, which is what clients and the official suite check).
fn expect_unrouted(resp: &oci_conformance::Response) {
    resp.expect_status(404);
    assert_eq!(
        resp.header("content-type").map(media::essence).as_deref(),
        Some("text/plain"),
        "{}",
        resp.what
    );
}

/// See [`expect_unrouted`]: GET and HEAD by an invalid reference are 404.
#[tokio::test]
async fn pull_manifest_invalid_reference() {
    let t = target().await;
    seed::seeded_image(&t, "exists").await;
    for reference in [pull::INVALID_REFERENCE, "-dash-first"] {
        expect_unrouted(&pull::get_manifest(&t, reference, false).await);
        pull::get_manifest(&t, reference, true)
            .await
            .expect_status(404);
    }
    // A digest-like reference with a bad encoding does match the route (as a
    // tag, `:` and all) and then fails in storage: a 500 UNKNOWN whose detail
    // shows the storage path.
    let resp = pull::get_manifest(&t, "sha256:totallywrong", false).await;
    resp.expect_status(500);
    assert!(
        resp.body_text().contains("UNKNOWN"),
        "{}: {}",
        resp.what,
        resp.body_text()
    );
}

/// See [`expect_unrouted`]: DELETE by an invalid reference is a 404 too.
#[tokio::test]
async fn management_delete_invalid_reference() {
    let t = target().await;
    let image = seed::seeded_image(&t, "exists").await;
    let resp = t
        .client()
        .delete(&routes::manifest(t.repo(), pull::INVALID_REFERENCE))
        .send()
        .await;
    expect_unrouted(&resp);
    push::expect_manifest(&t, "exists", &image.manifest).await;
}

/// Read errors are the spec's JSON, except on paths distribution does not
/// route (an invalid reference): see [`expect_unrouted`].
#[tokio::test]
async fn pull_errors_are_spec_json() {
    let t = target().await;
    seed::seeded_image(&t, "exists").await;
    let unknown = Blob::random(16).digest;
    for path in [
        routes::manifest(t.repo(), "does-not-exist"),
        routes::manifest(t.repo(), &unknown.to_string()),
        routes::blob(t.repo(), &unknown),
        routes::manifest(&t.fresh_repo(), "latest"),
        routes::tags(&t.fresh_repo()),
        format!("/v2/{}/blobs/sha256:not-a-digest", t.repo()),
        "/v2/UPPER/case/manifests/latest".to_owned(),
    ] {
        let resp = t.client().get(&path).send().await;
        assert!(resp.status.is_client_error(), "{}", resp.what);
        resp.expect_spec_error_body();
    }
    let path = routes::manifest(t.repo(), pull::INVALID_REFERENCE);
    expect_unrouted(&t.client().get(&path).send().await);
}

/// Distribution 2.8 does not check a chunk's Content-Range (see
/// [`push_blob_chunk_out_of_order`]): a first chunk declared at an offset
/// is appended at 0.
#[tokio::test]
async fn push_blob_chunk_out_of_order_first() {
    let t = target().await;
    let started = push::start_upload(&t).await;
    let blob = Blob::random(2048);
    push::patch_chunk(&t, started.location(), 1024, blob.data.slice(1024..))
        .await
        .expect_status(202)
        .expect_header("range", &wire::upload_range(1024));
}

/// Distribution 2.8 does not check a chunk's Content-Range: the same chunk
/// sent twice is appended twice (202).
#[tokio::test]
async fn push_blob_chunk_repeated() {
    let t = target().await;
    let started = push::start_upload(&t).await;
    let blob = Blob::random(1024);
    let first = push::patch_chunk(&t, started.location(), 0, blob.data.clone()).await;
    first.expect_status(202);
    push::patch_chunk(&t, first.location(), 0, blob.data.clone())
        .await
        .expect_status(202)
        .expect_header("range", &wire::upload_range(2048));
}

/// Write errors are the spec's JSON; the out-of-order chunk among them is
/// accepted by distribution 2.8 (see [`push_blob_chunk_out_of_order`]), so
/// it is left out here.
#[tokio::test]
async fn push_errors_are_spec_json() {
    let t = target().await;
    let blob = Blob::random(1000);
    let wrong = Blob::random(16).digest;
    let started = push::start_upload(&t).await;
    let mut answers = vec![
        t.client()
            .put(&with_query(started.location(), &format!("digest={wrong}")))
            .header(CONTENT_TYPE, media::OCTET_STREAM)
            .body(blob.data.clone())
            .send()
            .await,
    ];
    let unknown_session = format!("{}0123456789abcdef", routes::uploads(t.repo()));
    answers.push(t.client().get(&unknown_session).send().await);
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
    answers.push(seed::put_manifest(&t, t.repo(), "orphan", &image.manifest).await);
    for resp in &answers {
        assert!(resp.status.is_client_error(), "{}", resp.what);
        resp.expect_spec_error_body();
    }
}

/// Distribution 2.8 ignores `n` (see [`discovery_tags_paginated`]): `n=0`
/// lists every tag.
#[tokio::test]
async fn discovery_tags_n_zero() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let resp = t
        .client()
        .get(&with_query(&routes::tags(t.repo()), "n=0"))
        .send()
        .await;
    assert_eq!(discovery::tags_of(&t, &resp).len(), discovery::TAGS.len());
}

/// Distribution 2.8 ignores `last` (see [`discovery_tags_last`]): a `last`
/// past the end lists every tag, with no Link.
#[tokio::test]
async fn discovery_tags_last_past_end() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let url = with_query(&routes::tags(t.repo()), "n=2&last=zulu");
    let resp = t.client().get(&url).send().await;
    assert_eq!(discovery::tags_of(&t, &resp).len(), discovery::TAGS.len());
    assert_eq!(resp.header("link"), None, "{}", resp.what);
}

/// Distribution 2.8 ignores `last`: one naming no tag lists every tag.
#[tokio::test]
async fn discovery_tags_last_not_a_tag() {
    let t = target().await;
    discovery::seed_tags(&t).await;
    let url = with_query(&routes::tags(t.repo()), "n=10&last=bz");
    let resp = t.client().get(&url).send().await;
    assert_eq!(discovery::tags_of(&t, &resp).len(), discovery::TAGS.len());
}

/// See [`expect_no_referrers_api`]; a filter changes nothing.
#[tokio::test]
async fn discovery_referrers_unknown_subject_filtered() {
    let t = target().await;
    let image = seed::seeded_image(&t, "unrelated").await;
    let absent = Image::artifact(&image.manifest, "application/x.none");
    expect_no_referrers_api(&t, &absent.manifest).await;
}

/// See [`expect_no_referrers_api`]; a filter changes nothing.
#[tokio::test]
async fn discovery_referrers_filter_matches_none() {
    let t = target().await;
    let r = discovery::seed_referrers(&t).await;
    let query = format!(
        "artifactType={}",
        wire::encode_query_value("application/vnd.example.none")
    );
    let resp = discovery::get_referrers(&t, &r.subject.manifest, Some(&query)).await;
    resp.expect_status(404);
}
