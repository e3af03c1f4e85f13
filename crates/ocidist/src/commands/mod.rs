//! What each subcommand does: parse its arguments into typed values,
//! connect, act, print results on stdout and messages on stderr.

mod artifact;
mod export;
mod inspect;
mod login;
mod serve;
mod transfer;

use std::sync::Arc;

use oci_core::{Error, Platform, Reference, Registry};

use crate::cli::{Cli, Command, PlatformFlags};
use crate::connect::Connector;
use crate::failure::{EXIT_USAGE, Failure, Side, Told, tell};
use crate::progress::Progress;
use crate::storage::{Storage, StoreRef};

/// What a subcommand returns.
pub(crate) type CmdResult = std::result::Result<(), Failure>;

/// Runs the parsed command line; a failure comes back told: one line and
/// its exit code (see [`crate::failure`]).
pub async fn run(cli: Cli) -> std::result::Result<(), Told> {
    let sides = registries(&cli.command);
    let command_refs = first_reference(&cli.command);
    let connect_failed = |e: Error| Told {
        code: crate::failure::exit_code(&e).max(EXIT_USAGE),
        message: crate::failure::base_message(&e),
    };
    // Commands that reach no registry read no credentials (nor stdin).
    let connects = !matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Gc { .. }
            | Command::Completions { .. }
            | Command::Logout { .. }
    );
    let connector = if connects {
        crate::connect_flags::connector(&cli.connect).map_err(connect_failed)?
    } else {
        Connector::from_options(&crate::connect::ConnectOptions::default())
            .map_err(connect_failed)?
    }
    .traced(cli.verbose > 0);
    // Each side of a copy has its own connection settings, which a store
    // read or written directly has no use for: say so rather than ignore
    // them.
    if let Command::Copy {
        source,
        target,
        src,
        dest,
        ..
    } = &cli.command
    {
        let unused = [(source, src.first_given()), (target, dest.first_given())];
        if let Some((store, Some(flag))) = unused
            .into_iter()
            .find(|(arg, flag)| flag.is_some() && StoreRef::is_store_ref(arg))
        {
            return Err(Told {
                code: EXIT_USAGE,
                message: format!(
                    "{flag} is for a registry, but {store} is a store, opened directly: drop {flag} \
                     (s3://, gs:// and az:// stores take their credentials from the environment, \
                     e.g. AWS_ACCESS_KEY_ID)"
                ),
            });
        }
    }
    let (src, dest) = match &cli.command {
        Command::Copy { src, dest, .. } => (
            crate::connect_flags::connector(&src.apply(&cli.connect))
                .map_err(connect_failed)?
                .traced(cli.verbose > 0),
            crate::connect_flags::connector(&dest.apply(&cli.connect))
                .map_err(connect_failed)?
                .traced(cli.verbose > 0),
        ),
        _ => (connector.clone(), connector.clone()),
    };
    let side_connector = |flags: &str| match flags {
        "src-" => &src,
        "dest-" => &dest,
        _ => &connector,
    };
    match dispatch(cli, &connector, &src, &dest).await {
        Ok(()) => Ok(()),
        Err(Failure::Usage(message)) => Err(Told {
            code: EXIT_USAGE,
            message,
        }),
        Err(Failure::Error(e)) => {
            let sides: Vec<Side> = sides
                .iter()
                .map(|(host, flags)| side_connector(flags).side(host, flags))
                .collect();
            let mut told = tell(&e, &sides).await;
            if told.code == crate::failure::EXIT_NOT_FOUND
                && implies_latest(&command_refs)
                && told.message.contains("tag latest ")
                && !told.message.contains("implied")
            {
                told.message
                    .push_str("; no tag was given, so `latest` was used");
            }
            Err(told)
        }
    }
}

