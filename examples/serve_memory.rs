//! Serve an in-memory registry over HTTP on 127.0.0.1:5000 (or the address
//! given), the smallest complete registry:
//!
//! ```text
//! cargo run -p ocidist --example serve_memory -- 127.0.0.1:5000
//! ```

use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    oci_server::serve(listener, Arc::new(oci_mem::MemRegistry::new())).await
}
