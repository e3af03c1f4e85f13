//! Manifest endpoints: HEAD, GET, PUT and DELETE of
//! `/v2/<name>/manifests/<reference>`.

use http::StatusCode;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use oci_core::registry::{get_manifest_ref, resolve_manifest_ref};
use oci_core::{
    BlobStream, Descriptor, Error, ErrorCode, Manifest, ManifestRef, ParsedManifest, RepoName, Tag,
    media, wire,
};

use crate::body;
use crate::ctx::Ctx;
use crate::response::{Answer, Reply};
use crate::routes::manifest_location;

/// HEAD or GET of a manifest by tag or digest: its exact stored bytes.
pub(crate) async fn get(
    ctx: &Ctx<'_>,
    repo: &RepoName,
    reference: &ManifestRef,
    head: bool,
) -> Answer {
    if head {
        let desc = resolve_manifest_ref(ctx.registry, repo, reference).await?;
        check_accept(ctx, &desc.media_type)?;
        return manifest_reply(&desc).done();
    }
    let manifest = get_manifest_ref(ctx.registry, repo, reference).await?;
    check_accept(ctx, manifest.media_type())?;
    manifest_reply(&manifest.descriptor)
        .body(body::full(manifest.bytes))
        .done()
}

/// PUT of a manifest: validated, capped in size, hashed with the
/// reference digest's algorithm, pushed with every requested tag.
pub(crate) async fn put(
    ctx: &Ctx<'_>,
    repo: &RepoName,
    reference: &ManifestRef,
    body: BlobStream,
) -> Answer {
    let cap = ctx.options.max_manifest_size;
    let declared = body::declared_length(ctx.headers)?;
    if declared.is_some_and(|len| len > cap as u64) {
        return Err(body::too_large(cap).into());
    }
    let mut tags = Vec::new();
    for tag in ctx.query.all("tag") {
        let tag: Tag = tag.parse()?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let bytes = body::read_capped(body, cap).await?;
    let content_type = match ctx.headers.get(CONTENT_TYPE) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            Error::new(
                ErrorCode::ManifestInvalid,
                "the Content-Type header is not ASCII",
            )
        })?),
    };
    let parsed = ParsedManifest::parse(content_type, &bytes)?;
    let media_type = match content_type.map(media::essence) {
        Some(ct) => ct,
        None => parsed.media_type().to_owned(),
    };
    let manifest = match reference {
        ManifestRef::Digest(digest) => Manifest::with_digest(media_type, bytes, digest.clone())?,
        ManifestRef::Tag(tag) => {
            if !tags.contains(tag) {
                tags.insert(0, tag.clone());
            }
            Manifest::new(media_type, bytes)
        }
    };
    let desc = ctx.registry.push_manifest(repo, &manifest, &tags).await?;
    let mut reply = Reply::new(StatusCode::CREATED)
        .header(LOCATION, &manifest_location(repo, &desc.digest))
        .header(wire::DOCKER_CONTENT_DIGEST, &desc.digest.to_string());
    if let Some(subject) = parsed.subject() {
        reply = reply.header(wire::OCI_SUBJECT, &subject.digest.to_string());
    }
    reply.done()
}

/// DELETE of a manifest (by digest, with its tags) or of a tag alone: 202.
pub(crate) async fn delete(ctx: &Ctx<'_>, repo: &RepoName, reference: &ManifestRef) -> Answer {
    match reference {
        ManifestRef::Digest(digest) => ctx.registry.delete_manifest(repo, digest).await?,
        ManifestRef::Tag(tag) => ctx.registry.delete_tag(repo, tag).await?,
    }
    Reply::new(StatusCode::ACCEPTED).done()
}

/// The answer to a read or delete of a manifest by a reference that is
/// neither a tag nor a digest: no such manifest can exist, so it is
/// unknown (404 `MANIFEST_UNKNOWN`), as distribution and every client
/// expect of a read.
pub(crate) fn unknown_reference(repo: &RepoName, reference: &str) -> Error {
    Error::new(
        ErrorCode::ManifestUnknown,
        format!("no manifest {reference:?} in {repo}: it is neither a tag nor a digest"),
    )
}

/// The answer to a PUT under a reference that is neither a tag nor a
/// digest: the reference's own parse error (400).
pub(crate) fn invalid_reference(reference: &str) -> Error {
    match reference.parse::<ManifestRef>() {
        Err(e) => e.with_status(400),
        Ok(_) => Error::new(
            ErrorCode::ManifestInvalid,
            format!("{reference:?} is not a valid manifest reference"),
        ),
    }
}

/// The headers of a manifest answer.
fn manifest_reply(desc: &Descriptor) -> Reply {
    Reply::new(StatusCode::OK)
        .header(CONTENT_TYPE, &desc.media_type)
        .header(wire::DOCKER_CONTENT_DIGEST, &desc.digest.to_string())
        .content_length(desc.size)
}

/// Content negotiation: when the client's `Accept` names types, none of
/// them a wildcard and none the stored one, the manifest is unknown *to that
/// client* (404 `MANIFEST_UNKNOWN`), as distribution answers a schema2-only
/// client asking for an OCI index. No `Accept` header accepts anything.
fn check_accept(ctx: &Ctx<'_>, media_type: &str) -> Result<(), oci_core::Error> {
    let accepted: Vec<String> = ctx
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(media::essence)
        .filter(|t| !t.is_empty())
        .collect();
    let acceptable = accepted.is_empty()
        || accepted
            .iter()
            .any(|t| t == "*/*" || t == "application/*" || t == media_type);
    if acceptable {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::ManifestUnknown,
            format!(
                "the manifest exists as {media_type}, which the request's Accept header does not allow"
            ),
        ))
    }
}
