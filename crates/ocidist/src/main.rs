//! The `ocidist` command.

mod cli;
mod commands;
mod connect_flags;
mod mirror;
mod pretty;

// The library's modules, reachable as `crate::…` from the command code.
use ocidist::{
    artifact, connect, copy, demo, export, failure, login, progress, puller, pusher, referrers,
    server_auth, staged, storage,
};

use cli::Cli;
use failure::Told;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse_args();
    if cli.parsed {
        println!("{cli:#?}");
        return;
    }
    // -v shows every registry call (oci-debug's events), -vv everything.
    let serving = matches!(cli.command, cli::Command::Serve { .. });
    let level = match cli.verbose {
        // A server logs its errors. A command tells its failure once, as
        // the one-line reason (a store it opened itself logs its errors
        // too, which would repeat it); library warnings (retries) show
        // from -v on.
        0 if serving => "error",
        0 => "off",
        1 => "warn,oci_debug=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let cli::Command::Serve { limits, mirror, .. } = &cli.command {
        oci_server::tune_allocator();
        // A mirror receives every blob it caches into fresh network
        // buffers, as a client does.
        if mirror.enabled() {
            keep_freed_memory();
        }
        raise_open_file_limit(limits.max_connections);
    } else {
        keep_freed_memory();
    }
    let runtime = if cli.command.is_single_stream() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ocidist: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = commands::run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(Told {
                code: failure::EXIT_INTERRUPTED,
                message: "interrupted".to_owned(),
            }),
        }
    });
    if let Err(told) = result {
        eprintln!("ocidist: {}", one_line(&told.message));
        std::process::exit(told.code);
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Streaming a large blob allocates a network buffer per read and frees it
/// once hashed and written. glibc's defaults hand that memory back to the
/// kernel whenever the heap's top frees up, so the next buffers fault their
/// pages in again: about a third of a 200 MiB download re-faulted, some 8%
/// of the command's time. A short-lived client keeps its freed memory
/// instead (peak RSS is unchanged; it is what the transfer needed anyway).
/// The server, which runs for long, is tuned by `oci_server::tune_allocator`;
/// a mirror (`serve --mirror`) receives like a client and keeps freed memory
/// too: per cold 200 MiB pull, 30,000 page faults fewer and about 60 ms less
/// system time (its peak RSS is what its transfers need, as before).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters, and is called here
    // before the process has started any other thread.
    unsafe {
        // Allocations up to 8 MiB come from the heap, not their own mmap
        // (setting a value also stops glibc's self-adjusting thresholds).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        // Keep up to 64 MiB of freed heap instead of trimming it.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Files a server keeps open besides its connections (store files, the
/// connections over the limit being answered 503, the runtime's own).
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Raises the soft open-file limit towards the hard one so the server can
/// hold `max_connections`; warns when even the hard limit is too low (then
/// connections beyond it fail to be accepted and are retried).
fn raise_open_file_limit(max_connections: usize) {
    let wanted = max_connections as u64 + FILES_BESIDES_CONNECTIONS;
    let limit = oci_server::raise_open_files(wanted);
    if limit < wanted {
        eprintln!(
            "ocidist: the open-file limit ({}) is below --max-connections {max_connections} plus {FILES_BESIDES_CONNECTIONS}; lower --max-connections or raise `ulimit -n`",
            limit
        );
    }
}
