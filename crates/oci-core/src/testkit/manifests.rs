//! Behaviours of manifests: push and pull by digest and tag, validation,
//! index children, sha512, tags moving and going, unknown things.

use super::{
    ImageOptions, build_image, build_index, expect_code, expect_not_found, fresh_repo, must,
    push_docker_image, push_image, random_bytes, tag,
};
use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest};
use crate::error::ErrorCode;
use crate::manifest::Manifest;
use crate::media;
use crate::reference::{RepoName, Tag};
use crate::registry::{ListOptions, Registry, collect_list};

/// Checks that a manifest read back is the one pushed, byte for byte.
fn assert_same_manifest(got: &Manifest, want: &Manifest, what: &str) {
    assert_eq!(got.digest(), want.digest(), "{what}: digest");
    assert_eq!(got.media_type(), want.media_type(), "{what}: media type");
    assert!(
        got.bytes == want.bytes,
        "{what}: the bytes differ from those pushed"
    );
}

/// Checks a resolved descriptor against the manifest pushed.
fn assert_descriptor(got: &Descriptor, want: &Manifest, what: &str) {
    assert_eq!(got.digest, *want.digest(), "{what}: digest");
    assert_eq!(got.size, want.bytes.len() as u64, "{what}: size");
    assert_eq!(got.media_type, want.media_type(), "{what}: media type");
}

/// Checks that `tag` in `repo` points at `want`.
async fn assert_tag(reg: &dyn Registry, repo: &RepoName, tag: &Tag, want: &Manifest) {
    let what = format!("resolve_tag {repo}:{tag}");
    let resolved = must(reg.resolve_tag(repo, tag).await, &what);
    assert_descriptor(&resolved, want, &what);
}

/// Pushes OCI and Docker images and reads them back by digest and by tag,
/// byte for byte, with matching descriptors.
pub async fn manifest_push_pull(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-push-pull");
    let oci_tag = tag("oci");
    let docker_tag = tag("docker");
    let oci = push_image(reg, &repo, Some(&oci_tag)).await;
    let docker = push_docker_image(reg, &repo, Some(&docker_tag)).await;
    for (image, t) in [(&oci, &oci_tag), (&docker, &docker_tag)] {
        let want = &image.manifest;
        let what = format!("get_manifest {}", want.digest());
        let got = must(reg.get_manifest(&repo, want.digest()).await, &what);
        assert_same_manifest(&got, want, &what);
        let what = format!("get_tag {t}");
        let got = must(reg.get_tag(&repo, t).await, &what);
        assert_same_manifest(&got, want, &what);
        let what = format!("resolve_manifest {}", want.digest());
        let got = must(reg.resolve_manifest(&repo, want.digest()).await, &what);
        assert_descriptor(&got, want, &what);
        assert_tag(reg, &repo, t, want).await;
    }
}

/// Pushes a manifest with several tags at once; each points at it.
pub async fn manifest_multi_tag(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-multi-tag");
    let image = build_image(&ImageOptions::default());
    let tags = [tag("one"), tag("two"), tag("three")];
    image.push(reg, &repo, &tags).await;
    for t in &tags {
        assert_tag(reg, &repo, t, &image.manifest).await;
    }
}

/// A manifest whose config or layers are not in the repository is
/// `MANIFEST_BLOB_UNKNOWN`, and is not stored.
pub async fn manifest_missing_blobs(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-missing-blobs");
    let t = tag("missing");
    // The repository exists, but holds none of the image's blobs.
    super::push_bytes(reg, &repo, media::OCTET_STREAM, &random_bytes(10)).await;
    let image = build_image(&ImageOptions::default());
    expect_code(
        reg.push_manifest(&repo, &image.manifest, std::slice::from_ref(&t))
            .await,
        ErrorCode::ManifestBlobUnknown,
        "push_manifest with no blobs pushed",
    );
    // Config and all but the last layer: still one missing.
    let pushed = &image.layers[..image.layers.len() - 1];
    super::push_bytes(reg, &repo, &image.config.media_type, &image.config_bytes).await;
    for (layer, bytes) in pushed.iter().zip(&image.layer_bytes) {
        super::push_bytes(reg, &repo, &layer.media_type, bytes).await;
    }
    expect_code(
        reg.push_manifest(&repo, &image.manifest, std::slice::from_ref(&t))
            .await,
        ErrorCode::ManifestBlobUnknown,
        "push_manifest with its last layer missing",
    );
    expect_code(
        reg.get_manifest(&repo, image.digest()).await,
        ErrorCode::ManifestUnknown,
        "get_manifest of a refused manifest",
    );
    expect_code(
        reg.resolve_tag(&repo, &t).await,
        ErrorCode::ManifestUnknown,
        "resolve_tag of a refused manifest's tag",
    );
}

