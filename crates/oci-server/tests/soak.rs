//! Soak: 500 connections reading a blob very slowly and 1,000 idle ones
//! held open while a normal client pushes and pulls, on the in-memory
//! store and on the disk store (`oci-layout`, as `ocidist serve
//! --storage` runs it). Every request of the normal client must succeed;
//! its latencies are printed, not asserted (the machine is shared;
//! `bench/soak.sh` measures them beside `docker-registry`). Loopback only,
//! bounded in count, stops by itself. Alone in its test binary: it raises
//! the open-file limit it needs.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use oci_core::Registry;
use oci_core::registry::bytes_stream;
use oci_core::{Digest, RepoName};
use oci_server::TestServer;
use oci_testbed::load::{self, Normal, SlowReaders};

const SLOW_READERS: usize = 500;
const IDLE: usize = 1_000;
/// Rounds of the normal client's push-and-pull workflow (ten requests
/// each) in memory, and on disk (where each push is fsynced).
const ROUNDS: usize = 200;
const DISK_ROUNDS: usize = 50;
/// The blob the slow readers download.
const SLOW_BLOB: usize = 256 * 1024;

/// The soak against a server over `registry`.
async fn soak(registry: Arc<dyn Registry>, rounds: usize) {
    // Each loopback connection is two descriptors in this one process.
    let wanted = 2 * (SLOW_READERS + IDLE) as u64 + 512;
    let limit = load::raise_open_files(wanted);
    assert!(
        limit >= wanted,
        "this test needs {wanted} open files; the hard limit is {limit}"
    );

    let server = TestServer::start(registry.clone()).await;
    let addr = server.addr();
    let repo: RepoName = "soak/big".parse().unwrap();
    let blob = Bytes::from(vec![7u8; SLOW_BLOB]);
    let digest = Digest::sha256(&blob);
    registry
        .push_blob(&repo, &digest, None, bytes_stream(blob, 65536))
        .await
        .unwrap();

    let slow = SlowReaders::start(addr, &format!("/v2/{repo}/blobs/{digest}"), SLOW_READERS);
    let idle = load::idle_connections(addr, IDLE).await;
    assert_eq!(idle.len(), IDLE, "idle connections refused");

    let mut normal = Normal::new(addr);
    let started = Instant::now();
    for round in 0..rounds {
        normal.round(round).await;
    }
    let took = started.elapsed();
    println!(
        "{SLOW_READERS} slow readers ({} KiB read in all), {IDLE} idle connections; {} normal requests in {took:.2?}:\n{}",
        slow.bytes_read() / 1024,
        normal.latencies.len(),
        normal.report()
    );
    assert!(normal.errors.is_empty(), "{:?}", normal.errors);
    assert_eq!(normal.latencies.len(), rounds * 10);
    drop(idle);
    slow.stop().await;
}

/// Runs one soak at a time (each holds 1,500 connections), on its own
/// two-thread runtime.
fn one_at_a_time(soak: impl std::future::Future<Output = ()>) {
    static ONE: Mutex<()> = Mutex::new(());
    let _turn = ONE.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(soak);
}

#[test]
fn a_normal_client_is_served_beside_slow_readers_and_idle_connections() {
    one_at_a_time(soak(Arc::new(oci_mem::MemRegistry::new()), ROUNDS));
}

#[test]
fn the_disk_store_serves_a_normal_client_beside_slow_readers_and_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    one_at_a_time(async {
        let registry = oci_layout::LayoutRegistry::open(dir.path()).await.unwrap();
        soak(Arc::new(registry), DISK_ROUNDS).await;
    });
}
