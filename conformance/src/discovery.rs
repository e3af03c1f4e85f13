//! Content discovery: the tags list with its `n`/`last` pagination and the
//! referrers API with its `artifactType` filter.

use oci_core::{ErrorCode, Manifest, media, wire};
use serde_json::Value;

use crate::client::{Response, with_query};
use crate::fixtures::{self, Blob, Image};
use crate::routes;
use crate::seed;
use crate::target::Target;

/// The tags the suite pushes for the listing checks, in lexical order.
pub const TAGS: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];

/// Pushes one image under every tag of [`TAGS`] (in a scrambled order).
pub async fn seed_tags(t: &Target) -> Image {
    let image = seed::seeded_image(t, TAGS[3]).await;
    for tag in [TAGS[1], TAGS[4], TAGS[0], TAGS[2]] {
        seed::push_manifest(t, t.repo(), tag, &image.manifest).await;
    }
    image
}

/// The `tags` array of a tags-list response, after checking its `name`.
pub fn tags_of(t: &Target, resp: &Response) -> Vec<String> {
    resp.expect_status(200);
    let body = resp.json();
    assert_eq!(body["name"], t.repo(), "{}: name", resp.what);
    match &body["tags"] {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("{}: tags is not an array: {other}", resp.what),
    }
}

/// The tags list holds every pushed tag, in lexical order.
pub async fn discovery_tags_list(t: &Target) {
    seed_tags(t).await;
    let resp = t.client().get(&routes::tags(t.repo())).send().await;
    assert_eq!(tags_of(t, &resp), TAGS, "{}: tags", resp.what);
}

/// `?n=2` pages through the tags: two at a time, a `Link` to the next
/// page until the last, and every tag exactly once.
pub async fn discovery_tags_paginated(t: &Target) {
    seed_tags(t).await;
    let mut next = Some(with_query(&routes::tags(t.repo()), "n=2"));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let resp = t.client().get(&url).send().await;
        let page = tags_of(t, &resp);
        assert!(
            page.len() <= 2,
            "{}: {} tags for n=2",
            resp.what,
            page.len()
        );
        seen.extend(page);
        pages += 1;
        assert!(
            pages <= TAGS.len(),
            "{}: pagination does not end",
            resp.what
        );
        next = resp.header("link").map(|link| {
            wire::parse_link_next(link)
                .unwrap_or_else(|| panic!("{}: Link without rel=next: {link}", resp.what))
        });
    }
    assert_eq!(seen, TAGS, "tags across pages");
    assert_eq!(pages, 3, "pages for 5 tags, 2 a page");
}

/// `?last=` starts the list after that tag.
pub async fn discovery_tags_last(t: &Target) {
    seed_tags(t).await;
    let url = with_query(&routes::tags(t.repo()), &format!("n=10&last={}", TAGS[1]));
    let resp = t.client().get(&url).send().await;
    assert_eq!(tags_of(t, &resp), &TAGS[2..], "{}: tags", resp.what);
}

/// The tags of a repository nobody pushed to: 404 NAME_UNKNOWN.
pub async fn discovery_tags_unknown_repository(t: &Target) {
    t.client()
        .get(&routes::tags(&t.fresh_repo()))
        .send()
        .await
        .expect_error(404, ErrorCode::NameUnknown);
}

/// A subject and two artifacts of different types referring to it.
pub struct Referrers {
    /// The subject image.
    pub subject: Image,
    /// An artifact of type [`SBOM`].
    pub sbom: Image,
    /// An artifact of type [`SIGNATURE`].
    pub signature: Image,
}

/// The artifact type of the first seeded referrer.
pub const SBOM: &str = "application/vnd.example.sbom.v1";
/// The artifact type of the second seeded referrer.
pub const SIGNATURE: &str = "application/vnd.example.signature.v1";

