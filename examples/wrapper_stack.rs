//! Compose wrappers and serve the stack: a read-only view of an upstream
//! registry, unified with a local in-memory store that takes the writes
//! the upstream refuses, every call traced.
//!
//! ```text
//! RUST_LOG=oci_debug=debug cargo run -p ocidist --example wrapper_stack -- 127.0.0.1:5001 localhost:5000
//! ```

use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::Registry;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5001".into());
    let upstream = args.next().unwrap_or_else(|| "localhost:5000".into());

    let remote: Arc<dyn Registry> = Arc::new(oci_filter::ReadOnly::new(Arc::new(Client::new(
        &upstream,
        ClientOptions::default(),
    )?)));
    let local: Arc<dyn Registry> = Arc::new(oci_mem::MemRegistry::new());
    let unified: Arc<dyn Registry> = Arc::new(oci_unify::Unify::new(
        local,
        remote,
        oci_unify::ReadPolicy::Sequential,
    ));
    let traced = Arc::new(oci_debug::Traced::new(unified));

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "listening on http://{} (reads fall through to {upstream})",
        listener.local_addr()?
    );
    oci_server::serve(listener, traced).await?;
    Ok(())
}
