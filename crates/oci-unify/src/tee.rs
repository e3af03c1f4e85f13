//! One blob body fed to two pushes at once, chunk by chunk, through a
//! small bounded channel per side: never more than a few chunks held.

use std::future::Future;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::{BlobStream, Result};
use tokio::sync::mpsc;

/// Chunks buffered per side before the reader of the body waits.
const CHUNKS_PER_SIDE: usize = 4;

/// Splits `body` into two streams carrying the same chunks (cheap `Bytes`
/// clones) and the future that moves them; run the three together.
///
/// A side that stops reading (its push failed early) is dropped and the
/// other is still fed. An error in `body` reaches both sides.
pub(crate) fn tee(mut body: BlobStream) -> (BlobStream, BlobStream, impl Future<Output = ()>) {
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
    (receive(rx0), receive(rx1), feed)
}

/// The receiving end of a channel as a blob stream.
fn receive(rx: mpsc::Receiver<Result<Bytes>>) -> BlobStream {
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::registry::{bytes_stream, collect_list};

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
}
