//! How the answers of the two sides combine into one: which side a read
//! takes, which error wins when both fail, and when a write counts as done.

use std::fmt;
use std::future::Future;
use std::pin::pin;

use futures::future::{Either, select};
use oci_core::{Digest, Error, ErrorCode, Result};

use crate::ReadPolicy;

/// One of the two registries of a [`Unify`](crate::Unify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The first registry.
    R0,
    /// The second registry.
    R1,
}

impl Side {
    /// The other side.
    fn other(self) -> Side {
        match self {
            Side::R0 => Side::R1,
            Side::R1 => Side::R0,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::R0 => "r0",
            Side::R1 => "r1",
        })
    }
}

/// Whether a side simply cannot answer a read: it does not have the
/// thing, or does not support the operation. The other side may.
pub(crate) fn absent(err: &Error) -> bool {
    err.is_not_found() || err.is(ErrorCode::Unsupported)
}

/// How telling an error is: anything else beats a resource's own
/// not-found code, which beats `NAME_UNKNOWN`, which beats `UNSUPPORTED`.
fn rank(err: &Error) -> u8 {
    match err.code() {
        ErrorCode::Unsupported => 0,
        ErrorCode::NameUnknown => 1,
        _ if err.is_not_found() => 2,
        _ => 3,
    }
}

/// The error to report when both sides failed: the more specific one,
/// r0's on a tie.
pub(crate) fn pick_error(e0: Error, e1: Error) -> Error {
    if rank(&e1) > rank(&e0) { e1 } else { e0 }
}

/// `err` with its message saying that `side` failed while the other did
/// not; code, detail and status are kept.
pub(crate) fn side_failed(what: &str, side: Side, err: Error) -> Error {
    let message = format!(
        "{what} succeeded on {} but failed on {side}: {}",
        side.other(),
        err.message()
    );
    relabel(err, message)
}

/// `err` with another message.
pub(crate) fn relabel(err: Error, message: String) -> Error {
    let status = err.status();
    let mut out = Error::new(err.code(), message);
    if let Some(detail) = err.detail() {
        out = out.with_detail(detail.clone());
    }
    if status != err.code().status() {
        out = out.with_status(status);
    }
    out
}

/// A read: the first side to succeed wins, following `policy`.
///
/// Sequential asks r1 only when r0 answered "not found" (or
/// `UNSUPPORTED`); any other error from r0 is the answer. Concurrent asks
/// both at once; the first success wins and the other request is dropped
/// (cancelled); a failure waits for the other side.
pub(crate) async fn first_success<T, F0, F1>(policy: ReadPolicy, f0: F0, f1: F1) -> Result<T>
where
    F0: Future<Output = Result<T>>,
    F1: Future<Output = Result<T>>,
{
    match policy {
        ReadPolicy::Sequential => match f0.await {
            Ok(value) => Ok(value),
            Err(e0) if absent(&e0) => f1.await.map_err(|e1| pick_error(e0, e1)),
            Err(e0) => Err(e0),
        },
        ReadPolicy::Concurrent => match select(pin!(f0), pin!(f1)).await {
            Either::Left((Ok(value), _)) | Either::Right((Ok(value), _)) => Ok(value),
            Either::Left((Err(e0), f1)) => f1.await.map_err(|e1| pick_error(e0, e1)),
            Either::Right((Err(e1), f0)) => f0.await.map_err(|e0| pick_error(e0, e1)),
        },
    }
}

/// Runs both futures: one after the other (Sequential) or together
/// (Concurrent).
pub(crate) async fn both<A, B, F0, F1>(policy: ReadPolicy, f0: F0, f1: F1) -> (A, B)
where
    F0: Future<Output = A>,
    F1: Future<Output = B>,
{
    match policy {
        ReadPolicy::Sequential => {
            let a = f0.await;
            (a, f1.await)
        }
        ReadPolicy::Concurrent => futures::future::join(f0, f1).await,
    }
}