/// Garbage, truncated JSON, and JSON of the wrong shape is
/// `MANIFEST_INVALID`.
pub async fn manifest_invalid(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-invalid");
    let bodies: [&[u8]; 4] = [
        b"this is not a manifest",
        br#"{"schemaVersion":2,"#,
        b"[1,2]",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":42,"layers":[]}"#,
    ];
    for body in bodies {
        let manifest = Manifest::new(media::OCI_MANIFEST, body.to_vec());
        expect_code(
            reg.push_manifest(&repo, &manifest, &[tag("bad")]).await,
            ErrorCode::ManifestInvalid,
            &format!("push_manifest of {:?}", String::from_utf8_lossy(body)),
        );
    }
}

/// A manifest pushed under a digest its bytes do not have is
/// `DIGEST_INVALID`, and is not stored under either digest.
pub async fn manifest_digest_mismatch(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-digest-mismatch");
    let image = build_image(&ImageOptions::default());
    image.push_blobs(reg, &repo).await;
    let claimed = Digest::sha256(&random_bytes(32));
    let mut lying = image.manifest.clone();
    lying.descriptor.digest = claimed.clone();
    expect_code(
        reg.push_manifest(&repo, &lying, &[]).await,
        ErrorCode::DigestInvalid,
        "push_manifest under a wrong digest",
    );
    for d in [&claimed, image.digest()] {
        expect_code(
            reg.get_manifest(&repo, d).await,
            ErrorCode::ManifestUnknown,
            &format!("get_manifest {d} after a refused push"),
        );
    }
}

/// An index can only be pushed once its children are in the repository
/// (`MANIFEST_BLOB_UNKNOWN` before); after, it reads back by tag, and its
/// children by digest.
pub async fn index_children(reg: &dyn Registry) {
    let repo = fresh_repo("index-children");
    let t = tag("multi");
    let index = build_index(false);
    // One child present, the others not.
    index.children[0].push(reg, &repo, &[]).await;
    expect_code(
        reg.push_manifest(&repo, &index.manifest, std::slice::from_ref(&t))
            .await,
        ErrorCode::ManifestBlobUnknown,
        "push of an index whose children are missing",
    );
    index.push_children(reg, &repo).await;
    index
        .push_manifest(reg, &repo, std::slice::from_ref(&t))
        .await;
    let what = format!("get_tag {t} of an index");
    let got = must(reg.get_tag(&repo, &t).await, &what);
    assert_same_manifest(&got, &index.manifest, &what);
    for child in &index.children {
        let what = format!("get_manifest of index child {}", child.digest());
        let got = must(reg.get_manifest(&repo, child.digest()).await, &what);
        assert_same_manifest(&got, &child.manifest, &what);
    }

    let docker = build_index(true);
    docker.push_children(reg, &repo).await;
    docker.push_manifest(reg, &repo, &[tag("list")]).await;
    let got = must(reg.get_tag(&repo, &tag("list")).await, "get_tag of a list");
    assert_same_manifest(&got, &docker.manifest, "get_tag of a Docker manifest list");
}

/// A manifest pushed under a sha512 digest reads back by that digest.
pub async fn manifest_sha512(reg: &dyn Registry) {
    let repo = fresh_repo("manifest-sha512");
    let image = build_image(&ImageOptions::default());
    image.push_blobs(reg, &repo).await;
    let bytes = image.manifest.bytes.clone();
    let digest = Digest::of(Algorithm::Sha512, &bytes);
    let manifest = must(
        Manifest::with_digest(media::OCI_MANIFEST, bytes, digest.clone()),
        "a sha512 manifest",
    );
    let pushed = must(
        reg.push_manifest(&repo, &manifest, &[]).await,
        "push_manifest by sha512",
    );
    assert_eq!(pushed.digest, digest, "push_manifest by sha512: digest");
    let what = format!("get_manifest {digest}");
    let got = must(reg.get_manifest(&repo, &digest).await, &what);
    assert_same_manifest(&got, &manifest, &what);
    let resolved = must(reg.resolve_manifest(&repo, &digest).await, &what);
    assert_descriptor(&resolved, &manifest, &what);
}

/// Deleting a manifest deletes its tags; it is `MANIFEST_UNKNOWN` after,
/// its blobs stay.
pub async fn delete_manifest(reg: &dyn Registry) {
    let repo = fresh_repo("delete-manifest");
    let keep = push_image(reg, &repo, Some(&tag("keep"))).await;
    let tags = [tag("gone"), tag("gone-too")];
    let image = build_image(&ImageOptions::default());
    image.push(reg, &repo, &tags).await;

    must(
        reg.delete_manifest(&repo, image.digest()).await,
        "delete_manifest",
    );
    expect_code(
        reg.get_manifest(&repo, image.digest()).await,
        ErrorCode::ManifestUnknown,
        "get_manifest after delete_manifest",
    );
    for t in &tags {
        expect_code(
            reg.resolve_tag(&repo, t).await,
            ErrorCode::ManifestUnknown,
            &format!("resolve_tag {t} after its manifest was deleted"),
        );
    }
    let listed = must(
        collect_list(reg.tags(&repo, &ListOptions::all())).await,
        "tags after delete_manifest",
    );
    assert!(
        !listed.iter().any(|t| tags.contains(t)),
        "tags of a deleted manifest are still listed: {listed:?}"
    );
    expect_code(
        reg.delete_manifest(&repo, image.digest()).await,
        ErrorCode::ManifestUnknown,
        "delete_manifest twice",
    );
    must(
        reg.resolve_blob(&repo, &image.config.digest).await,
        "the config blob outlives the manifest",
    );
    assert_tag(reg, &repo, &tag("keep"), &keep.manifest).await;
}