/// The reference argument a command reads from, if any.
fn first_reference(command: &Command) -> Option<String> {
    match command {
        Command::Manifest { reference, .. }
        | Command::Config { reference, .. }
        | Command::Pull { reference, .. }
        | Command::Export { reference, .. }
        | Command::Digest { reference, .. }
        | Command::Tag { reference, .. }
        | Command::Inspect { reference, .. }
        | Command::Referrers { reference, .. }
        | Command::Attach { reference, .. }
        | Command::Copy {
            source: reference, ..
        } => Some(reference.clone()),
        _ => None,
    }
}

/// Whether a reference argument names neither tag nor digest.
fn implies_latest(reference: &Option<String>) -> bool {
    reference
        .as_deref()
        .and_then(|s| Reference::parse_bare(s).ok())
        .is_some_and(|r| r.tag().is_none() && r.digest().is_none())
}

/// The registries a command talks to, with the prefix of their flags.
fn registries(command: &Command) -> Vec<(String, &'static str)> {
    // A store named directly is no registry: nothing to hint about.
    let host = |s: &str| {
        if StoreRef::is_store_ref(s) {
            return None;
        }
        Reference::parse_bare(s)
            .ok()
            .map(|r| r.registry().to_owned())
    };
    let refs: Vec<(Option<String>, &'static str)> = match command {
        Command::Tags { repo, .. } => vec![(host(repo), "")],
        Command::Manifest { reference, .. }
        | Command::Config { reference, .. }
        | Command::Blob { reference, .. }
        | Command::Pull { reference, .. }
        | Command::Export { reference, .. }
        | Command::Delete { reference }
        | Command::Digest { reference, .. }
        | Command::Tag { reference, .. }
        | Command::Inspect { reference, .. }
        | Command::Push {
            target: reference, ..
        }
        | Command::Referrers { reference, .. }
        | Command::Attach { reference, .. }
        | Command::Artifact {
            command:
                crate::cli::ArtifactCommand::Push {
                    target: reference, ..
                }
                | crate::cli::ArtifactCommand::Pull { reference, .. },
        } => vec![(host(reference), "")],
        Command::Copy { source, target, .. } => {
            vec![(host(source), "src-"), (host(target), "dest-")]
        }
        Command::Catalog { host, .. }
        | Command::Login { registry: host }
        | Command::Logout { registry: host } => vec![(Some(host.clone()), "")],
        _ => Vec::new(),
    };
    refs.into_iter()
        .filter_map(|(h, flags)| h.map(|h| (h, flags)))
        .collect()
}

