//! Fetches one blob from a registry over HTTP and reports the time taken:
//! the driver of `bench/large.sh`.
//!
//! ```text
//! cargo run --release -p oci-large --example fetch -- \
//!     127.0.0.1:5000 bench/big sha256:… 1073741824 ranges /tmp/out
//! ```
//!
//! Modes: `ranges` (parallel range requests into a file, `download_to_file`),
//! `ranges-stream` (the ordered `download` stream, discarded), `single`
//! (one `get_blob` stream into a file). `FETCH_CONCURRENCY` sets the
//! number of range requests in flight (default 4).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use oci_client::{Client, ClientOptions};
use oci_core::{Descriptor, Digest, Registry, RepoName, media};
use oci_large::{DownloadOptions, download, download_to_file};

/// What to fetch and how.
struct Args {
    host: String,
    repo: RepoName,
    digest: Digest,
    size: u64,
    mode: String,
    out: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, repo, digest, size, mode, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: fetch HOST:PORT REPO DIGEST SIZE ranges|ranges-stream|single [OUT]".into(),
        );
    };
    Ok(Args {
        host: host.clone(),
        repo: repo.parse().map_err(|e| format!("repository: {e}"))?,
        digest: digest.parse().map_err(|e| format!("digest: {e}"))?,
        size: size.parse().map_err(|e| format!("size: {e}"))?,
        mode: mode.clone(),
        out: rest.first().map(PathBuf::from),
    })
}

async fn run(args: Args) -> Result<(), String> {
    let client = Client::new(&args.host, ClientOptions::default()).map_err(|e| e.to_string())?;
    let reg: Arc<dyn Registry> = Arc::new(client);
    let descriptor = Descriptor::new(media::OCI_LAYER, args.digest.clone(), args.size);
    let mut options = DownloadOptions::default();
    if let Ok(n) = std::env::var("FETCH_CONCURRENCY") {
        options.concurrency = n.parse().map_err(|e| format!("FETCH_CONCURRENCY: {e}"))?;
    }
    let out = || args.out.clone().ok_or("this mode needs an output file");
    let started = Instant::now();
    match args.mode.as_str() {
        "ranges" => download_to_file(reg, &args.repo, &descriptor, &out()?, options)
            .await
            .map_err(|e| e.to_string())?,
        "ranges-stream" => {
            let mut stream = download(reg, args.repo.clone(), descriptor, options);
            while let Some(piece) = stream.next().await {
                piece.map_err(|e| e.to_string())?;
            }
        }
        "single" => {
            let reader = reg
                .get_blob(&args.repo, &args.digest)
                .await
                .map_err(|e| e.to_string())?;
            let mut file = std::fs::File::create(out()?).map_err(|e| e.to_string())?;
            let mut stream = reader.stream;
            while let Some(piece) = stream.next().await {
                file.write_all(&piece.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            file.sync_all().map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    let secs = started.elapsed().as_secs_f64();
    let mib = args.size as f64 / (1024.0 * 1024.0);
    // The one line bench/large.sh reads.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{} {secs:.3} {:.1}", args.mode, mib / secs).map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match parse() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "fetch: {e}");
        std::process::exit(1);
    }
}
