//! `pull` and `copy`.

use std::path::PathBuf;

use oci_core::{Platform, Reference};

use super::{CmdResult, bare_reference, reference};
use crate::cli::FormatArg;
use crate::connect::Connector;
use crate::copy::{CopyOptions, Endpoint};
use crate::progress::Progress;
use crate::puller::{Format, Puller};
use crate::pusher::Pusher;

/// The arguments of `pull`.
pub struct PullArgs {
    pub reference: String,
    pub output: Option<PathBuf>,
    pub format: FormatArg,
    pub force: bool,
    pub concurrency: usize,
    pub progress: Progress,
    pub platform: Platform,
    /// Whether the platform was asked for (a single image must match it).
    pub platform_given: bool,
    /// Print the result as one JSON object.
    pub json: bool,
    pub ranged_above: Option<u64>,
}

/// How `push` and `copy` show what they do.
pub struct Shown {
    /// Print the result as one JSON object.
    pub json: bool,
    /// Progress on stderr.
    pub progress: Progress,
}

/// What `copy` copies besides the image itself.
pub struct CopyWhat {
    /// The platform to narrow an index to.
    pub platform: Option<Platform>,
    /// Also copy what refers to the image (`--with-referrers`).
    pub with_referrers: bool,
}

/// The default output path: `<last name component>_<tag or digest>` plus
/// `.tar` for archives.
fn default_output(r: &Reference, format: Format) -> PathBuf {
    let name = r
        .repository()
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or("image");
    let version = match (r.tag(), r.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.hex()[..12].to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let suffix = match format {
        Format::Docker | Format::DockerSave => ".tar",
        Format::Oci => ".oci.tar",
        Format::OciDir => "",
    };
    PathBuf::from(format!("{name}_{version}{suffix}"))
}

pub async fn pull(connector: &Connector, args: PullArgs) -> CmdResult {
    let located = reference(&args.reference)?;
    let r = &located.reference;
    let format = match args.format {
        FormatArg::Docker => Format::Docker,
        FormatArg::DockerSave => Format::DockerSave,
        FormatArg::Oci => Format::Oci,
        FormatArg::OciDir => Format::OciDir,
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(r, format));
    let puller = Puller::new(located.open(connector).await?)
        .concurrency(args.concurrency)
        .ranged_above(args.ranged_above)
        .platform_required(args.platform_given)
        .progress(args.progress.clone());
    let report = puller
        .pull(r, &args.platform, format, &out, args.force)
        .await?;
    if args.json {
        let format = match args.format {
            FormatArg::Docker => "docker",
            FormatArg::DockerSave => "docker-save",
            FormatArg::Oci => "oci",
            FormatArg::OciDir => "oci-dir",
        };
        print_json(&serde_json::json!({
            "reference": located.shown(),
            "index": report.resolved.index.as_ref().map(|i| i.digest().to_string()),
            "manifest": report.resolved.manifest.digest().to_string(),
            "format": format,
            "path": report.path.display().to_string(),
            "layers": report.resolved.image.layers.len(),
            "bytes": report.bytes,
        }))?;
    } else {
        // As push and copy: the digest of what was written, alone.
        println!("{}", report.resolved.manifest.digest());
        if let Some(index) = &report.resolved.index {
            eprintln!(
                "index {} resolved to manifest {}",
                index.digest(),
                report.resolved.manifest.digest()
            );
        }
    }
    eprintln!(
        "wrote {} ({} layers, {} bytes downloaded)",
        report.path.display(),
        report.resolved.image.layers.len(),
        report.bytes
    );
    Ok(())
}

pub async fn copy(
    src_connector: &Connector,
    dst_connector: &Connector,
    source: &str,
    target: &str,
    concurrency: usize,
    what: CopyWhat,
    shown: Shown,
) -> CmdResult {
    let platform = what.platform;
    let src_at = reference(source)?;
    let mut dst_at = bare_reference(target)?;
    let src_ref = src_at.reference.clone();
    if dst_at.reference.tag().is_none()
        && dst_at.reference.digest().is_none()
        && let Some(t) = src_ref.tag()
    {
        dst_at = dst_at.with_reference(dst_at.reference.with_tag(t.clone()));
    }
    let dst_ref = dst_at.reference.clone();
    let src = Endpoint {
        registry: src_at.open(src_connector).await?,
        reference: src_ref.clone(),
    };
    let same_registry = src_at.same_place(&dst_at);
    let dst = Endpoint {
        registry: dst_at.open_target(dst_connector).await?,
        reference: dst_ref.clone(),
    };
    let options = CopyOptions {
        platform,
        same_registry,
        concurrency,
        progress: shown.progress.clone(),
    };
    let mut report = crate::copy::copy(&src, &dst, &options).await?;
    let referrers = if what.with_referrers {
        let subjects = match &report.digest {
            Some(top) => {
                let m = dst
                    .registry
                    .get_manifest(dst_ref.repository(), &top.digest)
                    .await?;
                crate::referrers::subjects_of(&m)
            }
            None => Vec::new(),
        };
        let copied =
            crate::referrers::copy_referrers(&src, &dst, subjects, &options, &mut report).await?;
        Some(copied.manifests.len())
    } else {
        None
    };
    if shown.json {
        let d = report.digest.as_ref();
        print_json(&serde_json::json!({
            "source": src_at.shown(),
            "target": dst_at.shown(),
            "digest": d.map(|d| d.digest.to_string()),
            "mediaType": d.map(|d| d.media_type.clone()),
            "size": d.map(|d| d.size),
            "copied": report.copied,
            "mounted": report.mounted,
            "present": report.skipped,
            "referrers": referrers,
        }))?;
    } else if let Some(d) = &report.digest {
        println!("{}", d.digest);
    }
    eprintln!(
        "copied {} to {}: {} blobs copied, {} mounted, {} already present{}",
        src_at.shown(),
        dst_at.shown(),
        report.copied,
        report.mounted,
        report.skipped,
        referrers
            .map(|n| format!(", {n} referrers"))
            .unwrap_or_default()
    );
    Ok(())
}

pub async fn push(
    connector: &Connector,
    source: &std::path::Path,
    target: &str,
    concurrency: usize,
    shown: Shown,
) -> CmdResult {
    let located = reference(target)?;
    let r = &located.reference;
    if r.digest().is_some() {
        return Err(crate::failure::Failure::Usage(format!(
            "{target:?} names a digest; push to a tag (the digest is what the source holds)"
        )));
    }
    let pusher = Pusher::new(located.open_target(connector).await?)
        .concurrency(concurrency)
        .progress(shown.progress.clone());
    let report = pusher.push(source, r).await?;
    if shown.json {
        print_json(&serde_json::json!({
            "source": source.display().to_string(),
            "target": located.shown(),
            "digest": report.digest.digest.to_string(),
            "mediaType": report.digest.media_type,
            "size": report.digest.size,
            "uploaded": report.copied,
            "present": report.skipped,
        }))?;
    } else {
        println!("{}", report.digest.digest);
    }
    eprintln!(
        "pushed {} to {}: {} blobs uploaded, {} already present",
        source.display(),
        located.shown(),
        report.copied,
        report.skipped
    );
    Ok(())
}

/// Prints one JSON object on a line.
pub(super) fn print_json(v: &serde_json::Value) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|()| out.flush())
        .map_err(|e| oci_core::Error::internal(format!("cannot write to stdout: {e}")))?;
    Ok(())
}