/// Deleting a tag leaves the manifest, and other tags of it.
pub async fn delete_tag(reg: &dyn Registry) {
    let repo = fresh_repo("delete-tag");
    let image = build_image(&ImageOptions::default());
    let (gone, kept) = (tag("gone"), tag("kept"));
    image.push(reg, &repo, &[gone.clone(), kept.clone()]).await;
    must(reg.delete_tag(&repo, &gone).await, "delete_tag");
    expect_code(
        reg.resolve_tag(&repo, &gone).await,
        ErrorCode::ManifestUnknown,
        "resolve_tag of a deleted tag",
    );
    expect_code(
        reg.delete_tag(&repo, &gone).await,
        ErrorCode::ManifestUnknown,
        "delete_tag twice",
    );
    assert_tag(reg, &repo, &kept, &image.manifest).await;
    let got = must(
        reg.get_manifest(&repo, image.digest()).await,
        "get_manifest after delete_tag",
    );
    assert_same_manifest(&got, &image.manifest, "get_manifest after delete_tag");
}

/// Pushing a tag again moves it; the old manifest stays by digest.
pub async fn retag(reg: &dyn Registry) {
    let repo = fresh_repo("retag");
    let t = tag("moving");
    let first = push_image(reg, &repo, Some(&t)).await;
    assert_tag(reg, &repo, &t, &first.manifest).await;
    let second = push_image(reg, &repo, Some(&t)).await;
    assert_tag(reg, &repo, &t, &second.manifest).await;
    let got = must(reg.get_tag(&repo, &t).await, "get_tag after the move");
    assert_same_manifest(&got, &second.manifest, "get_tag after the move");
    must(
        reg.resolve_manifest(&repo, first.digest()).await,
        "the first manifest stays by digest",
    );
}

/// What is not there is reported with the right code: unknown
/// repositories, tags, manifests and blobs.
pub async fn unknown_things(reg: &dyn Registry) {
    let nowhere = fresh_repo("unknown-things-nowhere");
    let blob = Digest::sha256(&random_bytes(32));
    let missing_tag = tag("missing");

    expect_not_found(
        reg.get_blob(&nowhere, &blob).await,
        ErrorCode::BlobUnknown,
        "get_blob in an unknown repository",
    );
    expect_not_found(
        reg.resolve_blob(&nowhere, &blob).await,
        ErrorCode::BlobUnknown,
        "resolve_blob in an unknown repository",
    );
    expect_not_found(
        reg.get_manifest(&nowhere, &blob).await,
        ErrorCode::ManifestUnknown,
        "get_manifest in an unknown repository",
    );
    expect_not_found(
        reg.get_tag(&nowhere, &missing_tag).await,
        ErrorCode::ManifestUnknown,
        "get_tag in an unknown repository",
    );
    expect_code(
        collect_list(reg.tags(&nowhere, &ListOptions::all())).await,
        ErrorCode::NameUnknown,
        "tags of an unknown repository",
    );

    let repo = fresh_repo("unknown-things");
    let image = push_image(reg, &repo, Some(&tag("present"))).await;
    expect_code(
        reg.get_blob(&repo, &blob).await,
        ErrorCode::BlobUnknown,
        "get_blob of an unknown digest",
    );
    expect_code(
        reg.resolve_blob(&repo, &blob).await,
        ErrorCode::BlobUnknown,
        "resolve_blob of an unknown digest",
    );
    expect_code(
        reg.get_blob_range(&repo, &blob, crate::registry::RangeRequest::from(0))
            .await,
        ErrorCode::BlobUnknown,
        "get_blob_range of an unknown digest",
    );
    expect_code(
        reg.get_manifest(&repo, &blob).await,
        ErrorCode::ManifestUnknown,
        "get_manifest of an unknown digest",
    );
    expect_code(
        reg.resolve_manifest(&repo, &blob).await,
        ErrorCode::ManifestUnknown,
        "resolve_manifest of an unknown digest",
    );
    expect_code(
        reg.get_tag(&repo, &missing_tag).await,
        ErrorCode::ManifestUnknown,
        "get_tag of an unknown tag",
    );
    expect_code(
        reg.resolve_tag(&repo, &missing_tag).await,
        ErrorCode::ManifestUnknown,
        "resolve_tag of an unknown tag",
    );
    // A blob is not a manifest.
    expect_code(
        reg.get_manifest(&repo, &image.config.digest).await,
        ErrorCode::ManifestUnknown,
        "get_manifest of a blob's digest",
    );
}
