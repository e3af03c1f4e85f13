//! Debian's `docker-registry` (CNCF distribution 2.8) as a target for the
//! checks. The fixture itself is `oci-testbed`'s, shared with the other
//! crates' tests.

use std::io;

pub use oci_testbed::distribution::{BINARY, Distribution, Setup};

use crate::config::Config;
use crate::target::Target;

/// A fresh registry (plain http, no auth), started off the async runtime.
pub async fn start() -> io::Result<Distribution> {
    tokio::task::spawn_blocking(|| Distribution::start(Setup::default()))
        .await
        .map_err(io::Error::other)?
}

/// A target on a fresh registry (plain http, no auth); the registry lives
/// as long as the target.
pub async fn target(config: Config) -> io::Result<Target> {
    let registry = start().await?;
    let url = registry.url();
    Ok(Target::new(&url, config, Some(Box::new(registry))))
}
