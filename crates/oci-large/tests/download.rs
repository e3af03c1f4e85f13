//! Downloads over misbehaving in-memory registries: byte-identical
//! results, per-chunk retries, the whole-blob fallback, digest checks and
//! bounded work in flight.

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::registry::collect_list;
use oci_core::testkit::{push_bytes, random_bytes};
use oci_core::{Descriptor, Digest, ErrorCode, Registry, RepoName, media};
use oci_large::{DownloadOptions, download, download_to_file};
use support::{Counters, Quirk, Quirky, assert_code};

const KIB: u64 = 1024;

/// Small chunks so that a blob of a few MiB takes many requests.
fn options() -> DownloadOptions {
    DownloadOptions {
        concurrency: 3,
        initial_chunk: 256 * KIB,
        min_chunk: 64 * KIB,
        max_chunk: 512 * KIB,
        retries: 2,
        retry_delay: Duration::ZERO,
        ..DownloadOptions::default()
    }
}

fn repo() -> RepoName {
    "big/blob"
        .parse()
        .unwrap_or_else(|e| panic!("repository name: {e}"))
}

/// A registry with `quirk` holding a random blob of `len` bytes.
async fn setup(quirk: Quirk, len: usize) -> (Arc<Quirky>, Descriptor, Bytes) {
    let reg = Quirky::new(quirk);
    let data = random_bytes(len);
    let d = push_bytes(reg.inner(), &repo(), media::OCI_LAYER, &data).await;
    (reg, d, data)
}

fn count(c: &AtomicUsize) -> usize {
    Counters::get(c)
}

async fn read_all(reg: Arc<Quirky>, d: &Descriptor) -> oci_core::Result<Bytes> {
    let pieces = collect_list(download(reg, repo(), d.clone(), options())).await?;
    Ok(pieces.concat().into())
}

#[tokio::test]
async fn a_download_is_byte_identical_and_uses_many_ranges() {
    let (reg, d, data) = setup(Quirk::None, 3_000_000 + 17).await;
    let got = read_all(Arc::clone(&reg), &d).await.unwrap();
    assert!(got == data, "the downloaded bytes differ");
    let c = &reg.counters;
    assert!(count(&c.ranges) >= 6, "{} range reads", count(&c.ranges));
    assert_eq!(count(&c.whole), 0);
    assert!(
        count(&c.max_len) as u64 <= 512 * KIB,
        "a chunk above the maximum"
    );
}

#[tokio::test]
async fn a_download_to_a_file_is_byte_identical() {
    let (reg, d, data) = setup(Quirk::None, 2_000_000).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    download_to_file(reg, &repo(), &d, &path, options())
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "the file differs");
}

#[tokio::test]
async fn broken_ranges_are_retried_chunk_by_chunk() {
    let (reg, d, data) = setup(Quirk::BreakEveryNthRange(3), 3_000_000).await;
    let got = read_all(Arc::clone(&reg), &d).await.unwrap();
    assert!(got == data, "the downloaded bytes differ");
    assert!(count(&reg.counters.broken) >= 2, "failures were injected");

    let (reg, d, data) = setup(Quirk::BreakEveryNthRange(2), 1_500_000).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    download_to_file(reg.clone(), &repo(), &d, &path, options())
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "the file differs");
    assert!(count(&reg.counters.broken) >= 2, "failures were injected");
}

#[tokio::test]
async fn a_chunk_that_keeps_failing_fails_the_download() {
    let (reg, d, _) = setup(Quirk::BreakEveryNthRange(1), 1_000_000).await;
    assert_code(read_all(Arc::clone(&reg), &d).await, ErrorCode::Unknown);
    // The first chunk was tried once and retried twice, then given up.
    assert_eq!(count(&reg.counters.ranges), 3);
}

#[tokio::test]
async fn registries_without_ranges_are_read_whole() {
    for quirk in [Quirk::RangesUnsupported, Quirk::RangesIgnored] {
        let (reg, d, data) = setup(quirk, 1_000_000).await;
        let got = read_all(Arc::clone(&reg), &d).await.unwrap();
        assert!(got == data, "{quirk:?}: the downloaded bytes differ");
        assert_eq!(count(&reg.counters.ranges), 1, "{quirk:?}: one probe");
        assert_eq!(count(&reg.counters.whole), 1, "{quirk:?}: one whole read");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        download_to_file(reg, &repo(), &d, &path, options())
            .await
            .unwrap();
        assert!(
            std::fs::read(&path).unwrap() == data,
            "{quirk:?}: the file differs"
        );
    }
}