/// A tag looked up on both sides: the side that has it, or an `UNKNOWN`
/// error naming both digests when they point it at different manifests.
///
/// An error other than "not found" (or `UNSUPPORTED`) on either side is
/// returned: without
/// both answers there is no telling whether the sides agree.
pub(crate) fn agree<T>(
    tag: &str,
    r0: Result<T>,
    r1: Result<T>,
    digest_of: impl Fn(&T) -> &Digest,
) -> Result<T> {
    match (r0, r1) {
        (Ok(a), Ok(b)) => {
            let (d0, d1) = (digest_of(&a), digest_of(&b));
            if d0 == d1 {
                Ok(a)
            } else {
                Err(tag_conflict(tag, d0, d1))
            }
        }
        (Ok(a), Err(e)) if absent(&e) => Ok(a),
        (Err(e), Ok(b)) if absent(&e) => Ok(b),
        (Ok(_), Err(e)) => Err(side_failed(&format!("tag {tag}"), Side::R1, e)),
        (Err(e), Ok(_)) => Err(side_failed(&format!("tag {tag}"), Side::R0, e)),
        (Err(e0), Err(e1)) => Err(pick_error(e0, e1)),
    }
}

/// The error for a tag the two sides point at different manifests.
pub(crate) fn tag_conflict(tag: &str, d0: &Digest, d1: &Digest) -> Error {
    Error::new(
        ErrorCode::Unknown,
        format!("tag {tag} differs between the registries: {d0} on r0, {d1} on r1"),
    )
    .with_detail(serde_json::json!({
        "tag": tag,
        "r0": d0.to_string(),
        "r1": d1.to_string(),
    }))
}

/// A write done on both sides: done if both succeeded; if only one did,
/// an error naming the side that failed.
pub(crate) fn both_written<T>(what: &str, r0: Result<T>, r1: Result<T>) -> Result<T> {
    match (r0, r1) {
        (Ok(a), Ok(_)) => Ok(a),
        (Ok(_), Err(e1)) => Err(side_failed(what, Side::R1, e1)),
        (Err(e0), Ok(_)) => Err(side_failed(what, Side::R0, e0)),
        (Err(e0), Err(e1)) => Err(pick_error(e0, e1)),
    }
}

/// A delete done on both sides: "not found" on one side is fine when
/// the other side deleted it.
pub(crate) fn both_deleted(what: &str, r0: Result<()>, r1: Result<()>) -> Result<()> {
    match (r0, r1) {
        (Ok(()), Err(e)) | (Err(e), Ok(())) if e.is_not_found() => Ok(()),
        (r0, r1) => both_written(what, r0, r1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: ErrorCode) -> Error {
        Error::new(code, "x")
    }

    #[test]
    fn the_more_specific_error_wins() {
        let e = pick_error(err(ErrorCode::NameUnknown), err(ErrorCode::BlobUnknown));
        assert!(e.is(ErrorCode::BlobUnknown));
        let e = pick_error(err(ErrorCode::BlobUnknown), err(ErrorCode::Denied));
        assert!(e.is(ErrorCode::Denied));
        let e = pick_error(err(ErrorCode::Unsupported), err(ErrorCode::NameUnknown));
        assert!(e.is(ErrorCode::NameUnknown));
        let e = pick_error(
            Error::new(ErrorCode::BlobUnknown, "r0"),
            Error::new(ErrorCode::BlobUnknown, "r1"),
        );
        assert_eq!(e.message(), "r0");
    }

    #[test]
    fn one_sided_writes_name_the_failing_side() {
        let e = both_written("push", Ok(()), Err(err(ErrorCode::Denied))).unwrap_err();
        assert!(e.is(ErrorCode::Denied));
        assert!(e.message().contains("failed on r1"), "{e}");
        let e = both_written("push", Err(err(ErrorCode::Denied)), Ok(())).unwrap_err();
        assert!(e.message().contains("failed on r0"), "{e}");
    }

    #[test]
    fn deletes_tolerate_one_missing_side() {
        assert!(both_deleted("delete", Ok(()), Err(err(ErrorCode::NameUnknown))).is_ok());
        let e = both_deleted(
            "delete",
            Err(err(ErrorCode::ManifestUnknown)),
            Err(err(ErrorCode::NameUnknown)),
        )
        .unwrap_err();
        assert!(e.is(ErrorCode::ManifestUnknown));
        assert!(both_deleted("delete", Ok(()), Err(err(ErrorCode::Denied))).is_err());
    }
}
