//! How pushed blobs reach the disk: by default around the page cache
//! (`Writes::Direct`), so a push leaves memory to what readers use; with
//! `Writes::Cached` (a mirror's cache) through it, so the blob is read
//! back from memory. And how blobs are read back: a piece the page cache
//! holds on the reading task itself, any other on the blocking pool, both
//! giving the stored bytes, whole and in ranges, in pieces of bounded
//! size. Needs a file system with direct writes (ext4, xfs, btrfs) under
//! the temporary directory, and `fincore` (util-linux).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use oci_core::registry::bytes_stream;
use oci_core::testkit::random_bytes;
use oci_core::{Digest, RangeRequest, Registry, RepoName};
use oci_layout::{LayoutOptions, LayoutRegistry, Writes};

/// The largest piece a read may yield (the store's own bound).
const PIECE: usize = 256 * 1024;

/// A store opened with `writes` in a fresh temporary directory (which
/// lives as long as the returned handle).
async fn store(writes: Writes) -> (tempfile::TempDir, LayoutRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let options = LayoutOptions {
        writes,
        ..Default::default()
    };
    let reg = LayoutRegistry::open_with(dir.path(), options)
        .await
        .unwrap();
    (dir, reg)
}

/// Bytes of `path` in the page cache, as `fincore` reports them.
fn resident(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--raw", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) runs");
    assert!(out.status.success(), "fincore: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("fincore prints a byte count")
}

/// Pushes 8 MiB and a bit, monolithic and chunked, into a store opened
/// with `writes`; returns the resident bytes of each blob file.
async fn pushed(writes: Writes) -> Vec<u64> {
    let (dir, reg) = store(writes).await;
    let app: RepoName = "app".parse().unwrap();
    let mut resident_bytes = Vec::new();
    for chunked in [false, true] {
        let data = random_bytes((8 << 20) + 1234);
        let digest = Digest::sha256(&data);
        if chunked {
            let mut writer = reg.push_blob_chunked(&app).await.unwrap();
            for piece in data.chunks(4 << 20) {
                writer
                    .write(bytes::Bytes::copy_from_slice(piece))
                    .await
                    .unwrap();
            }
            writer.commit(&digest).await.unwrap();
        } else {
            reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 1 << 20))
                .await
                .unwrap();
        }
        let path = dir.path().join("app/blobs/sha256").join(digest.hex());
        // Measured before the bytes are read back, which caches them.
        resident_bytes.push(resident(&path));
        assert_eq!(std::fs::read(&path).unwrap(), data.as_ref());
    }
    resident_bytes
}

#[tokio::test]
async fn a_push_goes_around_the_page_cache_unless_the_store_keeps_it_cached() {
    for bytes in pushed(Writes::Direct).await {
        // At most the last partial block went through the cache.
        assert!(
            bytes < 64 << 10,
            "a direct push filled the page cache: {bytes}"
        );
    }
    for bytes in pushed(Writes::Cached).await {
        assert!(
            bytes >= 8 << 20,
            "a cached push keeps the blob in memory: {bytes}"
        );
    }
}

/// The bytes of a whole read or of range `r`, each piece checked for its
/// size.
async fn collect(
    reg: &LayoutRegistry,
    app: &RepoName,
    d: &Digest,
    r: Option<RangeRequest>,
) -> Vec<u8> {
    let reader = match r {
        Some(r) => reg.get_blob_range(app, d, r).await.unwrap(),
        None => reg.get_blob(app, d).await.unwrap(),
    };
    let mut stream = reader.stream;
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        assert!(
            !piece.is_empty() && piece.len() <= PIECE,
            "a piece of {}",
            piece.len()
        );
        out.extend_from_slice(&piece);
    }
    out
}

#[tokio::test]
async fn blobs_read_back_whole_and_in_ranges_from_the_disk_and_from_the_page_cache() {
    for writes in [Writes::Direct, Writes::Cached] {
        let (_dir, reg) = store(writes).await;
        let app: RepoName = "app".parse().unwrap();
        let data = random_bytes((3 << 20) + 17);
        let d = Digest::sha256(&data);
        reg.push_blob(
            &app,
            &d,
            Some(data.len() as u64),
            bytes_stream(data.clone(), 64 << 10),
        )
        .await
        .unwrap();
        // Direct writes leave the first read to the disk; every later one
        // (and every read after cached writes) finds the page cache warm.
        for round in 0..2 {
            assert!(
                collect(&reg, &app, &d, None).await == data[..],
                "{writes:?} round {round}"
            );
            for (start, end) in [
                (0, 0),
                (1, PIECE as u64),
                (300_001, 2_900_000),
                (data.len() as u64 - 5, data.len() as u64 - 1),
            ] {
                let got = collect(&reg, &app, &d, Some(RangeRequest::bounded(start, end))).await;
                assert!(
                    got == data[start as usize..=end as usize],
                    "{writes:?} bytes {start}-{end}"
                );
            }
        }
    }
}
