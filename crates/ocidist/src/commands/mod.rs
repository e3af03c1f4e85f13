//! What each subcommand does: parse its arguments into typed values,
//! connect, act, print results on stdout and messages on stderr.

mod inspect;
mod serve;
mod transfer;

use oci_core::{Error, ErrorCode, Platform, Reference, Result};

use crate::cli::{Cli, Command, PlatformFlags};
use crate::connect::Connector;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let verbose = cli.verbose > 0;
    let connector = || Connector::from_flags(&cli.connect).map(|c| c.traced(verbose));
    match cli.command {
        Command::Tags { repo, json } => inspect::tags(&connector()?, &repo, json).await,
        Command::Manifest {
            reference,
            raw,
            manifest,
            platform,
        } => inspect::manifest(&connector()?, &reference, raw, manifest, &platform).await,
        Command::Config {
            reference,
            platform,
        } => inspect::config(&connector()?, &reference, &platform).await,
        Command::Blob {
            reference,
            output,
            force,
        } => inspect::blob(&connector()?, &reference, output.as_deref(), force).await,
        Command::Catalog { host, json } => inspect::catalog(&connector()?, &host, json).await,
        Command::Delete { reference } => inspect::delete(&connector()?, &reference).await,
        Command::Pull {
            reference,
            output,
            format,
            force,
            concurrency,
            no_progress,
            ranged_above,
            platform,
        } => {
            let args = transfer::PullArgs {
                ranged_above: (ranged_above > 0).then_some(ranged_above << 20),
                reference,
                output,
                format,
                force,
                concurrency,
                progress: !no_progress,
                platform: platform_of(&platform)?,
            };
            transfer::pull(&connector()?, args).await
        }
        Command::Copy {
            source,
            target,
            all_platforms,
            concurrency,
            platform,
        } => {
            transfer::copy(
                &connector()?,
                &source,
                &target,
                all_platforms,
                concurrency,
                platform_of(&platform)?,
            )
            .await
        }
        Command::Serve {
            addr,
            storage,
            read_only,
            demo,
            tls_cert,
            tls_key,
            limits,
        } => {
            let options = serve::ServeOptions {
                addr,
                storage,
                read_only,
                demo,
                tls: tls_cert.zip(tls_key),
                limits: serve::limits(&limits),
            };
            serve::serve(options).await
        }
        Command::Gc { storage, grace } => serve::gc(&storage, grace).await,
    }
}

/// The platform the flags ask for, or the host's.
pub fn platform_of(flags: &PlatformFlags) -> Result<Platform> {
    if let Some(p) = &flags.platform {
        return p.parse();
    }
    let host = Platform::host();
    if flags.os.is_none() && flags.arch.is_none() && flags.variant.is_none() {
        return Ok(host);
    }
    let os = flags.os.clone().unwrap_or(host.os);
    let arch = flags.arch.clone().unwrap_or(host.architecture);
    Ok(Platform::new(&os, &arch, flags.variant.as_deref()))
}

/// Parses a reference, naming the argument in the error.
fn reference(s: &str) -> Result<Reference> {
    s.parse()
}

/// Parses a repository-only reference (`tags`).
fn repository(s: &str) -> Result<Reference> {
    Reference::parse_repository(s)
}

/// A registry host argument (`catalog`): no path, tag or digest.
fn host(s: &str) -> Result<String> {
    let bad = || {
        Error::new(
            ErrorCode::NameInvalid,
            format!("{s:?} is not a registry host[:port]; give only the host"),
        )
    };
    if s.is_empty() || s.contains('/') || s.contains('@') {
        return Err(bad());
    }
    // Validate through the reference grammar with a dummy repository.
    let r = Reference::parse_bare(&format!("{s}/x")).map_err(|_| bad())?;
    if r.registry() == oci_core::reference::DOCKER_HUB
        && s != "docker.io"
        && !oci_core::reference::is_docker_hub(s)
    {
        return Err(bad());
    }
    Ok(r.registry().to_owned())
}
