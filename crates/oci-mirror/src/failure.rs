//! What an upstream's failure means for an answer: whether the cache may
//! stand in for it ([`unavailable`]: offline serving), and the error a
//! client gets when nothing cached can ([`upstream_error`]).

use oci_core::{Error, ErrorCode};

use crate::upstream::Target;

/// Whether an upstream's error means it cannot answer now (unreachable,
/// broken, overloaded), rather than a real answer such as "not found".
pub(crate) fn unavailable(err: &Error) -> bool {
    err.status() >= 500 || err.is(ErrorCode::TooManyRequests)
}

/// An upstream's failure as the mirror's client sees it, when nothing
/// cached could stand in: the upstream named; an unreachable or failing
/// upstream a `502` (without the client library's network detail, which
/// would tell the client its own connection failed); a refusal of the
/// mirror's credentials a `DENIED` (a `401` would ask the client to log
/// in to the mirror); a `429` and real answers ("not found") as they are.
pub(crate) fn upstream_error(target: &Target, what: &dyn std::fmt::Display, err: Error) -> Error {
    let host = &target.upstream.host;
    if err.is(ErrorCode::TooManyRequests)
        || (!unavailable(&err) && !err.is(ErrorCode::Unauthorized))
    {
        return err;
    }
    if err.is(ErrorCode::Unauthorized) {
        return Error::new(
            ErrorCode::Denied,
            format!(
                "the upstream {host} refused the mirror's credentials: {}",
                err.message()
            ),
        );
    }
    tracing::warn!(target: "oci_mirror", upstream = host.as_str(), repository = %target.name, %what, error = %err, "the upstream failed and nothing is cached");
    Error::new(
        ErrorCode::Unknown,
        format!(
            "the upstream {host} failed and {} {what} is not cached: {}",
            target.name,
            err.message()
        ),
    )
    .with_status(502)
}

/// The answer to every write: the mirror is read-only to its clients.
pub(crate) fn read_only() -> Error {
    Error::new(ErrorCode::Denied, "this mirror is read-only")
}
