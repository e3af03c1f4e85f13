//! Behaviours of blobs: monolithic push and read, verification, ranges,
//! mounting and deleting.

use bytes::Bytes;
use futures::StreamExt;

use super::{expect_code, expect_not_found, fresh_repo, must, push_bytes, random_bytes};
use crate::digest::Digest;
use crate::error::ErrorCode;
use crate::media;
use crate::reference::RepoName;
use crate::registry::{ByteRange, RangeRequest, Registry, bytes_stream};

/// Reads a whole blob and checks its bytes and descriptor.
async fn assert_blob(reg: &dyn Registry, repo: &RepoName, data: &Bytes) {
    let digest = Digest::sha256(data);
    let what = format!("get_blob {digest} from {repo}");
    let reader = must(reg.get_blob(repo, &digest).await, &what);
    assert_eq!(
        reader.descriptor.digest, digest,
        "{what}: descriptor digest"
    );
    assert_eq!(
        reader.descriptor.size,
        data.len() as u64,
        "{what}: descriptor size"
    );
    assert_eq!(reader.range, None, "{what}: a whole read has no range");
    let read = must(reader.bytes().await, &format!("{what}: reading the stream"));
    assert!(
        read == *data,
        "{what}: the bytes read differ from those pushed"
    );
}

/// Pushes blobs whole (with and without a size, in one piece and in many),
/// reads them back, resolves them; pushing the same blob again is fine.
pub async fn push_pull_blob(reg: &dyn Registry) {
    let repo = fresh_repo("push-pull-blob");
    let data = random_bytes(100_000);
    let digest = Digest::sha256(&data);
    push_bytes(reg, &repo, media::OCTET_STREAM, &data).await;
    assert_blob(reg, &repo, &data).await;

    let resolved = must(reg.resolve_blob(&repo, &digest).await, "resolve_blob");
    assert_eq!(resolved.digest, digest, "resolve_blob: digest");
    assert_eq!(resolved.size, data.len() as u64, "resolve_blob: size");

    // Without a declared size, arriving in many small pieces.
    let small = random_bytes(5_000);
    let small_digest = Digest::sha256(&small);
    let pushed = must(
        reg.push_blob(&repo, &small_digest, None, bytes_stream(small.clone(), 7))
            .await,
        "push_blob without a size",
    );
    assert_eq!(pushed.size, small.len() as u64, "push_blob without a size");
    assert_blob(reg, &repo, &small).await;

    // The empty blob is a blob too.
    let empty = Bytes::new();
    push_bytes(reg, &repo, media::OCTET_STREAM, &empty).await;
    assert_blob(reg, &repo, &empty).await;

    // Pushing content that is already there succeeds and changes nothing.
    push_bytes(reg, &repo, media::OCTET_STREAM, &data).await;
    assert_blob(reg, &repo, &data).await;
}

/// Content that does not hash to the given digest is refused with
/// `DIGEST_INVALID`, and nothing is stored under either digest.
pub async fn blob_digest_mismatch(reg: &dyn Registry) {
    let repo = fresh_repo("blob-digest-mismatch");
    let data = random_bytes(4_000);
    let claimed = Digest::sha256(&random_bytes(4_000));
    let result = reg
        .push_blob(
            &repo,
            &claimed,
            Some(data.len() as u64),
            bytes_stream(data.clone(), 1_000),
        )
        .await;
    expect_code(
        result,
        ErrorCode::DigestInvalid,
        "push_blob with a wrong digest",
    );
    let actual = Digest::sha256(&data);
    for d in [&claimed, &actual] {
        expect_not_found(
            reg.resolve_blob(&repo, d).await,
            ErrorCode::BlobUnknown,
            &format!("resolve_blob {d} after a refused push"),
        );
    }
}

/// Content longer or shorter than the declared size is refused with
/// `SIZE_INVALID`, and nothing is stored.
pub async fn blob_size_mismatch(reg: &dyn Registry) {
    let repo = fresh_repo("blob-size-mismatch");
    let data = random_bytes(4_000);
    let digest = Digest::sha256(&data);
    for declared in [3_999, 4_001] {
        let result = reg
            .push_blob(
                &repo,
                &digest,
                Some(declared),
                bytes_stream(data.clone(), 1_000),
            )
            .await;
        expect_code(
            result,
            ErrorCode::SizeInvalid,
            &format!("push_blob of 4000 bytes declared as {declared}"),
        );
    }
    expect_not_found(
        reg.resolve_blob(&repo, &digest).await,
        ErrorCode::BlobUnknown,
        "resolve_blob after refused pushes",
    );
}

