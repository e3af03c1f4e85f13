//! Pull: reading manifests and blobs back, by tag and by digest, whole and
//! by range, and the errors for content that does not exist.

use http::header::{ACCEPT, RANGE};
use oci_core::{Digest, ErrorCode, Manifest, media, wire};

use crate::client::Response;
use crate::fixtures::{self, Blob};
use crate::routes;
use crate::seed;
use crate::target::Target;

/// Asserts the headers every manifest response carries.
fn expect_manifest_headers(resp: &Response, manifest: &Manifest) {
    resp.expect_status(200)
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &manifest.digest().to_string())
        .expect_header("content-length", &manifest.bytes.len().to_string());
    let content_type = resp.require_header("content-type");
    assert_eq!(
        media::essence(content_type),
        manifest.media_type(),
        "{}: Content-Type",
        resp.what
    );
}

/// GET (or HEAD) of a manifest in the target repository, accepting every
/// manifest media type.
pub async fn get_manifest(t: &Target, reference: &str, head: bool) -> Response {
    let path = routes::manifest(t.repo(), reference);
    let req = if head {
        t.client().head(&path)
    } else {
        t.client().get(&path)
    };
    req.header(ACCEPT, media::MANIFEST_TYPES.join(", "))
        .send()
        .await
}

/// `GET /v2/` answers 200: the registry implements the API.
pub async fn pull_api_root(t: &Target) {
    t.client()
        .get(routes::API_ROOT)
        .send()
        .await
        .expect_status(200);
}

/// HEAD of a manifest by tag: 200, digest, length, type, no body.
pub async fn pull_manifest_head_by_tag(t: &Target) {
    let image = seed::seeded_image(t, "head-tag").await;
    let resp = get_manifest(t, "head-tag", true).await;
    expect_manifest_headers(&resp, &image.manifest);
    assert!(resp.body.is_empty(), "{}: HEAD returned a body", resp.what);
}

/// GET of a manifest by tag returns its exact bytes.
pub async fn pull_manifest_get_by_tag(t: &Target) {
    let image = seed::seeded_image(t, "get-tag").await;
    let resp = get_manifest(t, "get-tag", false).await;
    expect_manifest_headers(&resp, &image.manifest);
    assert_eq!(resp.body, image.manifest.bytes, "{}: body", resp.what);
}

/// HEAD of a manifest by digest.
pub async fn pull_manifest_head_by_digest(t: &Target) {
    let image = seed::seeded_image(t, "head-digest").await;
    let resp = get_manifest(t, &image.manifest.digest().to_string(), true).await;
    expect_manifest_headers(&resp, &image.manifest);
    assert!(resp.body.is_empty(), "{}: HEAD returned a body", resp.what);
}

/// GET of a manifest by digest returns its exact bytes.
pub async fn pull_manifest_get_by_digest(t: &Target) {
    let image = seed::seeded_image(t, "get-digest").await;
    let resp = get_manifest(t, &image.manifest.digest().to_string(), false).await;
    expect_manifest_headers(&resp, &image.manifest);
    assert_eq!(resp.body, image.manifest.bytes, "{}: body", resp.what);
}

/// An index pushed by tag comes back with the index media type.
pub async fn pull_index_by_tag(t: &Target) {
    let a = seed::seeded_image(t, "child-a").await;
    let b = seed::seeded_image(t, "child-b").await;
    let index = fixtures::index(&[&a.manifest, &b.manifest], None);
    seed::push_manifest(t, t.repo(), "multi", &index).await;
    let resp = get_manifest(t, "multi", false).await;
    expect_manifest_headers(&resp, &index);
    assert_eq!(resp.body, index.bytes, "{}: body", resp.what);
}

async fn seeded_blob(t: &Target) -> Blob {
    let blob = Blob::random(4096);
    seed::push_blob(t, t.repo(), &blob).await;
    blob
}

/// HEAD of a blob: 200 with its length and digest, no body.
pub async fn pull_blob_head(t: &Target) {
    let blob = seeded_blob(t).await;
    let resp = t
        .client()
        .head(&routes::blob(t.repo(), &blob.digest))
        .send()
        .await;
    resp.expect_status(200)
        .expect_header("content-length", &blob.size().to_string())
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &blob.digest.to_string());
    assert!(resp.body.is_empty(), "{}: HEAD returned a body", resp.what);
}

/// GET of a blob returns its exact bytes.
pub async fn pull_blob_get(t: &Target) {
    let blob = seeded_blob(t).await;
    let resp = t
        .client()
        .get(&routes::blob(t.repo(), &blob.digest))
        .send()
        .await;
    resp.expect_status(200)
        .expect_header("content-length", &blob.size().to_string())
        .expect_header(wire::DOCKER_CONTENT_DIGEST, &blob.digest.to_string());
    assert_eq!(resp.body, blob.data, "{}: body", resp.what);
}

async fn range_get(t: &Target, digest: &Digest, range: &str) -> Response {
    t.client()
        .get(&routes::blob(t.repo(), digest))
        .header(RANGE, range)
        .send()
        .await
}

