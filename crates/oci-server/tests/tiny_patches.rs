//! 50,000 one-byte PATCHes, each on a new connection, into the in-memory
//! store: what is stored must cost about what it holds, not the
//! connection buffers its bytes arrived in (RSS once grew 400 MiB for 50 KB).
//! Alone in its test binary, so no other test moves the process's RSS.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use oci_core::{Registry, RepoName};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use oci_testbed::load::{commit_tiny, rss, tiny_patches};

/// Uploads filled at once, one task each.
const UPLOADS: usize = 50;
/// One-byte PATCHes per upload.
const PATCHES: usize = 1_000;
/// The most the process may grow while storing 50,000 bytes this way.
const MAX_GROWTH: u64 = 32 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_patches_cost_what_they_store() {
    let registry = Arc::new(MemRegistry::new());
    let server = TestServer::start(registry.clone()).await;
    let addr = server.addr();

    // Warm up the runtime, the allocator and the connection paths.
    let warm = tiny_patches(addr, "warm/up", UPLOADS, 40).await.unwrap();
    commit_tiny(addr, &warm).await.unwrap();
    let before = rss(None).unwrap();

    let filled = tiny_patches(addr, "tiny/patches", UPLOADS, PATCHES)
        .await
        .unwrap();
    let digests = commit_tiny(addr, &filled).await.unwrap();
    let after = rss(None).unwrap();
    let growth = after.saturating_sub(before);
    let stored = (UPLOADS * PATCHES) as u64;
    println!(
        "{} one-byte PATCHes: RSS {} KiB -> {} KiB, growth {} KiB ({} bytes per byte stored)",
        UPLOADS * PATCHES,
        before / 1024,
        after / 1024,
        growth / 1024,
        growth / stored
    );

    let repo: RepoName = "tiny/patches".parse().unwrap();
    for (upload, digest) in filled.iter().zip(&digests) {
        let read = registry.get_blob(&repo, digest).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), &upload.data[..]);
    }
    assert!(
        growth < MAX_GROWTH,
        "storing {stored} bytes in one-byte PATCHes grew RSS by {} KiB",
        growth / 1024
    );

    for digest in &digests {
        registry.delete_blob(&repo, digest).await.unwrap();
    }
    println!(
        "after deleting the blobs: RSS {} KiB",
        rss(None).unwrap() / 1024
    );
}
