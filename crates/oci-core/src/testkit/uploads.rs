//! Behaviours of chunked uploads: writing in pieces, resuming by id,
//! cancelling, and committing with the wrong digest.

use bytes::Bytes;

use super::{expect_code, expect_not_found, fresh_repo, must, random_bytes, random_hex};
use crate::digest::Digest;
use crate::error::ErrorCode;
use crate::reference::RepoName;
use crate::registry::{BlobWriter, Registry};

/// Writes `data` in pieces of `piece` bytes, checking the size as it goes.
async fn write_pieces(writer: &mut dyn BlobWriter, data: &Bytes, piece: usize) {
    let mut rest = data.clone();
    while !rest.is_empty() {
        let part = rest.split_to(piece.min(rest.len()));
        let before = writer.size();
        let len = part.len() as u64;
        must(
            writer.write(part).await,
            &format!("write {len} bytes at {before} to upload {}", writer.id()),
        );
        assert_eq!(
            writer.size(),
            before + len,
            "upload {}: size after a write",
            writer.id()
        );
    }
}

/// Reads a blob back and compares it with what was uploaded.
async fn assert_uploaded(reg: &dyn Registry, repo: &RepoName, data: &Bytes) {
    let digest = Digest::sha256(data);
    let what = format!("get_blob {digest} after the upload");
    let reader = must(reg.get_blob(repo, &digest).await, &what);
    assert_eq!(reader.descriptor.size, data.len() as u64, "{what}: size");
    let read = must(reader.bytes().await, &what);
    assert!(
        read == *data,
        "{what}: the bytes differ from those uploaded"
    );
}

/// Asserts an upload id can travel in a URL path unchanged: non-empty,
/// only unreserved characters (see [`crate::upload_id`]).
#[track_caller]
fn assert_id_unreserved(writer: &dyn BlobWriter, when: &str) {
    let id = writer.id();
    assert!(
        crate::upload_id::is_valid(id),
        "upload id {id:?} {when} is empty or holds characters outside A-Z a-z 0-9 - . _ ~ \
         (clients decode or normalise such ids in a Location)"
    );
}

/// A chunk size that suits the writer: its minimum, or `wanted`.
fn piece_size(writer: &dyn BlobWriter, wanted: usize) -> usize {
    writer
        .chunk_min()
        .map_or(wanted, |min| wanted.max(min as usize))
}

/// Uploads a blob in several writes and commits it.
pub async fn chunked_upload(reg: &dyn Registry) {
    let repo = fresh_repo("chunked-upload");
    let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
    assert_id_unreserved(writer.as_ref(), "of a new upload");
    assert_eq!(writer.size(), 0, "a new upload is empty");
    let piece = piece_size(writer.as_ref(), 10_000);
    let data = random_bytes(piece * 3 + 123);
    write_pieces(writer.as_mut(), &data, piece).await;
    assert_id_unreserved(writer.as_ref(), "after writes");
    let digest = Digest::sha256(&data);
    let committed = must(writer.commit(&digest).await, "commit");
    assert_eq!(committed.digest, digest, "commit: digest");
    assert_eq!(committed.size, data.len() as u64, "commit: size");
    assert_uploaded(reg, &repo, &data).await;
}

/// Writes part of an upload, closes the writer, resumes the upload by id
/// at the size reached, finishes and commits it.
pub async fn chunked_upload_resume(reg: &dyn Registry) {
    let repo = fresh_repo("chunked-upload-resume");
    let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
    let piece = piece_size(writer.as_ref(), 8_000);
    let data = random_bytes(piece * 4);
    let (head, tail) = (data.slice(..piece * 2), data.slice(piece * 2..));
    write_pieces(writer.as_mut(), &head, piece).await;
    assert_id_unreserved(writer.as_ref(), "after writes");
    let id = writer.id().to_owned();
    must(writer.close().await, "close");

    let what = format!("push_blob_chunked_resume {id}");
    let mut resumed = must(reg.push_blob_chunked_resume(&repo, &id).await, &what);
    assert_eq!(resumed.id(), id, "{what}: id");
    assert_eq!(
        resumed.size(),
        head.len() as u64,
        "{what}: continues where the upload stopped"
    );
    write_pieces(resumed.as_mut(), &tail, piece).await;
    let digest = Digest::sha256(&data);
    let committed = must(resumed.commit(&digest).await, "commit after resume");
    assert_eq!(
        committed.size,
        data.len() as u64,
        "commit after resume: size"
    );
    assert_uploaded(reg, &repo, &data).await;

    expect_code(
        reg.push_blob_chunked_resume(&repo, &id).await,
        ErrorCode::BlobUploadUnknown,
        "resume of an upload already committed",
    );
}

