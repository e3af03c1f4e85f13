//! A layer blob as a synchronous reader of its uncompressed tar: the
//! verified network stream handed to a blocking thread, then gzip, zstd or
//! nothing undone, chosen by the blob's first bytes (its media type when
//! they are too few to tell). The one decompression path of `export` and
//! the `docker-save` archive; gzip is flate2 on miniz_oxide and zstd is
//! ruzstd, so no C is built.

use std::io::{self, BufRead, BufReader, Read};

use bytes::{Buf, Bytes};
use flate2::read::MultiGzDecoder;
use futures::{Stream, StreamExt};
use oci_core::{Error, Result};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use tokio::sync::mpsc;

/// Chunks of a blob queued between the network and the decompressing
/// thread.
const QUEUED_CHUNKS: usize = 16;

/// Runs `read` on a blocking thread over the uncompressed content of the
/// blob whose chunks `stream` yields, then reads what `read` left so the
/// whole blob passes through `stream`. Give it a
/// [`VerifyStream`](oci_core::VerifyStream): a blob that does not match its
/// digest or size then fails here, with the stream's error inside the
/// `io::Error` ([`blob_error`] takes it out).
pub async fn decompressed<S, T, F>(mut stream: S, media_type: &str, read: F) -> io::Result<T>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
    T: Send + 'static,
    F: FnOnce(Box<dyn Read + '_>) -> io::Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    let media_type = media_type.to_owned();
    let work = tokio::task::spawn_blocking(move || {
        let mut raw = ChunkReader::new(rx);
        let out = read(decoder(&mut raw, &media_type)?)?;
        raw.drain()?;
        Ok(out)
    });
    let feed = async move {
        while let Some(chunk) = stream.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                break;
            }
        }
    };
    tokio::pin!(work);
    let joined = tokio::select! {
        // Failed early (or done): the rest of the blob is not wanted.
        joined = &mut work => joined,
        () = feed => work.await,
    };
    joined.map_err(|e| io::Error::other(format!("decompressing thread failed: {e}")))?
}

/// The blob stream's own error (a wrong digest or size, a failed read) as
/// it was; any other failure (a damaged stream, a failed write) as
/// `otherwise` says.
pub fn blob_error(e: io::Error, otherwise: impl FnOnce(io::Error) -> Error) -> Error {
    match e.get_ref().and_then(|inner| stream_error(inner)) {
        Some(found) => found.clone(),
        None => otherwise(e),
    }
}

/// The stream's error inside `e`, however the decompressor wrapped it.
fn stream_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    if let Some(found) = e.downcast_ref::<Error>() {
        return Some(found);
    }
    // An io::Error's `source` skips the error it carries.
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        return stream_error(inner);
    }
    e.source().and_then(stream_error)
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames, skippable frames skipped).
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// What the first bytes of a blob say, else what its media type says.
    pub fn detect(head: &[u8], media_type: &str) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.len() >= ZSTD_MAGIC.len() {
            Compression::None
        } else if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The receiving end of a blob's chunks: a blocking [`Read`]. The sender
/// (an async task reading a verifying stream) sends an error instead of
/// ending when the digest or size is wrong, so reading to the end is what
/// checks the blob.
pub struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

impl ChunkReader {
    /// A reader of what arrives on `rx`.
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChunkReader {
        ChunkReader {
            rx,
            current: Bytes::new(),
            done: false,
        }
    }

    /// Reads and drops the rest, so the blob's digest is checked in full.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// The uncompressed tar of a layer read from `raw`.
pub fn decoder<'a, R: Read + 'a>(raw: R, media_type: &str) -> io::Result<Box<dyn Read + 'a>> {
    let mut raw = BufReader::with_capacity(64 << 10, raw);
    let compression = Compression::detect(raw.fill_buf()?, media_type);
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(ZstdFrames::new(raw)),
    })
}

/// Every zstd frame of a stream, one after another (ruzstd's decoder reads
/// one frame); skippable frames are skipped.
struct ZstdFrames<R: BufRead> {
    state: Frames<R>,
}

enum Frames<R: BufRead> {
    /// Between frames.
    Between(Peeked<R>, FrameDecoder),
    /// Inside a frame.
    In(StreamingDecoder<Peeked<R>, FrameDecoder>),
    /// After the last frame, or after a failure.
    Done,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(raw: R) -> ZstdFrames<R> {
        let raw = Peeked {
            head: Vec::new(),
            inner: raw,
        };
        ZstdFrames {
            state: Frames::Between(raw, FrameDecoder::new()),
        }
    }
}

/// A reader whose next few bytes can be looked at without consuming them,
/// however the underlying reads split them.
struct Peeked<R> {
    head: Vec<u8>,
    inner: R,
}

impl<R: BufRead> Peeked<R> {
    /// The next four bytes, not consumed; `None` at the end.
    fn peek4(&mut self) -> io::Result<Option<[u8; 4]>> {
        while self.head.len() < 4 {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(4 - self.head.len());
            self.head.extend_from_slice(&buf[..n]);
            self.inner.consume(n);
        }
        match self.head[..] {
            [] => Ok(None),
            [a, b, c, d, ..] => Ok(Some([a, b, c, d])),
            _ => Err(invalid("truncated frame header")),
        }
    }
}