#[tokio::test]
async fn corrupt_content_fails_at_the_end_of_the_stream() {
    let (reg, d, data) = setup(Quirk::CorruptRanges, 1_000_000).await;
    let mut stream = download(reg.clone(), repo(), d.clone(), options());
    let mut delivered = 0;
    let mut last = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(piece) => delivered += piece.len(),
            Err(err) => last = Some(err),
        }
    }
    assert_eq!(
        delivered,
        data.len(),
        "every byte is delivered before the verdict"
    );
    let err = last.unwrap_or_else(|| panic!("a corrupt blob streamed without an error"));
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let result = download_to_file(reg, &repo(), &d, &path, options()).await;
    assert_code(result, ErrorCode::DigestInvalid);
    assert!(!path.exists(), "the file of a failed download is removed");
}

#[tokio::test]
async fn a_wrong_size_is_detected() {
    let (reg, mut d, _) = setup(Quirk::None, 100_000).await;
    d.size -= 1;
    // Exactly the declared bytes are read, and they do not hash right.
    assert_code(read_all(reg, &d).await, ErrorCode::DigestInvalid);
}

#[tokio::test]
async fn a_stalled_reader_stops_the_download() {
    let (reg, d, _) = setup(Quirk::None, 8_000_000).await;
    let opts = options();
    let mut stream = download(reg.clone(), repo(), d.clone(), opts.clone());
    for _ in 0..2 {
        stream.next().await.unwrap().unwrap();
    }
    // Give spawned requests every chance to run ahead of the reader.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let c = &reg.counters;
    assert!(
        count(&c.ranges) <= 2 + opts.concurrency,
        "{} range reads started for 2 chunks read",
        count(&c.ranges)
    );
    assert!(
        count(&c.max_open) <= opts.concurrency,
        "too many reads at once"
    );
    drop(stream);

    let full = read_all(reg.clone(), &d).await.unwrap();
    assert_eq!(full.len(), 8_000_000);
    assert!(
        count(&c.max_open) <= opts.concurrency,
        "too many reads at once"
    );
}

#[tokio::test]
async fn an_empty_blob_downloads() {
    let (reg, d, data) = setup(Quirk::None, 0).await;
    assert!(read_all(Arc::clone(&reg), &d).await.unwrap() == data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    download_to_file(reg, &repo(), &d, &path, options())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap().len(), 0);
}

#[tokio::test]
async fn an_unknown_blob_is_blob_unknown() {
    let (reg, _, _) = setup(Quirk::None, 10).await;
    let d = Descriptor::new(media::OCI_LAYER, Digest::sha256(b"absent"), 1_000_000);
    assert_code(read_all(reg.clone(), &d).await, ErrorCode::BlobUnknown);
    assert!(reg.resolve_blob(&repo(), &d.digest).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_chunk_size_follows_the_measured_speed() {
    // Each request runs at 2 MiB/s: a request of 0.5-1 s is 1-2 MiB.
    let speed = 2 * 1024 * KIB;
    let (reg, d, data) = setup(Quirk::Throttled(speed), 40 * 1024 * 1024).await;
    let opts = DownloadOptions {
        max_chunk: 16 * 1024 * KIB,
        ..options()
    };
    let pieces = collect_list(download(reg.clone(), repo(), d, opts))
        .await
        .unwrap();
    assert!(pieces.concat() == data, "the downloaded bytes differ");
    let lengths = reg
        .counters
        .lengths
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(lengths[0], 256 * KIB, "starts at the initial size");
    let last_full = &lengths[lengths.len() - 5..lengths.len() - 1];
    for &len in last_full {
        let secs = len as f64 / speed as f64;
        assert!(
            (0.5..=1.0).contains(&secs),
            "a late chunk of {len} bytes takes {secs} s; all: {lengths:?}"
        );
    }
}

#[tokio::test]
async fn a_failure_that_is_not_transient_is_not_retried() {
    let (reg, d, _) = setup(Quirk::RangesCorrupt, 1_000_000).await;
    assert_code(read_all(Arc::clone(&reg), &d).await, ErrorCode::Unknown);
    assert_eq!(
        count(&reg.counters.ranges),
        1,
        "a corrupt store is asked once, not 1 + 2 retries"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_within_the_chunk_budget() {
    let (reg, d, _) = setup(Quirk::RangesUnavailable, 1_000_000).await;
    assert_code(read_all(Arc::clone(&reg), &d).await, ErrorCode::Unknown);
    assert_eq!(count(&reg.counters.ranges), 3, "1 try + 2 retries");
}
