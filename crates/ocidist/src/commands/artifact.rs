//! `referrers`, `attach`, `artifact push` and `artifact pull`.

use std::path::Path;

use oci_core::Descriptor;
use serde_json::json;

use super::transfer::print_json;
use super::{CmdResult, reference};
use crate::artifact::{ArtifactFile, NewArtifact, PushedArtifact, push_artifact};
use crate::cli::ArtifactCommand;
use crate::connect::Connector;
use crate::failure::Failure;

/// Runs `artifact push` or `artifact pull`.
pub async fn artifact(connector: &Connector, command: ArtifactCommand) -> CmdResult {
    match command {
        ArtifactCommand::Push {
            target,
            files,
            artifact_type,
            json,
        } => push(connector, &target, &files, artifact_type, json).await,
        ArtifactCommand::Pull {
            reference,
            output,
            force,
            concurrency,
            json,
        } => pull(connector, &reference, &output, force, concurrency, json).await,
    }
}

fn files(args: &[String]) -> Result<Vec<ArtifactFile>, Failure> {
    args.iter()
        .map(|a| ArtifactFile::from_arg(a).map_err(|e| Failure::Usage(e.message().to_owned())))
        .collect()
}

fn pushed_json(pushed: &PushedArtifact, artifact_type: &str) -> serde_json::Value {
    json!({
        "digest": pushed.manifest.digest.to_string(),
        "mediaType": pushed.manifest.media_type,
        "size": pushed.manifest.size,
        "artifactType": artifact_type,
        "files": pushed.layers,
    })
}

async fn push(
    connector: &Connector,
    target: &str,
    args: &[String],
    artifact_type: Option<String>,
    json: bool,
) -> CmdResult {
    let located = reference(target)?;
    let r = &located.reference;
    if r.digest().is_some() {
        return Err(Failure::Usage(format!(
            "{target:?} names a digest; push to a tag"
        )));
    }
    let artifact = NewArtifact {
        artifact_type: artifact_type.clone(),
        files: files(args)?,
        subject: None,
    };
    let registry = located.open_target(connector).await?;
    let pushed = push_artifact(registry.as_ref(), r, &artifact).await?;
    let artifact_type =
        artifact_type.unwrap_or_else(|| crate::artifact::UNKNOWN_ARTIFACT_TYPE.to_owned());
    if json {
        let mut v = pushed_json(&pushed, &artifact_type);
        v["target"] = json!(located.shown());
        print_json(&v)?;
    } else {
        println!("{}", pushed.manifest.digest);
    }
    eprintln!(
        "pushed {} files to {}",
        pushed.layers.len(),
        located.shown()
    );
    Ok(())
}

async fn pull(
    connector: &Connector,
    s: &str,
    out: &Path,
    force: bool,
    concurrency: usize,
    json: bool,
) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let registry = located.open(connector).await?;
    let pulled = crate::artifact::pull_artifact(registry, r, out, force, concurrency).await?;
    if json {
        let files: Vec<serde_json::Value> = pulled
            .files
            .iter()
            .map(|f| {
                json!({
                    "title": f.title,
                    "path": out.join(&f.title).display().to_string(),
                    "digest": f.descriptor.digest.to_string(),
                    "size": f.descriptor.size,
                    "mediaType": f.descriptor.media_type,
                })
            })
            .collect();
        print_json(&json!({
            "reference": located.shown(),
            "digest": pulled.manifest.digest.to_string(),
            "artifactType": pulled.artifact_type,
            "files": files,
        }))?;
    } else {
        for f in &pulled.files {
            println!("{}", out.join(&f.title).display());
        }
    }
    eprintln!(
        "pulled {} files of {} into {}",
        pulled.files.len(),
        pulled.manifest.digest,
        out.display()
    );
    if !pulled.untitled.is_empty() {
        eprintln!(
            "left out {} layers without a file name ({TITLE})",
            pulled.untitled.len(),
            TITLE = crate::artifact::TITLE
        );
    }
    Ok(())
}

/// `referrers REF`.
pub async fn referrers(
    connector: &Connector,
    s: &str,
    artifact_type: Option<&str>,
    json: bool,
) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let registry = located.open(connector).await?;
    let (subject, found) = crate::referrers::list(registry, r, artifact_type).await?;
    if json {
        print_json(&json!({
            "reference": located.shown(),
            "subject": subject,
            "referrers": found,
        }))?;
    } else {
        for d in &found {
            println!(
                "{} {} {}",
                d.digest,
                d.artifact_type.as_deref().unwrap_or("-"),
                d.size
            );
        }
    }
    Ok(())
}

/// `attach REF --artifact-type T FILE...`.
pub async fn attach(
    connector: &Connector,
    s: &str,
    artifact_type: &str,
    args: &[String],
    json: bool,
) -> CmdResult {
    let located = reference(s)?;
    let r = &located.reference;
    let files = files(args)?;
    let registry = located.open(connector).await?;
    let subject: Descriptor = crate::puller::Puller::new(std::sync::Arc::clone(&registry))
        .head_manifest(r)
        .await?;
    let artifact = NewArtifact {
        artifact_type: Some(artifact_type.to_owned()),
        files,
        subject: Some(Descriptor::new(
            subject.media_type.clone(),
            subject.digest.clone(),
            subject.size,
        )),
    };
    // By digest: a referrer is found through its subject, not a tag.
    let untagged = r.with_repository(r.repository().clone());
    let pushed = push_artifact(registry.as_ref(), &untagged, &artifact).await?;
    if json {
        let mut v = pushed_json(&pushed, artifact_type);
        v["reference"] = json!(located.shown());
        v["subject"] = json!(subject.digest.to_string());
        print_json(&v)?;
    } else {
        println!("{}", pushed.manifest.digest);
    }
    eprintln!(
        "attached {} files to {} as {}",
        pushed.layers.len(),
        subject.digest,
        pushed.manifest.digest
    );
    Ok(())
}
