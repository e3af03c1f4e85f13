//! `oci-conformance-server`: this project's registry server over a chosen
//! store, for the official OCI conformance suite and the benchmarks.
//!
//! ```text
//! oci-conformance-server --addr 127.0.0.1:5000 --store mem
//! ```
//!
//! Prints `listening on http://ADDR` once the listener is bound, then
//! serves until killed. Logs go to stderr, filtered by `RUST_LOG`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(name = "oci-conformance-server", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: String,
    /// Storage behind the server: `mem`, `layout:DIR`, `proxy:URL`, or a
    /// stack of wrappers such as `debug:unify:mem,proxy:http://…`.
    #[arg(long, default_value = "mem")]
    store: String,
}

fn main() -> ExitCode {
    oci_server::tune_allocator();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve_main()),
        Err(e) => {
            eprintln!("oci-conformance-server: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("oci-conformance-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let registry = oci_conformance::store::open_store(&args.store).await?;
    let listener = TcpListener::bind(&args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    tracing::info!(%addr, store = %args.store, "serving");
    oci_server::serve(listener, registry)
        .await
        .map_err(|e| format!("server failed: {e}"))
}