/// Pushes a subject image and two artifacts that refer to it.
pub async fn seed_referrers(t: &Target) -> Referrers {
    let subject = seed::seeded_image(t, "subject").await;
    let sbom = Image::artifact(&subject.manifest, SBOM);
    let signature = Image::artifact(&subject.manifest, SIGNATURE);
    for artifact in [&sbom, &signature] {
        let digest = artifact.manifest.digest().to_string();
        seed::push_image(t, t.repo(), artifact, &digest).await;
    }
    Referrers {
        subject,
        sbom,
        signature,
    }
}

/// GET of the referrers of `subject`, with an optional query.
pub async fn get_referrers(t: &Target, subject: &Manifest, query: Option<&str>) -> Response {
    let path = routes::referrers(t.repo(), subject.digest());
    let path = match query {
        Some(q) => with_query(&path, q),
        None => path,
    };
    t.client().get(&path).send().await
}

/// The descriptors of a referrers response, after checking it is an index.
pub fn referrer_descriptors(resp: &Response) -> Vec<Value> {
    resp.expect_status(200);
    assert_eq!(
        media::essence(resp.require_header("content-type")),
        media::OCI_INDEX,
        "{}: Content-Type",
        resp.what
    );
    let body = resp.json();
    assert_eq!(body["schemaVersion"], 2, "{}: schemaVersion", resp.what);
    assert_eq!(
        body["mediaType"],
        media::OCI_INDEX,
        "{}: mediaType",
        resp.what
    );
    match &body["manifests"] {
        Value::Array(items) => items.clone(),
        other => panic!("{}: manifests is not an array: {other}", resp.what),
    }
}

/// Asserts `descriptors` describe exactly `artifacts`, in any order.
fn expect_referrers(resp: &Response, descriptors: &[Value], artifacts: &[(&Image, &str)]) {
    assert_eq!(
        descriptors.len(),
        artifacts.len(),
        "{}: referrers {descriptors:?}",
        resp.what
    );
    for (artifact, artifact_type) in artifacts {
        let digest = artifact.manifest.digest().to_string();
        let found = descriptors
            .iter()
            .find(|d| d["digest"] == digest.as_str())
            .unwrap_or_else(|| panic!("{}: {digest} is not listed", resp.what));
        assert_eq!(found["mediaType"], media::OCI_MANIFEST, "{}", resp.what);
        assert_eq!(
            found["size"],
            artifact.manifest.bytes.len(),
            "{}",
            resp.what
        );
        assert_eq!(found["artifactType"], *artifact_type, "{}", resp.what);
        assert!(
            found["annotations"][oci_core::testkit::ARTIFACT_ANNOTATION].is_string(),
            "{}: the artifact's annotations are not copied",
            resp.what
        );
    }
}

/// The referrers of a subject list both artifacts with their types.
pub async fn discovery_referrers(t: &Target) {
    let r = seed_referrers(t).await;
    let resp = get_referrers(t, &r.subject.manifest, None).await;
    let descriptors = referrer_descriptors(&resp);
    expect_referrers(
        &resp,
        &descriptors,
        &[(&r.sbom, SBOM), (&r.signature, SIGNATURE)],
    );
}

/// `?artifactType=` keeps the matching artifacts and says it filtered.
pub async fn discovery_referrers_filtered(t: &Target) {
    let r = seed_referrers(t).await;
    let query = format!("artifactType={}", wire::encode_query_value(SBOM));
    let resp = get_referrers(t, &r.subject.manifest, Some(&query)).await;
    let descriptors = referrer_descriptors(&resp);
    resp.expect_header(wire::OCI_FILTERS_APPLIED, "artifactType");
    expect_referrers(&resp, &descriptors, &[(&r.sbom, SBOM)]);
}

