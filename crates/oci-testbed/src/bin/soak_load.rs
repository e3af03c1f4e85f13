//! `soak-load`: the load of `bench/soak.sh` against one registry on
//! loopback. Phase one holds slow-reading downloads and idle connections
//! open while a normal client pushes and pulls, every request timed;
//! phase two feeds uploads one byte per connection and measures how much
//! the server process (`PID`) grows.
//!
//! ```text
//! soak-load ADDR PID [SLOW IDLE ROUNDS UPLOADS PATCHES]
//! ```
//!
//! Prints one line of `key=value` figures on stdout (the script's table
//! reads it) and the latencies of each kind of request on stderr.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use oci_core::Digest;
use oci_testbed::load::{self, Normal, SlowReaders};

fn usage() -> ExitCode {
    eprintln!("usage: soak-load ADDR PID [SLOW IDLE ROUNDS UPLOADS PATCHES]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(pid)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|p| p.parse::<u32>().ok()),
    ) else {
        return usage();
    };
    let mut numbers = [500usize, 1_000, 200, 50, 1_000];
    for (slot, arg) in numbers.iter_mut().zip(args.iter().skip(2)) {
        match arg.parse() {
            Ok(n) => *slot = n,
            Err(_) => return usage(),
        }
    }
    let [slow, idle, rounds, uploads, patches] = numbers;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak-load: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wanted = (slow + idle) as u64 + 1_024;
    let limit = load::raise_open_files(wanted);
    if limit < wanted {
        eprintln!("soak-load: needs {wanted} open files, the limit is {limit}");
        return ExitCode::FAILURE;
    }
    runtime.block_on(run(addr, pid, slow, idle, rounds, uploads, patches))
}

async fn run(
    addr: SocketAddr,
    pid: u32,
    slow: usize,
    idle: usize,
    rounds: usize,
    uploads: usize,
    patches: usize,
) -> ExitCode {
    let mut normal = Normal::new(addr);
    let big = Bytes::from(vec![7u8; 256 * 1024]);
    let digest = Digest::sha256(&big);
    if !normal.push_blob("soak/big", big).await {
        eprintln!("soak-load: cannot seed the blob: {:?}", normal.errors);
        return ExitCode::FAILURE;
    }
    normal.latencies.clear();

    let readers = SlowReaders::start(addr, &format!("/v2/soak/big/blobs/{digest}"), slow);
    let idle_open = load::idle_connections(addr, idle).await;
    // Let every reader get its download under way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for round in 0..rounds {
        normal.round(round).await;
    }
    let slow_kib = readers.bytes_read() / 1024;
    let idle_count = idle_open.len();
    readers.stop().await;
    drop(idle_open);
    eprint!("{}", normal.report());
    for e in normal.errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    let figures = normal.summary();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (rss_before, rss_after, tiny_errors) = match tiny(addr, pid, uploads, patches).await {
        Ok((before, after)) => (before, after, 0),
        Err(e) => {
            eprintln!("tiny PATCHes: {e}");
            (0, 0, 1)
        }
    };
    println!(
        "requests={} errors={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} slow_kib={slow_kib} idle_open={idle_count} rss_before_kib={} rss_after_kib={} rss_growth_kib={} tiny_errors={tiny_errors}",
        figures.count,
        normal.errors.len(),
        ms(figures.p50),
        ms(figures.p99),
        ms(figures.max),
        rss_before / 1024,
        rss_after / 1024,
        rss_after.saturating_sub(rss_before) / 1024,
    );
    ExitCode::SUCCESS
}

/// Tiny PATCHes after a warm-up: the server's RSS before and after.
async fn tiny(
    addr: SocketAddr,
    pid: u32,
    uploads: usize,
    patches: usize,
) -> Result<(u64, u64), String> {
    let rss = || load::rss(Some(pid)).map_err(|e| format!("RSS of {pid}: {e}"));
    let warm = load::tiny_patches(addr, "warm/up", uploads, 40).await?;
    load::commit_tiny(addr, &warm).await?;
    let before = rss()?;
    let filled = load::tiny_patches(addr, "tiny/patches", uploads, patches).await?;
    load::commit_tiny(addr, &filled).await?;
    Ok((before, rss()?))
}
