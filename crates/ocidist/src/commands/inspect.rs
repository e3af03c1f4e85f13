//! `tags`, `manifest`, `config`, `blob`, `catalog`, `delete`, `digest`,
//! `tag`, `inspect`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use futures::StreamExt;
use oci_core::{Error, ErrorCode, ListOptions, ManifestRef, Result};

use super::{CmdResult, bare_reference, host, platform_of, reference, repository};
use crate::cli::{ManifestArg, PlatformFlags};
use crate::connect::Connector;
use crate::failure::Failure;
use crate::pretty::pretty_json;
use crate::puller::{ManifestChoice, Puller};
use crate::storage::StoreRef;

fn stdout_write(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| Error::new(ErrorCode::Unknown, format!("cannot write to stdout: {e}")))
}

pub async fn tags(connector: &Connector, repo: &str, json: bool) -> CmdResult {
    let located = repository(repo)?;
    let r = &located.reference;
    let registry = located.open(connector).await?;
    let mut list = registry.tags(r.repository(), &ListOptions::all());
    let mut all = Vec::new();
    while let Some(tag) = list.next().await {
        let tag = tag.map_err(|e| {
            if e.is_not_found() {
                Error::new(
                    ErrorCode::NameUnknown,
                    format!(
                        "repository {} not found on {}",
                        r.repository(),
                        r.registry()
                    ),
                )
            } else {
                e
            }
        })?;
        if json {
            all.push(tag.to_string());
        } else {
            stdout_write(format!("{tag}\n").as_bytes())?;
        }
    }
    if json {
        let v = serde_json::json!({"name": r.repository().as_str(), "tags": all});
        stdout_write(format!("{v}\n").as_bytes())?;
    }
    Ok(())
}

pub async fn manifest(
    connector: &Connector,
    s: &str,
    raw: bool,
    choice: Option<ManifestArg>,
    platform: &PlatformFlags,
) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let puller =
        Puller::new(located.open(connector).await?).platform_required(wants_platform(platform));
    let wants_platform = wants_platform(platform);
    let m = match (choice, wants_platform) {
        (Some(ManifestArg::List), _) => {
            puller
                .manifest_choice(r, ManifestChoice::List, &platform_of(platform)?)
                .await?
        }
        (Some(ManifestArg::Image), _) | (None, true) => {
            puller
                .manifest_choice(r, ManifestChoice::Image, &platform_of(platform)?)
                .await?
        }
        (None, false) => puller.manifest(r).await?,
    };
    eprintln!("Digest: {}", m.digest());
    if raw {
        stdout_write(&m.bytes)?;
    } else {
        stdout_write(pretty_json(&m.bytes).as_bytes())?;
    }
    Ok(())
}

pub async fn config(connector: &Connector, s: &str, platform: &PlatformFlags) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let puller =
        Puller::new(located.open(connector).await?).platform_required(wants_platform(platform));
    let resolved = puller.resolve(r, &platform_of(platform)?).await?;
    let bytes = puller.config(r, &resolved).await?;
    stdout_write(&bytes)?;
    if !bytes.ends_with(b"\n") && std::io::stdout().is_terminal() {
        stdout_write(b"\n")?;
    }
    Ok(())
}

pub async fn blob(connector: &Connector, s: &str, output: Option<&Path>, force: bool) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let ManifestRef::Digest(digest) = r.manifest_ref() else {
        return Err(Failure::Usage(format!(
            "{s:?} names no digest; use REPO@sha256:…"
        )));
    };
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::Usage(
            "refusing to write a blob to a terminal; redirect stdout or use -o FILE".to_owned(),
        ));
    }
    let registry = located.open(connector).await?;
    // The registry's reader (a store's too) verifies size and digest as it streams (the
    // client does, at the trust boundary), failing at the end if either is
    // wrong; the output is renamed into place only after that.
    let mut stream = registry.get_blob(r.repository(), &digest).await?.stream;
    match output {
        Some(path) => {
            let mut file = crate::staged::StagedFile::create(path, force)?;
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk?)?;
            }
            file.persist()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?).map_err(|e| {
                    Error::new(ErrorCode::Unknown, format!("cannot write to stdout: {e}"))
                })?;
            }
            out.flush().map_err(|e| {
                Error::new(ErrorCode::Unknown, format!("cannot write to stdout: {e}"))
            })?;
        }
    }
    Ok(())
}