/// A bounded range GET: 206, Content-Range, exactly those bytes.
pub async fn pull_blob_range(t: &Target) {
    let blob = seeded_blob(t).await;
    let resp = range_get(t, &blob.digest, "bytes=100-1123").await;
    resp.expect_status(206)
        .expect_header("content-range", &format!("bytes 100-1123/{}", blob.size()))
        .expect_header("content-length", "1024");
    assert_eq!(resp.body, blob.data.slice(100..1124), "{}: body", resp.what);
}

/// An open-ended range GET returns the rest of the blob.
pub async fn pull_blob_range_open_ended(t: &Target) {
    let blob = seeded_blob(t).await;
    let resp = range_get(t, &blob.digest, "bytes=4000-").await;
    resp.expect_status(206).expect_header(
        "content-range",
        &format!("bytes 4000-{}/{}", blob.size() - 1, blob.size()),
    );
    assert_eq!(resp.body, blob.data.slice(4000..), "{}: body", resp.what);
}

/// A range starting past the end is not satisfiable: 416.
pub async fn pull_blob_range_unsatisfiable(t: &Target) {
    let blob = seeded_blob(t).await;
    range_get(t, &blob.digest, "bytes=5000-5100")
        .await
        .expect_status(416);
}

/// An unknown tag: 404 with MANIFEST_UNKNOWN.
pub async fn pull_manifest_unknown_tag(t: &Target) {
    seed::seeded_image(t, "exists").await;
    get_manifest(t, "does-not-exist", false)
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
    get_manifest(t, "does-not-exist", true)
        .await
        .expect_status(404);
}

/// An unknown manifest digest: 404 with MANIFEST_UNKNOWN.
pub async fn pull_manifest_unknown_digest(t: &Target) {
    seed::seeded_image(t, "exists").await;
    let digest = Blob::random(16).digest.to_string();
    get_manifest(t, &digest, false)
        .await
        .expect_error(404, ErrorCode::ManifestUnknown);
    get_manifest(t, &digest, true).await.expect_status(404);
}

/// An unknown blob: 404 with BLOB_UNKNOWN on GET, bare 404 on HEAD.
pub async fn pull_blob_unknown(t: &Target) {
    seed::seeded_image(t, "exists").await;
    let path = routes::blob(t.repo(), &Blob::random(16).digest);
    t.client()
        .get(&path)
        .send()
        .await
        .expect_error(404, ErrorCode::BlobUnknown);
    t.client().head(&path).send().await.expect_status(404);
}

/// A repository nobody pushed to: 404 for its manifests, with a spec code.
pub async fn pull_unknown_repository(t: &Target) {
    let resp = t
        .client()
        .get(&routes::manifest(&t.fresh_repo(), "latest"))
        .send()
        .await;
    resp.expect_status(404);
    let code = resp.json()["errors"][0]["code"].as_str().map(str::to_owned);
    assert!(
        matches!(
            code.as_deref(),
            Some("NAME_UNKNOWN") | Some("MANIFEST_UNKNOWN")
        ),
        "{}: expected NAME_UNKNOWN or MANIFEST_UNKNOWN, got {code:?}",
        resp.what
    );
}

/// A reference that is neither a valid tag nor a digest, as the official
/// suite's `nonexistentManifest`.
pub const INVALID_REFERENCE: &str = ".INVALID_MANIFEST_NAME";

/// GET and HEAD of a manifest by a reference that cannot name one (neither
/// a tag nor a digest): 404 MANIFEST_UNKNOWN, as for any manifest that
/// does not exist.
pub async fn pull_manifest_invalid_reference(t: &Target) {
    seed::seeded_image(t, "exists").await;
    for reference in [INVALID_REFERENCE, "-dash-first", "sha256:totallywrong"] {
        get_manifest(t, reference, false)
            .await
            .expect_error(404, ErrorCode::ManifestUnknown);
        get_manifest(t, reference, true).await.expect_status(404);
    }
}

/// Every error a read answers with a 4xx carries the spec's JSON error body
/// (HEAD answers carry no body).
pub async fn pull_errors_are_spec_json(t: &Target) {
    seed::seeded_image(t, "exists").await;
    let unknown = Blob::random(16).digest;
    let paths = [
        routes::manifest(t.repo(), "does-not-exist"),
        routes::manifest(t.repo(), &unknown.to_string()),
        routes::manifest(t.repo(), INVALID_REFERENCE),
        routes::blob(t.repo(), &unknown),
        routes::manifest(&t.fresh_repo(), "latest"),
        routes::tags(&t.fresh_repo()),
        format!("/v2/{}/blobs/sha256:not-a-digest", t.repo()),
        "/v2/UPPER/case/manifests/latest".to_owned(),
    ];
    for path in &paths {
        let resp = t.client().get(path).send().await;
        assert!(
            resp.status.is_client_error(),
            "{}: expected a 4xx, got {}",
            resp.what,
            resp.status
        );
        resp.expect_spec_error_body();
    }
}