async fn dispatch(cli: Cli, connector: &Connector, src: &Connector, dest: &Connector) -> CmdResult {
    let connector = || Ok::<_, Failure>(connector.clone());
    // Off a terminal, -v lists each blob transferred.
    let listed: Option<crate::progress::Finished> = (cli.verbose > 0).then(|| {
        std::sync::Arc::new(|d: &oci_core::Descriptor| eprintln!("{} {} bytes", d.digest, d.size))
            as _
    });
    let progress = |enabled: bool| Progress::stderr_or(enabled, listed.clone());
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
        // --- digest, tag, inspect ---
        Command::Digest {
            reference,
            platform,
        } => inspect::digest(&connector()?, &reference, &platform).await,
        Command::Tag { reference, new_tag } => {
            inspect::tag(&connector()?, &reference, &new_tag).await
        }
        Command::Inspect {
            reference,
            json,
            platform,
        } => inspect::inspect(&connector()?, &reference, json, &platform).await,
        // --- end digest, tag, inspect ---
        // --- login, logout ---
        Command::Login { registry } => login::login(&connector()?, &registry).await,
        Command::Logout { registry } => login::logout(&registry),
        // --- end login, logout ---
        // --- push ---
        Command::Push {
            source,
            target,
            concurrency,
            json,
            no_progress,
        } => {
            let shown = transfer::Shown {
                json,
                progress: progress(!no_progress),
            };
            transfer::push(&connector()?, &source, &target, concurrency, shown).await
        }
        // --- end push ---
        // --- referrers, attach, artifact ---
        Command::Referrers {
            reference,
            artifact_type,
            json,
        } => artifact::referrers(&connector()?, &reference, artifact_type.as_deref(), json).await,
        Command::Attach {
            reference,
            artifact_type,
            files,
            json,
        } => artifact::attach(&connector()?, &reference, &artifact_type, &files, json).await,
        Command::Artifact { command } => artifact::artifact(&connector()?, command).await,
        // --- end referrers, attach, artifact ---
        Command::Export {
            reference,
            output,
            force,
            platform,
        } => export::export(&connector()?, &reference, &output, force, &platform).await,
        Command::Completions { shell } => completions(shell),
        Command::Catalog { host, json } => inspect::catalog(&connector()?, &host, json).await,
        Command::Delete { reference } => inspect::delete(&connector()?, &reference).await,
        Command::Pull {
            reference,
            output,
            format,
            force,
            concurrency,
            no_progress,
            json,
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
                platform: platform_of(&platform)?,
                platform_given: inspect::wants_platform(&platform),
                json,
                progress: progress(!no_progress),
            };
            transfer::pull(&connector()?, args).await
        }
        Command::Copy {
            source,
            target,
            all_platforms: _,
            concurrency,
            json,
            no_progress,
            platform,
            with_referrers,
            src: _,
            dest: _,
        } => {
            let platform = if inspect::wants_platform(&platform) {
                Some(platform_of(&platform)?)
            } else {
                None
            };
            let shown = transfer::Shown {
                json,
                progress: progress(!no_progress),
            };
            let what = transfer::CopyWhat {
                platform,
                with_referrers,
            };
            transfer::copy(src, dest, &source, &target, concurrency, what, shown).await
        }
        Command::Serve {
            addr,
            storage,
            read_only,
            demo,
            tls_cert,
            tls_key,
            auth,
            limits,
            mirror,
        } => {
            let options = serve::ServeOptions {
                addr,
                storage,
                read_only,
                demo,
                tls: tls_cert.zip(tls_key),
                auth,
                limits: serve::limits(&limits),
                mirror,
            };
            Ok(serve::serve(options).await?)
        }
        Command::Gc { storage, grace } => match crate::storage::Storage::parse(&storage) {
            crate::storage::Storage::Layout(dir) => Ok(serve::gc(&dir, grace).await?),
            crate::storage::Storage::Object(url) => {
                Ok(crate::storage::gc_object(&url, grace).await?)
            }
        },
    }
}

/// The platform the flags ask for, or the host's.
pub fn platform_of(flags: &PlatformFlags) -> Result<Platform, Failure> {
    if let Some(p) = &flags.platform {
        return p.parse().map_err(Failure::usage);
    }
    let host = Platform::host();
    if flags.os.is_none() && flags.arch.is_none() && flags.variant.is_none() {
        return Ok(host);
    }
    let os = flags.os.clone().unwrap_or(host.os);
    let arch = flags.arch.clone().unwrap_or(host.architecture);
    Ok(Platform::new(&os, &arch, flags.variant.as_deref()).normalize())
}

/// An image argument, parsed: a reference in a registry, or in a store
/// the command opens itself, with no server between (`STORE#REPO[:TAG]`,
/// see [`StoreRef`]). Every command reaches what it names through
/// [`Located::open`], so the same code reads and writes both.
pub(crate) struct Located {
    /// What the argument names. For a store its registry is the store's
    /// name, so messages about it name the store.
    pub reference: Reference,
    /// The store, when the argument names one.
    store: Option<Storage>,
}

impl Located {
    /// Parses `s`: a store reference, or a registry reference by `parse`.
    fn parse(s: &str, parse: fn(&str) -> oci_core::Result<Reference>) -> Result<Located, Failure> {
        if !StoreRef::is_store_ref(s) {
            return Ok(Located {
                reference: parse(s).map_err(Failure::usage)?,
                store: None,
            });
        }
        let found = StoreRef::parse(s).map_err(Failure::usage)?;
        Ok(Located {
            reference: found.reference,
            store: Some(found.storage),
        })
    }

