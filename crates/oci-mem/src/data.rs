//! [`BlobData`]: a blob's bytes kept as the chunks they arrived in, so
//! storing a pushed blob never copies it into one buffer (small pieces
//! excepted, which are gathered to keep the chunk list short).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use oci_core::{BlobStream, ByteRange};

/// Pieces shorter than this are copied together into one chunk.
const SMALL: usize = 16 * 1024;

/// The largest piece a read yields; larger chunks are sliced (no copy).
const READ_PIECE: usize = 256 * 1024;

/// A blob's bytes, cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlobData {
    chunks: Arc<[Bytes]>,
    len: u64,
}

impl BlobData {
    /// The blob made of `pieces`, in order.
    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> BlobData {
        let mut chunks = Vec::new();
        let mut small = BytesMut::new();
        let mut len = 0u64;
        for piece in pieces {
            len += piece.len() as u64;
            if piece.len() < SMALL {
                small.extend_from_slice(&piece);
                if small.len() >= SMALL {
                    chunks.push(small.split().freeze());
                }
                continue;
            }
            if !small.is_empty() {
                chunks.push(small.split().freeze());
            }
            chunks.push(piece);
        }
        if !small.is_empty() {
            chunks.push(small.freeze());
        }
        BlobData {
            chunks: chunks.into(),
            len,
        }
    }

    /// The blob's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Streams the bytes of `range` (or all of them), without copying.
    pub(crate) fn stream(&self, range: Option<ByteRange>) -> BlobStream {
        let (start, end) = match range {
            Some(r) => (r.start, r.end + 1),
            None => (0, self.len),
        };
        let mut pieces = Vec::new();
        let mut at = 0u64;
        for chunk in self.chunks.iter() {
            let (from, to) = (at, at + chunk.len() as u64);
            at = to;
            if to <= start || from >= end {
                continue;
            }
            // Both bounds lie inside this chunk, whose length is a usize.
            let lo = (start.max(from) - from) as usize;
            let hi = (end.min(to) - from) as usize;
            let mut part = chunk.slice(lo..hi);
            while part.len() > READ_PIECE {
                pieces.push(Ok(part.split_to(READ_PIECE)));
            }
            pieces.push(Ok(part));
        }
        stream::iter(pieces).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(s: BlobStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn pieces_and_ranges_read_back_exactly() {
        let whole: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sizes = [1usize, 5, 20_000, 3, 70_000, 9_991];
        let mut pieces = Vec::new();
        let mut at = 0;
        for s in sizes {
            pieces.push(Bytes::copy_from_slice(&whole[at..at + s]));
            at += s;
        }
        let data = BlobData::from_pieces(pieces);
        assert_eq!(data.len(), 100_000);
        assert_eq!(collect(data.stream(None)).await, whole);
        for (s, e) in [
            (0, 0),
            (5, 25_000),
            (20_026, 20_026),
            (99_000, 99_999),
            (0, 99_999),
        ] {
            let got = collect(data.stream(Some(ByteRange { start: s, end: e }))).await;
            assert_eq!(got, &whole[s as usize..=e as usize], "{s}-{e}");
        }
        assert!(collect(BlobData::default().stream(None)).await.is_empty());
    }
}
