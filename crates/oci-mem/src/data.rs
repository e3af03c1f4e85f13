//! [`BlobData`]: a blob's bytes kept as the chunks they arrived in, so
//! storing a pushed blob never copies it into one buffer; and [`Chunks`],
//! which gathers those chunks and copies the small ones out of the buffers
//! they arrived in.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use oci_core::{BlobStream, ByteRange};

/// Pieces shorter than this are copied into an owned buffer together with
/// their neighbours. A small `Bytes` from the network is usually a slice of
/// a whole connection read buffer (8 KiB to ~400 KiB): keeping the slice
/// would keep all of that alive, ~8000 times the data for one-byte chunks.
/// Longer pieces are kept without a copy; they pin at most a few times
/// their own size.
pub(crate) const COPY_BELOW: usize = 64 * 1024;

/// The largest piece a read yields; larger chunks are sliced (no copy).
const READ_PIECE: usize = 256 * 1024;

/// A blob's bytes as they arrive: large pieces kept as they are, small
/// ones copied into owned buffers of about [`COPY_BELOW`] bytes, so what
/// is stored holds only its own bytes.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    done: Vec<Bytes>,
    small: Vec<u8>,
    len: u64,
}

impl Chunks {
    /// Appends a piece.
    pub(crate) fn push(&mut self, piece: Bytes) {
        self.len += piece.len() as u64;
        if piece.len() >= COPY_BELOW {
            self.flush();
            self.done.push(piece);
            return;
        }
        self.small.extend_from_slice(&piece);
        if self.small.len() >= COPY_BELOW {
            self.flush();
        }
    }

    /// The total length pushed.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The pieces so far, without taking them (the small tail is copied).
    pub(crate) fn snapshot(&self) -> Vec<Bytes> {
        let mut pieces = self.done.clone();
        if !self.small.is_empty() {
            pieces.push(Bytes::copy_from_slice(&self.small));
        }
        pieces
    }

    /// The finished blob.
    pub(crate) fn finish(mut self) -> BlobData {
        self.flush();
        BlobData {
            chunks: self.done.into(),
            len: self.len,
        }
    }

    /// Moves the small buffer, trimmed to its length, to the done pieces.
    fn flush(&mut self) {
        if !self.small.is_empty() {
            let mut small = std::mem::take(&mut self.small);
            small.shrink_to_fit();
            self.done.push(Bytes::from(small));
        }
    }
}

/// A blob's bytes, cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlobData {
    chunks: Arc<[Bytes]>,
    len: u64,
}

impl BlobData {
    /// The blob made of `pieces`, in order.
    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> BlobData {
        let mut chunks = Chunks::default();
        for piece in pieces {
            chunks.push(piece);
        }
        chunks.finish()
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

    /// Counts the live buffers it owns.
    struct Counted(Vec<u8>, #[allow(dead_code)] Arc<()>);

    impl AsRef<[u8]> for Counted {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn small_pieces_do_not_keep_their_buffers_alive() {
        let live = Arc::new(());
        let buffer = Bytes::from_owner(Counted(vec![7u8; 1 << 20], live.clone()));
        let mut chunks = Chunks::default();
        for i in 0..1000 {
            chunks.push(buffer.slice(i..i + 1));
        }
        let large = buffer.slice(0..COPY_BELOW);
        chunks.push(large.clone());
        drop(buffer);
        let snapshot = chunks.snapshot();
        let data = chunks.finish();
        assert_eq!(data.len(), 1000 + COPY_BELOW as u64);
        // The large piece is kept without a copy, the small ones are not.
        assert_eq!(Arc::strong_count(&live), 2);
        drop((large, snapshot, data));
        assert_eq!(Arc::strong_count(&live), 1);
    }
}
