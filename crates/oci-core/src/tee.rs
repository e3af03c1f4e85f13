//! One blob stream fed to two consumers at once, chunk by chunk, through a
//! small bounded channel per side: never more than a few chunks held.
//! `oci-unify` pushes one body to two registries with it; `oci-mirror`
//! streams an upstream blob to a client and into its cache.

use std::future::Future;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};

use crate::error::Result;
use crate::registry::BlobStream;

/// Chunks buffered per side before the reader of the body waits.
const CHUNKS_PER_SIDE: usize = 4;

/// Splits `body` into two streams carrying the same chunks (cheap `Bytes`
/// clones) and the future that moves them; run the three together.
///
/// A side that stops reading (it failed early, or was dropped) is let go
/// and the other is still fed. An error in `body` reaches both sides and
/// ends the feed.
///
/// ```
/// use bytes::Bytes;
/// use oci_core::registry::{bytes_stream, collect_list};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let data = Bytes::from_static(b"one body, two readers");
/// let (a, b, feed) = oci_core::tee::tee(bytes_stream(data.clone(), 4));
/// let (_, a, b) = futures::join!(feed, collect_list(a), collect_list(b));
/// assert_eq!(a.unwrap().concat(), data);
/// assert_eq!(b.unwrap().concat(), data);
/// # }
/// ```
pub fn tee(mut body: BlobStream) -> (BlobStream, BlobStream, impl Future<Output = ()> + Send) {
    let (tx0, rx0) = mpsc::channel::<Result<Bytes>>(CHUNKS_PER_SIDE);
    let (tx1, rx1) = mpsc::channel::<Result<Bytes>>(CHUNKS_PER_SIDE);
    let feed = async move {
        let mut sides = [Some(tx0), Some(tx1)];
        while let Some(item) = body.next().await {
            let failed = item.is_err();
            for slot in &mut sides {
                if let Some(tx) = slot
                    && tx.send(item.clone()).await.is_err()
                {
                    *slot = None;
                }
            }
            if failed || sides.iter().all(Option::is_none) {
                break;
            }
        }
    };
    (rx0.boxed(), rx1.boxed(), feed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{bytes_stream, collect_list};

    #[tokio::test]
    async fn both_sides_get_every_chunk() {
        let data = Bytes::from(vec![7u8; 100_000]);
        let (a, b, feed) = tee(bytes_stream(data.clone(), 1000));
        let (_, a, b) = futures::join!(feed, collect_list(a), collect_list(b));
        assert_eq!(a.unwrap().concat(), data);
        assert_eq!(b.unwrap().concat(), data);
    }

    #[tokio::test]
    async fn a_side_that_stops_reading_does_not_stall_the_other() {
        let data = Bytes::from(vec![1u8; 50_000]);
        let (a, b, feed) = tee(bytes_stream(data.clone(), 100));
        drop(a);
        let (_, b) = futures::join!(feed, collect_list(b));
        assert_eq!(b.unwrap().concat(), data);
    }

    #[tokio::test]
    async fn an_error_in_the_body_reaches_both_sides() {
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(crate::Error::internal("upstream broke")),
        ])
        .boxed();
        let (a, b, feed) = tee(body);
        let (_, a, b) = futures::join!(feed, collect_list(a), collect_list(b));
        assert!(a.is_err() && b.is_err());
    }
}
