//! What an upstream's failure means for an answer: whether the cache may
//! stand in for it ([`unavailable`]: offline serving), the error a
//! client gets when nothing cached can ([`upstream_error`]), and a
//! listing (tags, referrers) answered by the cache when its upstream
//! cannot ([`listing`]).

use futures::StreamExt;
use oci_core::registry::failed_list;
use oci_core::{Error, ErrorCode, ListStream, RepoName};

use crate::metrics::{Outcome, note};
use crate::upstream::Target;

/// Whether an upstream's error means it cannot answer now (unreachable,
/// broken, overloaded), rather than a real answer such as "not found".
pub(crate) fn unavailable(err: &Error) -> bool {
    err.status() >= 500 || err.is(ErrorCode::TooManyRequests)
}

/// An upstream's failure as the mirror's client sees it, when nothing
/// cached could stand in (every read maps its upstream's errors here:
/// blobs and their HEADs, manifests, tags, tag listings on any page,
/// referrers):
///
/// - a refusal (`401`, `403`) is the mirror's own `DENIED` naming the
///   upstream: a `401` would ask the client to log in to the mirror, and
///   the upstream's text and detail (its login hints) are logged, not
///   passed on;
/// - an unreachable or failing upstream is a `502` naming it (without the
///   client library's network detail, which would tell the client its own
///   connection failed);
/// - a `429` (with its `Retry-After`) and real answers ("not found") are
///   passed on as they are.
pub(crate) fn upstream_error(target: &Target, what: &dyn std::fmt::Display, err: Error) -> Error {
    let host = &target.upstream.host;
    let refusal = if err.is(ErrorCode::Unauthorized) {
        "refused the mirror's credentials for"
    } else if err.is(ErrorCode::Denied) {
        "denied the mirror access to"
    } else if err.is(ErrorCode::TooManyRequests) || !unavailable(&err) {
        return err;
    } else {
        tracing::warn!(target: "oci_mirror", upstream = host.as_str(), repository = %target.name, %what, error = %err, "the upstream failed and nothing is cached");
        return Error::new(
            ErrorCode::Unknown,
            format!(
                "the upstream {host} failed and {} {what} is not cached: {}",
                target.name,
                err.message()
            ),
        )
        .with_status(502);
    };
    tracing::warn!(target: "oci_mirror", upstream = host.as_str(), repository = %target.name, %what, error = %err, detail = ?err.detail(), "the upstream refused the mirror");
    Error::new(
        ErrorCode::Denied,
        format!("the upstream {host} {refusal} {} ({what})", target.name),
    )
}

/// A listing through the mirror (`what`, e.g. `tag list`, of `id`;
/// `shown` in errors): `upstream`'s, its errors on any page mapped by
/// [`upstream_error`]. When the upstream is [`unavailable`] before its
/// first item, the cache's listing (`cached`, given the cache's name of
/// the repository) stands in, counted and logged stale, if it holds
/// anything; if it holds nothing, or cannot be read, the client gets the
/// upstream's mapped error (that the upstream is down, not a detail of the
/// cache, which is logged).
pub(crate) fn listing<T, F>(
    target: Target,
    what: &'static str,
    id: String,
    shown: String,
    mut upstream: ListStream<T>,
    cached: F,
) -> ListStream<T>
where
    T: Send + 'static,
    F: FnOnce(&RepoName) -> ListStream<T> + Send + 'static,
{
    let listed = async move {
        let first = match upstream.next().await {
            None => return futures::stream::empty().boxed(),
            Some(Err(e)) if unavailable(&e) => {
                let mut cached = cached(&target.cache);
                let failed = match cached.next().await {
                    Some(Ok(first)) => {
                        tracing::warn!(target: "oci_mirror", upstream = target.upstream.host, repository = %target.name, what, id, error = %e, "the upstream failed; listing from the cache");
                        note(&target, what, &id, Outcome::Stale);
                        return futures::stream::once(async move { Ok(first) })
                            .chain(cached)
                            .boxed();
                    }
                    None => e,
                    Some(Err(not_cached)) if not_cached.is_not_found() => e,
                    Some(Err(broken)) => {
                        tracing::warn!(target: "oci_mirror", upstream = target.upstream.host, repository = %target.name, what, id, error = %e, cache_error = %broken, "the upstream failed and the cache could not list");
                        e
                    }
                };
                return failed_list(upstream_error(&target, &shown, failed));
            }
            Some(first) => first,
        };
        futures::stream::once(async move { first })
            .chain(upstream)
            .map(move |item| item.map_err(|e| upstream_error(&target, &shown, e)))
            .boxed()
    };
    futures::stream::once(listed).flatten().boxed()
}

/// The answer to every write: the mirror is read-only to its clients.
pub(crate) fn read_only() -> Error {
    Error::new(ErrorCode::Denied, "this mirror is read-only")
}