/// A push whose body fails part way fails, and stores nothing.
pub async fn blob_body_error(reg: &dyn Registry) {
    let repo = fresh_repo("blob-body-error");
    let data = random_bytes(3_000);
    let digest = Digest::sha256(&data);
    let body = futures::stream::iter([
        Ok(data.slice(..1_000)),
        Err(crate::error::Error::internal("the source broke")),
    ])
    .boxed();
    let result = reg
        .push_blob(&repo, &digest, Some(data.len() as u64), body)
        .await;
    assert!(result.is_err(), "push_blob of a broken body succeeded");
    expect_not_found(
        reg.resolve_blob(&repo, &digest).await,
        ErrorCode::BlobUnknown,
        "resolve_blob after a broken push",
    );
}

/// Reads parts of a blob: bounded, open-ended, suffix, a bound past the
/// end (clamped); a start past the end is `RANGE_INVALID`.
pub async fn blob_range(reg: &dyn Registry) {
    let repo = fresh_repo("blob-range");
    let data = random_bytes(1_000);
    let digest = Digest::sha256(&data);
    push_bytes(reg, &repo, media::OCTET_STREAM, &data).await;

    let suffix = RangeRequest {
        start: None,
        end: Some(100),
    };
    let cases = [
        (RangeRequest::bounded(10, 19), 10, 19),
        (RangeRequest::bounded(0, 0), 0, 0),
        (RangeRequest::from(900), 900, 999),
        (suffix, 900, 999),
        (RangeRequest::bounded(990, 5_000), 990, 999),
    ];
    for (request, start, end) in cases {
        let what = format!("get_blob_range {request}");
        let reader = must(reg.get_blob_range(&repo, &digest, request).await, &what);
        assert_eq!(
            reader.descriptor.digest, digest,
            "{what}: descriptor digest"
        );
        assert_eq!(
            reader.descriptor.size, 1_000,
            "{what}: the descriptor gives the whole blob's size"
        );
        assert_eq!(
            reader.range,
            Some(ByteRange { start, end }),
            "{what}: range"
        );
        let read = must(reader.bytes().await, &what);
        assert!(
            read == data[start as usize..=end as usize],
            "{what}: the bytes are not bytes {start}-{end} of the blob"
        );
    }
    for request in [
        RangeRequest::from(1_000),
        RangeRequest::bounded(2_000, 2_010),
    ] {
        expect_code(
            reg.get_blob_range(&repo, &digest, request).await,
            ErrorCode::RangeInvalid,
            &format!("get_blob_range {request} of a 1000-byte blob"),
        );
    }
}

/// Mounts a blob from another repository; mounting a blob the source does
/// not hold is `BLOB_UNKNOWN`.
pub async fn mount_blob(reg: &dyn Registry) {
    let from = fresh_repo("mount-blob-from");
    let to = fresh_repo("mount-blob-to");
    let data = random_bytes(3_000);
    let digest = Digest::sha256(&data);
    push_bytes(reg, &from, media::OCTET_STREAM, &data).await;
    expect_not_found(
        reg.resolve_blob(&to, &digest).await,
        ErrorCode::BlobUnknown,
        "resolve_blob in the target before the mount",
    );

    let mounted = must(reg.mount_blob(&to, &from, &digest).await, "mount_blob");
    assert_eq!(mounted.digest, digest, "mount_blob: digest");
    assert_eq!(mounted.size, data.len() as u64, "mount_blob: size");
    assert_blob(reg, &to, &data).await;
    assert_blob(reg, &from, &data).await;

    let unknown = Digest::sha256(&random_bytes(32));
    expect_code(
        reg.mount_blob(&to, &from, &unknown).await,
        ErrorCode::BlobUnknown,
        "mount_blob of a blob the source does not hold",
    );
    expect_not_found(
        reg.resolve_blob(&to, &unknown).await,
        ErrorCode::BlobUnknown,
        "resolve_blob after a failed mount",
    );
}

/// Deletes a blob from one repository; another that holds it keeps it;
/// deleting it again is `BLOB_UNKNOWN`.
pub async fn delete_blob(reg: &dyn Registry) {
    let repo = fresh_repo("delete-blob");
    let other = fresh_repo("delete-blob-other");
    let keep = random_bytes(500);
    let data = random_bytes(2_000);
    let digest = Digest::sha256(&data);
    push_bytes(reg, &repo, media::OCTET_STREAM, &keep).await;
    push_bytes(reg, &repo, media::OCTET_STREAM, &data).await;
    push_bytes(reg, &other, media::OCTET_STREAM, &data).await;

    must(reg.delete_blob(&repo, &digest).await, "delete_blob");
    expect_code(
        reg.resolve_blob(&repo, &digest).await,
        ErrorCode::BlobUnknown,
        "resolve_blob after delete_blob",
    );
    expect_code(
        reg.get_blob(&repo, &digest).await,
        ErrorCode::BlobUnknown,
        "get_blob after delete_blob",
    );
    expect_code(
        reg.delete_blob(&repo, &digest).await,
        ErrorCode::BlobUnknown,
        "delete_blob twice",
    );
    assert_blob(reg, &repo, &keep).await;
    assert_blob(reg, &other, &data).await;
}
