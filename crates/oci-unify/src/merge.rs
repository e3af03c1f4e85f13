//! Listings of both sides as one: sorted names merged as they stream,
//! referrers gathered by digest. A side that does not know the repository
//! (`NAME_UNKNOWN`) counts as empty unless both say so.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use oci_core::registry::collect_list;
use oci_core::{Descriptor, Digest, Error, ErrorCode, ListStream, Result};

use crate::outcome::pick_error;

/// One side of a merge: its stream and the item it has ready.
struct Side<T> {
    stream: ListStream<T>,
    head: Option<T>,
    done: bool,
    seen_any: bool,
    name_unknown: Option<Error>,
}

impl<T> Side<T> {
    fn new(stream: ListStream<T>) -> Side<T> {
        Side {
            stream,
            head: None,
            done: false,
            seen_any: false,
            name_unknown: None,
        }
    }

    /// Makes an item ready if the stream has one; an error that is not a
    /// leading `NAME_UNKNOWN` is returned.
    async fn fill(&mut self) -> Result<()> {
        if self.head.is_some() || self.done {
            return Ok(());
        }
        match self.stream.next().await {
            Some(Ok(item)) => {
                self.seen_any = true;
                self.head = Some(item);
            }
            Some(Err(err)) if err.is(ErrorCode::NameUnknown) && !self.seen_any => {
                self.done = true;
                self.name_unknown = Some(err);
            }
            Some(Err(err)) => {
                self.done = true;
                return Err(err);
            }
            None => self.done = true,
        }
        Ok(())
    }
}

/// The state of a sorted merge.
struct Merge<T> {
    sides: [Side<T>; 2],
    left: Option<usize>,
    finished: bool,
}

impl<T: Ord> Merge<T> {
    /// The next item of the merged listing.
    async fn next(&mut self) -> Option<Result<T>> {
        if self.finished || self.left == Some(0) {
            return None;
        }
        for side in &mut self.sides {
            if let Err(err) = side.fill().await {
                self.finished = true;
                return Some(Err(err));
            }
        }
        let [s0, s1] = &mut self.sides;
        let item = match (&s0.head, &s1.head) {
            (Some(a), Some(b)) if a == b => {
                s1.head = None;
                s0.head.take()
            }
            (Some(a), Some(b)) if b < a => s1.head.take(),
            (Some(_), _) => s0.head.take(),
            (None, Some(_)) => s1.head.take(),
            (None, None) => {
                self.finished = true;
                return match (s0.name_unknown.take(), s1.name_unknown.take()) {
                    (Some(e0), Some(e1)) => Some(Err(pick_error(e0, e1))),
                    _ => None,
                };
            }
        };
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        item.map(Ok)
    }
}

/// Merges two sorted listings into one sorted listing without
/// duplicates, of at most `n` items.
pub(crate) fn merge_sorted<T>(a: ListStream<T>, b: ListStream<T>, n: Option<usize>) -> ListStream<T>
where
    T: Ord + Send + 'static,
{
    let merge = Merge {
        sides: [Side::new(a), Side::new(b)],
        left: n,
        finished: false,
    };
    futures::stream::unfold(merge, |mut merge| async move {
        let item = merge.next().await?;
        Some((item, merge))
    })
    .boxed()
}

/// The referrers of both sides, once each, in digest order (r0's
/// descriptor when both list one).
pub(crate) fn merge_referrers(
    a: ListStream<Descriptor>,
    b: ListStream<Descriptor>,
) -> ListStream<Descriptor> {
    let gathered = async move {
        let (a, b) = futures::join!(collect_list(a), collect_list(b));
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e0), Err(e1))
                if e0.is(ErrorCode::NameUnknown) && e1.is(ErrorCode::NameUnknown) =>
            {
                return Err(pick_error(e0, e1));
            }
            (Err(e), Ok(b)) if e.is(ErrorCode::NameUnknown) => (Vec::new(), b),
            (Ok(a), Err(e)) if e.is(ErrorCode::NameUnknown) => (a, Vec::new()),
            (Err(e0), Err(e1)) => return Err(pick_error(e0, e1)),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let mut by_digest: BTreeMap<Digest, Descriptor> = BTreeMap::new();
        for d in b.into_iter().chain(a) {
            by_digest.insert(d.digest.clone(), d);
        }
        Ok(futures::stream::iter(by_digest.into_values().map(Ok)))
    };
    futures::stream::once(gathered).try_flatten().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::registry::failed_list;

    fn list(items: &[&str]) -> ListStream<String> {
        let items: Vec<Result<String>> = items.iter().map(|s| Ok(s.to_string())).collect();
        futures::stream::iter(items).boxed()
    }

    fn unknown() -> ListStream<String> {
        failed_list(Error::new(ErrorCode::NameUnknown, "no such repository"))
    }

    #[tokio::test]
    async fn merges_sorted_without_duplicates() {
        let merged = merge_sorted(list(&["a", "c", "d"]), list(&["b", "c", "e"]), None);
        assert_eq!(
            collect_list(merged).await.unwrap(),
            ["a", "b", "c", "d", "e"]
        );
        let merged = merge_sorted(list(&["a", "c", "d"]), list(&["b", "c", "e"]), Some(3));
        assert_eq!(collect_list(merged).await.unwrap(), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn one_unknown_side_is_empty_both_is_an_error() {
        let merged = merge_sorted(unknown(), list(&["x"]), None);
        assert_eq!(collect_list(merged).await.unwrap(), ["x"]);
        let merged = merge_sorted(list(&["x"]), unknown(), None);
        assert_eq!(collect_list(merged).await.unwrap(), ["x"]);
        let err = collect_list(merge_sorted(unknown(), unknown(), None))
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::NameUnknown));
    }

    #[tokio::test]
    async fn other_errors_end_the_listing() {
        let denied = failed_list(Error::new(ErrorCode::Denied, "no"));
        let err = collect_list(merge_sorted(list(&["a"]), denied, None))
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::Denied));
    }
}
