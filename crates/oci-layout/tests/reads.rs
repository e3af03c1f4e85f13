//! How stored blobs are read back: a piece the page cache holds is read
//! on the reading task itself, any other on the blocking pool; both give
//! the stored bytes, whole and in ranges, in pieces of bounded size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use oci_core::registry::bytes_stream;
use oci_core::testkit::random_bytes;
use oci_core::{Digest, RangeRequest, Registry, RepoName};
use oci_layout::{LayoutOptions, LayoutRegistry, Writes};

/// The largest piece a read may yield (the store's own bound).
const PIECE: usize = 256 * 1024;

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
        let dir = tempfile::tempdir().unwrap();
        let options = LayoutOptions {
            writes,
            ..Default::default()
        };
        let reg = LayoutRegistry::open_with(dir.path(), options)
            .await
            .unwrap();
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