    /// The registry holding the image: a client of its host, or its store
    /// (which must exist), opened.
    pub async fn open(&self, connector: &Connector) -> Result<Arc<dyn Registry>, Failure> {
        match &self.store {
            None => Ok(connector.connect(self.reference.registry())?),
            Some(storage) => Ok(connector.trace(open_store(storage, false).await?)),
        }
    }

    /// As [`Located::open`], creating a directory store that does not
    /// exist yet (the target of a push or copy).
    pub async fn open_target(&self, connector: &Connector) -> Result<Arc<dyn Registry>, Failure> {
        match &self.store {
            None => self.open(connector).await,
            Some(storage) => Ok(connector.trace(open_store(storage, true).await?)),
        }
    }

    /// The argument as the user writes it (a store's with its `#`).
    pub fn shown(&self) -> String {
        match &self.store {
            None => self.reference.to_string(),
            Some(storage) => StoreRef {
                storage: storage.clone(),
                reference: self.reference.clone(),
            }
            .to_string(),
        }
    }

    /// Whether two arguments are in one registry or one store, where
    /// blobs mount from one repository into another.
    pub fn same_place(&self, other: &Located) -> bool {
        self.store == other.store && self.reference.registry() == other.reference.registry()
    }

    /// The same argument naming `reference` instead.
    pub fn with_reference(&self, reference: Reference) -> Located {
        Located {
            reference,
            store: self.store.clone(),
        }
    }
}

/// Opens a store a command names; `create` makes a missing directory
/// store (for a target). A layout directory a server holds is refused by
/// its lock: say what to do instead.
async fn open_store(storage: &Storage, create: bool) -> oci_core::Result<Arc<dyn Registry>> {
    if let Some(dir) = storage.dir()
        && oci_layout::LayoutRegistry::in_use(dir)
    {
        return Err(Error::new(
            oci_core::ErrorCode::Unknown,
            format!(
                "the store {storage} is open in another process (a running `ocidist serve`?): \
                 go through that server (HOST:PORT/REPO) or stop it first"
            ),
        ));
    }
    if create {
        storage.open().await
    } else {
        storage.open_existing().await
    }
}

/// Parses an image reference (registry or store); the tag defaults to
/// `latest`.
fn reference(s: &str) -> Result<Located, Failure> {
    let mut located = Located::parse(s, |s| s.parse())?;
    let r = &located.reference;
    if r.tag().is_none() && r.digest().is_none() {
        located.reference = r.with_tag(oci_core::Tag::latest());
    }
    Ok(located)
}

/// Parses an image reference without filling in the default tag.
fn bare_reference(s: &str) -> Result<Located, Failure> {
    Located::parse(s, Reference::parse_bare)
}

/// Parses a repository-only reference (`tags`).
fn repository(s: &str) -> Result<Located, Failure> {
    let located = Located::parse(s, Reference::parse_repository)?;
    let r = &located.reference;
    if r.tag().is_some() || r.digest().is_some() {
        return Err(Failure::Usage(format!(
            "{s:?} names a tag or digest; give a repository only"
        )));
    }
    Ok(located)
}

/// A registry host argument (`catalog`): no path, tag or digest.
fn host(s: &str) -> Result<String, Failure> {
    let bad = || {
        // A directory is a layout store, named with a `#` to tell it apart.
        let store = if std::path::Path::new(s).is_dir() {
            format!(" (for the store in directory {s}, write {s}#)")
        } else {
            String::new()
        };
        Failure::Usage(format!(
            "{s:?} is not a registry host[:port]; give only the host{store}"
        ))
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

/// Writes the completion script for `shell` to stdout.
fn completions(shell: crate::cli::ShellArg) -> CmdResult {
    use clap::CommandFactory;
    use std::io::Write;
    let shell = match shell {
        crate::cli::ShellArg::Bash => clap_complete::Shell::Bash,
        crate::cli::ShellArg::Zsh => clap_complete::Shell::Zsh,
        crate::cli::ShellArg::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ocidist", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))?;
    Ok(())
}