/// An index with a subject is listed among the subject's referrers with
/// the index media type and its artifact type.
pub async fn discovery_referrers_index_artifact(t: &Target) {
    let subject = seed::seeded_image(t, "subject").await;
    let child = seed::seeded_image(t, "child").await;
    let index = fixtures::index(&[&child.manifest], Some(&subject.manifest));
    let digest = index.digest().to_string();
    seed::push_manifest(t, t.repo(), &digest, &index).await;
    let resp = get_referrers(t, &subject.manifest, None).await;
    let descriptors = referrer_descriptors(&resp);
    assert_eq!(descriptors.len(), 1, "{}: {descriptors:?}", resp.what);
    let d = &descriptors[0];
    assert_eq!(d["digest"], digest.as_str(), "{}", resp.what);
    assert_eq!(d["mediaType"], media::OCI_INDEX, "{}", resp.what);
    assert_eq!(d["size"], index.bytes.len(), "{}", resp.what);
    assert_eq!(
        d["artifactType"],
        fixtures::INDEX_ARTIFACT_TYPE,
        "{}",
        resp.what
    );
}

/// The referrers of a digest nothing refers to: 200 with an empty index.
pub async fn discovery_referrers_unknown_subject(t: &Target) {
    seed::seeded_image(t, "unrelated").await;
    let absent = Manifest::new(media::OCI_MANIFEST, Blob::random(64).data);
    let resp = get_referrers(t, &absent, None).await;
    assert!(
        referrer_descriptors(&resp).is_empty(),
        "{}: referrers of an unknown subject",
        resp.what
    );
}

/// `?n=0`: no tags (an empty or absent list), and no `Link` to a next page
/// that would again hold none.
pub async fn discovery_tags_n_zero(t: &Target) {
    seed_tags(t).await;
    let resp = t
        .client()
        .get(&with_query(&routes::tags(t.repo()), "n=0"))
        .send()
        .await;
    assert!(tags_of(t, &resp).is_empty(), "{}: tags for n=0", resp.what);
}

/// `?last=` at or past the last tag: an empty list and no `Link`.
pub async fn discovery_tags_last_past_end(t: &Target) {
    seed_tags(t).await;
    for last in [TAGS[4], "zulu"] {
        let url = with_query(&routes::tags(t.repo()), &format!("n=2&last={last}"));
        let resp = t.client().get(&url).send().await;
        assert!(tags_of(t, &resp).is_empty(), "{}: tags", resp.what);
        assert_eq!(resp.header("link"), None, "{}: Link", resp.what);
    }
}

/// `?last=` naming no tag: the list starts after where it would sort.
pub async fn discovery_tags_last_not_a_tag(t: &Target) {
    seed_tags(t).await;
    let url = with_query(&routes::tags(t.repo()), "n=10&last=bz");
    let resp = t.client().get(&url).send().await;
    assert_eq!(tags_of(t, &resp), &TAGS[2..], "{}: tags", resp.what);
    let url = with_query(&routes::tags(t.repo()), "last=0");
    let resp = t.client().get(&url).send().await;
    assert_eq!(tags_of(t, &resp), TAGS, "{}: tags", resp.what);
}

/// The referrers of a digest nothing refers to, filtered by an artifact
/// type: 200 with an empty index.
pub async fn discovery_referrers_unknown_subject_filtered(t: &Target) {
    seed_referrers(t).await;
    let absent = Manifest::new(media::OCI_MANIFEST, Blob::random(64).data);
    let query = format!("artifactType={}", wire::encode_query_value(SBOM));
    let resp = get_referrers(t, &absent, Some(&query)).await;
    assert!(
        referrer_descriptors(&resp).is_empty(),
        "{}: referrers of an unknown subject",
        resp.what
    );
}

/// A filter no referrer matches: 200 with an empty index, and the filter
/// reported as applied.
pub async fn discovery_referrers_filter_matches_none(t: &Target) {
    let r = seed_referrers(t).await;
    let query = format!(
        "artifactType={}",
        wire::encode_query_value("application/vnd.example.none")
    );
    let resp = get_referrers(t, &r.subject.manifest, Some(&query)).await;
    assert!(
        referrer_descriptors(&resp).is_empty(),
        "{}: referrers",
        resp.what
    );
    resp.expect_header(wire::OCI_FILTERS_APPLIED, "artifactType");
}
