//! How pushed blobs reach the disk: by default around the page cache
//! (`Writes::Direct`), so a push leaves memory to what readers use; with
//! `Writes::Cached` (a mirror's cache) through it, so the blob is read
//! back from memory. Needs a file system with direct writes (ext4, xfs,
//! btrfs) under the temporary directory, and `fincore` (util-linux).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oci_core::registry::bytes_stream;
use oci_core::testkit::random_bytes;
use oci_core::{Digest, Registry, RepoName};
use oci_layout::{LayoutOptions, LayoutRegistry, Writes};

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
    let dir = tempfile::tempdir().unwrap();
    let options = LayoutOptions {
        writes,
        ..Default::default()
    };
    let reg = LayoutRegistry::open_with(dir.path(), options)
        .await
        .unwrap();
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
