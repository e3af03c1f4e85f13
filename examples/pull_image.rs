//! Pull an image for one platform into a `docker save` tarball with the
//! library face of `ocidist pull`:
//!
//! ```text
//! cargo run -p ocidist --example pull_image -- localhost:5000/demo/hello:latest linux/amd64 hello.tar
//! ```

use std::path::Path;
use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::{Platform, Reference};
use ocidist::puller::{Format, Puller};

#[tokio::main]
async fn main() -> oci_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let reference: Reference = args
        .next()
        .unwrap_or_else(|| "localhost:5000/demo/hello".into())
        .parse()?;
    let platform: Platform = args
        .next()
        .unwrap_or_else(|| "linux/amd64".into())
        .parse()?;
    let out = args.next().unwrap_or_else(|| "image.tar".into());

    let client = Client::new(reference.registry(), ClientOptions::default())?;
    let report = Puller::new(Arc::new(client))
        .pull(
            &reference,
            &platform,
            Format::Docker,
            Path::new(&out),
            false,
        )
        .await?;
    println!(
        "{} -> {}",
        report.resolved.manifest.digest(),
        report.path.display()
    );
    Ok(())
}
