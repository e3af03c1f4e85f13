//! A chunked upload to both registries at once: one writer over two,
//! resumable by an id that encodes both sides' ids.

use async_trait::async_trait;
use bytes::Bytes;
use oci_core::{BlobWriter, Descriptor, Digest, Error, ErrorCode, Result};

use crate::outcome::{Side, both_written, pick_error, side_failed};

/// Writes to two inner writers, keeping them at the same offset. Its id
/// combines the inner ids as they stand after the last write.
pub(crate) struct UnifiedWriter {
    w0: Box<dyn BlobWriter>,
    w1: Box<dyn BlobWriter>,
    id: String,
    size: u64,
}

impl UnifiedWriter {
    /// Joins two writers, started or resumed, into one. A resumed pair may
    /// stand at different offsets; the writer continues from the lower one
    /// and the side ahead skips what it already has.
    pub(crate) fn new(w0: Box<dyn BlobWriter>, w1: Box<dyn BlobWriter>) -> UnifiedWriter {
        let id = encode_id(w0.id(), w1.id());
        let size = w0.size().min(w1.size());
        UnifiedWriter { w0, w1, id, size }
    }
}

/// The combined id: `<len0>-<id0>-<id1>`, where `len0` is the byte length
/// of `id0`. The length makes the split exact whatever the ids contain.
pub(crate) fn encode_id(id0: &str, id1: &str) -> String {
    format!("{}-{id0}-{id1}", id0.len())
}

/// The two ids of a combined id; `BLOB_UPLOAD_UNKNOWN` for anything this
/// wrapper did not hand out.
pub(crate) fn decode_id(id: &str) -> Result<(&str, &str)> {
    let unknown = || {
        Error::new(
            ErrorCode::BlobUploadUnknown,
            format!("{id:?} is not an upload of this unified registry"),
        )
    };
    let (len, rest) = id.split_once('-').ok_or_else(unknown)?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unknown());
    }
    let len: usize = len.parse().map_err(|_| unknown())?;
    let id0 = rest.get(..len).ok_or_else(unknown)?;
    let id1 = rest
        .get(len..)
        .and_then(|tail| tail.strip_prefix('-'))
        .ok_or_else(unknown)?;
    if id0.is_empty() || id1.is_empty() {
        return Err(unknown());
    }
    Ok((id0, id1))
}

/// Writes the part of `data` (which starts at `offset`) that `writer`
/// does not have yet.
async fn write_from(writer: &mut dyn BlobWriter, offset: u64, data: &Bytes) -> Result<()> {
    let have = writer.size().saturating_sub(offset);
    if have >= data.len() as u64 {
        return Ok(());
    }
    // `have` is below `data.len()`, so it fits a usize.
    writer.write(data.slice(have as usize..)).await
}

#[async_trait]
impl BlobWriter for UnifiedWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn chunk_min(&self) -> Option<u64> {
        match (self.w0.chunk_min(), self.w1.chunk_min()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        let offset = self.size;
        let (r0, r1) = futures::join!(
            write_from(self.w0.as_mut(), offset, &data),
            write_from(self.w1.as_mut(), offset, &data)
        );
        self.size = self.w0.size().min(self.w1.size());
        // An inner id may change as the upload goes (a client's id is the
        // session URL the registry hands back after each chunk).
        self.id = encode_id(self.w0.id(), self.w1.id());
        both_written("upload write", r0, r1)
    }

    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        let (r0, r1) = futures::join!(self.w0.commit(digest), self.w1.commit(digest));
        both_written("upload commit", r0, r1)
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        let (r0, r1) = futures::join!(self.w0.cancel(), self.w1.cancel());
        both_written("upload cancel", r0, r1)
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let (r0, r1) = futures::join!(self.w0.close(), self.w1.close());
        both_written("upload close", r0, r1)
    }
}

/// Two writers opened on both sides: joined, or — when one side failed —
/// the other released (cancelled if `fresh`, closed if resumed) and the
/// failure reported.
pub(crate) async fn join_writers(
    what: &str,
    fresh: bool,
    r0: Result<Box<dyn BlobWriter>>,
    r1: Result<Box<dyn BlobWriter>>,
) -> Result<Box<dyn BlobWriter>> {
    let release = |w: Box<dyn BlobWriter>| async move {
        let released = if fresh {
            w.cancel().await
        } else {
            w.close().await
        };
        if let Err(err) = released {
            tracing::warn!(%err, "releasing the other side's upload failed");
        }
    };
    match (r0, r1) {
        (Ok(w0), Ok(w1)) => Ok(Box::new(UnifiedWriter::new(w0, w1))),
        (Ok(w0), Err(e1)) => {
            release(w0).await;
            Err(side_failed(what, Side::R1, e1))
        }
        (Err(e0), Ok(w1)) => {
            release(w1).await;
            Err(side_failed(what, Side::R0, e0))
        }
        (Err(e0), Err(e1)) => Err(pick_error(e0, e1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_whatever_they_contain() {
        for (a, b) in [
            ("abc", "def"),
            ("1-x-", "-"),
            ("https://h/v2/r/blobs/uploads/9?x=1", "é"),
        ] {
            let id = encode_id(a, b);
            assert_eq!(decode_id(&id).unwrap(), (a, b), "{id}");
        }
    }

    #[test]
    fn foreign_ids_are_unknown_uploads() {
        for id in [
            "", "abc", "3-ab", "3-abc", "3-abcx", "-abc-d", "x-a-b", "99-a-b",
        ] {
            let err = decode_id(id).unwrap_err();
            assert!(err.is(ErrorCode::BlobUploadUnknown), "{id}: {err}");
        }
    }
}
