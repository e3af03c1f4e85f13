//! `export`.

use std::path::Path;

use super::{CmdResult, platform_of, reference};
use crate::cli::PlatformFlags;
use crate::connect::Connector;
use crate::export::{Output, export as flatten};
use crate::puller::Puller;

/// At most this many skipped entries are listed on stderr.
const LISTED: usize = 20;

pub async fn export(
    connector: &Connector,
    reference_arg: &str,
    output: &Path,
    force: bool,
    platform: &PlatformFlags,
) -> CmdResult {
    let located = reference(reference_arg)?;
    let r = &located.reference;
    let puller = Puller::new(located.open(connector).await?)
        .platform_required(super::inspect::wants_platform(platform));
    let to_stdout = output == Path::new("-");
    let to = if to_stdout {
        Output::Stdout
    } else {
        Output::File {
            path: output,
            force,
        }
    };
    let report = flatten(&puller, r, &platform_of(platform)?, to).await?;
    for reason in report.skipped.reasons.iter().take(LISTED) {
        eprintln!("skipped {reason}");
    }
    let more = report.skipped.count.saturating_sub(LISTED as u64);
    if more > 0 {
        eprintln!("skipped {more} more entries");
    }
    if !to_stdout {
        println!("{}", report.resolved.manifest.digest());
    }
    let place = if to_stdout {
        "stdout".to_owned()
    } else {
        output.display().to_string()
    };
    eprintln!(
        "wrote {place} ({} entries from {} layers, {} skipped, {} bytes downloaded)",
        report.written,
        report.resolved.image.layers.len(),
        report.skipped.count,
        report.bytes
    );
    Ok(())
}