/// A cancelled upload cannot be resumed and stores nothing.
pub async fn chunked_upload_cancel(reg: &dyn Registry) {
    let repo = fresh_repo("chunked-upload-cancel");
    let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
    let piece = piece_size(writer.as_ref(), 4_000);
    let data = random_bytes(piece * 2);
    write_pieces(writer.as_mut(), &data, piece).await;
    let id = writer.id().to_owned();
    must(writer.cancel().await, "cancel");
    expect_code(
        reg.push_blob_chunked_resume(&repo, &id).await,
        ErrorCode::BlobUploadUnknown,
        "resume of a cancelled upload",
    );
    expect_not_found(
        reg.resolve_blob(&repo, &Digest::sha256(&data)).await,
        ErrorCode::BlobUnknown,
        "resolve_blob of a cancelled upload's content",
    );
}

/// Resuming an id the registry never gave out, or gave out for another
/// repository, is `BLOB_UPLOAD_UNKNOWN`, never a new session.
pub async fn upload_unknown_id(reg: &dyn Registry) {
    let repo = fresh_repo("upload-unknown-id");
    let other = fresh_repo("upload-unknown-id-other");
    let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
    must(
        writer.write(random_bytes(100)).await,
        "write to a new upload",
    );

    let made_up = random_hex(16);
    expect_code(
        reg.push_blob_chunked_resume(&repo, &made_up).await,
        ErrorCode::BlobUploadUnknown,
        "resume of a made-up upload id",
    );
    let id = writer.id().to_owned();
    expect_not_found(
        reg.push_blob_chunked_resume(&other, &id).await,
        ErrorCode::BlobUploadUnknown,
        "resume of another repository's upload",
    );
    // The real session is untouched by the failed attempts.
    let resumed = must(
        reg.push_blob_chunked_resume(&repo, &id).await,
        "resume in the upload's own repository",
    );
    assert_eq!(resumed.size(), 100, "the upload kept its bytes");
    must(resumed.cancel().await, "cancel");
}

/// Committing an upload under a digest its content does not have is
/// `DIGEST_INVALID`, and nothing is stored.
pub async fn chunked_commit_wrong_digest(reg: &dyn Registry) {
    let repo = fresh_repo("chunked-commit-wrong-digest");
    let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
    let piece = piece_size(writer.as_ref(), 5_000);
    let data = random_bytes(piece * 2);
    write_pieces(writer.as_mut(), &data, piece).await;
    let wrong = Digest::sha256(&random_bytes(64));
    expect_code(
        writer.commit(&wrong).await,
        ErrorCode::DigestInvalid,
        "commit with a wrong digest",
    );
    for d in [&wrong, &Digest::sha256(&data)] {
        expect_not_found(
            reg.resolve_blob(&repo, d).await,
            ErrorCode::BlobUnknown,
            &format!("resolve_blob {d} after a refused commit"),
        );
    }
}

/// An upload of several MiB, written in pieces through two handles (the
/// first closed, the second resumed by id), commits under its digest and
/// reads back whole; the same upload under a wrong digest is refused and
/// stores nothing. Large enough for a store to stream it beside its
/// receiving rather than one piece at a time.
pub async fn chunked_upload_large(reg: &dyn Registry) {
    let repo = fresh_repo("chunked-upload-large");
    for right in [false, true] {
        let mut writer = must(reg.push_blob_chunked(&repo).await, "push_blob_chunked");
        let piece = piece_size(writer.as_ref(), 256 * 1024);
        let data = random_bytes(piece * 20 + 4321);
        let half = piece * 10;
        write_pieces(writer.as_mut(), &data.slice(..half), piece).await;
        let id = writer.id().to_owned();
        must(writer.close().await, "close");
        let what = format!("push_blob_chunked_resume {id}");
        let mut writer = must(reg.push_blob_chunked_resume(&repo, &id).await, &what);
        assert_eq!(writer.size(), half as u64, "{what}: size");
        write_pieces(writer.as_mut(), &data.slice(half..), piece).await;
        let digest = Digest::sha256(&data);
        if right {
            let committed = must(writer.commit(&digest).await, "commit");
            assert_eq!(committed.size, data.len() as u64, "commit: size");
            assert_uploaded(reg, &repo, &data).await;
        } else {
            let wrong = Digest::sha256(&data.slice(1..));
            expect_code(
                writer.commit(&wrong).await,
                ErrorCode::DigestInvalid,
                "commit of a large upload with a wrong digest",
            );
            for d in [&wrong, &digest] {
                expect_not_found(
                    reg.resolve_blob(&repo, d).await,
                    ErrorCode::BlobUnknown,
                    &format!("resolve_blob {d} after a refused commit"),
                );
            }
        }
    }
}