impl<R: BufRead> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let mut avail = self.fill_buf()?;
            avail.read(buf)?
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Peeked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.head.is_empty() {
            self.inner.fill_buf()
        } else {
            Ok(&self.head)
        }
    }

    fn consume(&mut self, n: usize) {
        if self.head.is_empty() {
            self.inner.consume(n);
        } else {
            self.head.drain(..n.min(self.head.len()));
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, Frames::Done) {
                Frames::Done => return Ok(0),
                Frames::In(mut frame) => {
                    let n = frame.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.state = Frames::In(frame);
                        return Ok(n);
                    }
                    let (raw, decoder) = frame.into_parts();
                    self.state = Frames::Between(raw, decoder);
                }
                Frames::Between(mut raw, decoder) => {
                    let Some(magic) = raw.peek4()? else {
                        return Ok(0);
                    };
                    let magic = u32::from_le_bytes(magic);
                    if magic & 0xffff_fff0 == 0x184d_2a50 {
                        raw.consume(4);
                        let mut len = [0u8; 4];
                        raw.read_exact(&mut len)?;
                        let len = u64::from(u32::from_le_bytes(len));
                        let skipped = io::copy(&mut (&mut raw).take(len), &mut io::sink())?;
                        if skipped != len {
                            return Err(invalid("truncated skippable frame"));
                        }
                        self.state = Frames::Between(raw, decoder);
                        continue;
                    }
                    let frame =
                        StreamingDecoder::new_with_decoder(raw, decoder).map_err(invalid)?;
                    self.state = Frames::In(frame);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn zstd_frames_are_read_one_after_another_skipping_skippable_ones() {
        let mut stream = zstd(b"hello, ");
        stream.extend_from_slice(&0x184d_2a53u32.to_le_bytes());
        stream.extend_from_slice(&3u32.to_le_bytes());
        stream.extend_from_slice(b"xyz");
        stream.extend(zstd(b"world"));
        let mut out = Vec::new();
        decoder(&stream[..], "application/vnd.oci.image.layer.v1.tar+zstd")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello, world");
    }

    #[test]
    fn damaged_compressed_streams_fail_but_never_panic() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &data).unwrap();
        for stream in [zstd(&data), gz.finish().unwrap()] {
            for at in (0..stream.len()).step_by(3) {
                let mut damaged = stream.clone();
                damaged[at] ^= 0x5a;
                if let Ok(mut r) = decoder(&damaged[..], "") {
                    let _ = r.read_to_end(&mut Vec::new());
                }
                if let Ok(mut r) = decoder(&stream[..at], "") {
                    let _ = r.read_to_end(&mut Vec::new());
                }
            }
        }
    }

    /// A blob stream of `data` in small chunks, ending with `last`.
    fn chunks(data: &[u8], last: Option<Error>) -> impl Stream<Item = Result<Bytes>> + Unpin {
        let mut items: Vec<Result<Bytes>> = data
            .chunks(100)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        items.extend(last.map(Err));
        futures::stream::iter(items)
    }

    #[tokio::test]
    async fn a_blob_that_fails_its_digest_fails_with_the_streams_error_whatever_the_compression() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &data).unwrap();
        for stream in [zstd(&data), gz.finish().unwrap(), data.clone()] {
            let read_all = |mut r: Box<dyn Read + '_>| {
                let mut out = Vec::new();
                r.read_to_end(&mut out).map(|_| out)
            };
            let out = decompressed(chunks(&stream, None), "", read_all)
                .await
                .unwrap();
            assert_eq!(out, data);
            // Reading stops early: the rest is still read and checked.
            let wrong = Error::new(oci_core::ErrorCode::DigestInvalid, "wrong digest");
            let e = decompressed(chunks(&stream, Some(wrong)), "", |_| Ok(()))
                .await
                .unwrap_err();
            let e = blob_error(e, |e| Error::internal(e.to_string()));
            assert_eq!(e.code(), oci_core::ErrorCode::DigestInvalid, "{e}");
            let wrong = Error::new(oci_core::ErrorCode::DigestInvalid, "wrong digest");
            let e = decompressed(chunks(&stream, Some(wrong)), "", read_all)
                .await
                .unwrap_err();
            let e = blob_error(e, |e| Error::internal(e.to_string()));
            assert_eq!(e.code(), oci_core::ErrorCode::DigestInvalid, "{e}");
        }
    }

    #[test]
    fn compression_is_told_by_magic_before_media_type() {
        let gz = "application/vnd.oci.image.layer.v1.tar+gzip";
        assert_eq!(
            Compression::detect(b"\x1f\x8b\x08\0", gz),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect(b"\x28\xb5\x2f\xfd", gz),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/", gz), Compression::None);
        assert_eq!(Compression::detect(b"", gz), Compression::Gzip);
    }
}