pub async fn catalog(connector: &Connector, h: &str, json: bool) -> CmdResult {
    let registry = if StoreRef::is_store_ref(h) {
        let storage = StoreRef::parse_store(h).map_err(Failure::usage)?;
        connector.trace(storage.open_existing().await?)
    } else {
        connector.connect(&host(h)?)?
    };
    let mut list = registry.repositories(&ListOptions::all());
    let mut all = Vec::new();
    while let Some(repo) = list.next().await {
        let repo = repo?;
        if json {
            all.push(repo.to_string());
        } else {
            stdout_write(format!("{repo}\n").as_bytes())?;
        }
    }
    if json {
        stdout_write(format!("{}\n", serde_json::json!({"repositories": all})).as_bytes())?;
    }
    Ok(())
}

pub async fn delete(connector: &Connector, s: &str) -> CmdResult {
    let located = bare_reference(s)?;
    let r = &located.reference;
    let registry = located.open(connector).await?;
    match (r.digest(), r.tag()) {
        (Some(d), _) => {
            registry.delete_manifest(r.repository(), d).await?;
            eprintln!("deleted manifest {d}");
        }
        (None, Some(t)) => match registry.delete_tag(r.repository(), t).await {
            Ok(()) => eprintln!("deleted tag {t}"),
            Err(e) if e.is(ErrorCode::Unsupported) => {
                let d = registry.resolve_tag(r.repository(), t).await?;
                return Err(Failure::Error(Error::new(
                    ErrorCode::Unsupported,
                    format!(
                        "the registry cannot delete a tag alone; delete the manifest with {}",
                        located
                            .with_reference(
                                r.with_repository(r.repository().clone())
                                    .with_digest(d.digest)
                            )
                            .shown()
                    ),
                )));
            }
            Err(e) => return Err(e.into()),
        },
        (None, None) => {
            return Err(Failure::Usage(format!(
                "{s:?} names no tag or digest to delete"
            )));
        }
    }
    Ok(())
}

/// Whether any platform flag was given.
pub(super) fn wants_platform(platform: &PlatformFlags) -> bool {
    platform.platform.is_some()
        || platform.os.is_some()
        || platform.arch.is_some()
        || platform.variant.is_some()
}

pub async fn digest(connector: &Connector, s: &str, platform: &PlatformFlags) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let puller =
        Puller::new(located.open(connector).await?).platform_required(wants_platform(platform));
    let digest = if wants_platform(platform) {
        puller
            .manifest_choice(r, ManifestChoice::Image, &platform_of(platform)?)
            .await?
            .digest()
            .clone()
    } else {
        puller.head_manifest(r).await?.digest
    };
    stdout_write(format!("{digest}\n").as_bytes())?;
    Ok(())
}

pub async fn tag(connector: &Connector, s: &str, new_tag: &str) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let new_tag: oci_core::Tag = new_tag.parse().map_err(|e: Error| {
        Failure::Usage(format!(
            "{new_tag:?} is not a tag ({}); give the new tag alone",
            e.message()
        ))
    })?;
    let registry = located.open(connector).await?;
    // The exact bytes as served (verified against their digest), pushed
    // again under the new tag: an index stays an index, no blob moves.
    let m = Puller::new(std::sync::Arc::clone(&registry))
        .manifest(r)
        .await?;
    let pushed = registry
        .push_manifest(r.repository(), &m, std::slice::from_ref(&new_tag))
        .await?;
    stdout_write(format!("{}\n", pushed.digest).as_bytes())?;
    eprintln!(
        "tagged {} as {}",
        located.with_reference(r.with_tag(new_tag)).shown(),
        pushed.digest
    );
    Ok(())
}

pub async fn inspect(
    connector: &Connector,
    s: &str,
    json: bool,
    platform: &PlatformFlags,
) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let puller =
        Puller::new(located.open(connector).await?).platform_required(wants_platform(platform));
    let want = if wants_platform(platform) {
        Some(platform_of(platform)?)
    } else {
        None
    };
    let mut summary = puller.summary(r, want.as_ref()).await?;
    summary.reference = located.shown();
    if json {
        let text = serde_json::to_string(&summary)
            .map_err(|e| Error::internal(format!("cannot encode the summary: {e}")))?;
        stdout_write(format!("{text}\n").as_bytes())?;
    } else {
        stdout_write(summary.to_text().as_bytes())?;
    }
    Ok(())
}
