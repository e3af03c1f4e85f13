//! Serves a `LayoutRegistry` over HTTP with `oci-server`.
//!
//! ```text
//! cargo run --release -p oci-layout --example serve_layout -- DIR [ADDR]
//! ```
//!
//! Opens (or creates) the store at DIR, binds ADDR (default
//! `127.0.0.1:5000`, port 0 for any), prints `listening on http://ADDR`
//! and serves until killed.

use std::io::Write as _;
use std::sync::Arc;

use oci_layout::LayoutRegistry;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: serve_layout DIR [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    let registry = LayoutRegistry::open(&dir).await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
    stdout.flush()?;
    oci_server::serve(listener, Arc::new(registry)).await?;
    Ok(())
}
