//! OCI 1.1 artifacts of plain files, as oras makes them: an image manifest
//! with an `artifactType`, the empty config, and one layer per file named
//! by its `org.opencontainers.image.title` annotation; optionally with a
//! `subject`, which makes the artifact a referrer of another manifest
//! (`attach`).
//!
//! Pushing hashes each file, then streams it to the registry, which checks
//! the digest and size again. Pulling refuses titles that would land
//! outside the output directory (absolute, `..`, through a symlink) and
//! duplicate titles, verifies every file's digest and size as it streams,
//! and renames the files into place only once all of them are complete.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ocidist::artifact::{ArtifactFile, NewArtifact, push_artifact};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("notes.txt");
//! std::fs::write(&file, "hello").unwrap();
//! let store = oci_mem::MemRegistry::new();
//! let target = "localhost/docs/notes:v1".parse().unwrap();
//! let artifact = NewArtifact {
//!     artifact_type: Some("application/vnd.example.notes".to_owned()),
//!     files: vec![ArtifactFile::from_arg(file.to_str().unwrap()).unwrap()],
//!     subject: None,
//! };
//! let pushed = push_artifact(&store, &target, &artifact).await.unwrap();
//! assert_eq!(pushed.manifest.media_type, oci_core::media::OCI_MANIFEST);
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_core::verify::VerifyStream;
use oci_core::{
    Descriptor, Error, ErrorCode, ImageManifest, Manifest, ParsedManifest, Reference, Registry,
    Result, media,
};

use crate::archive::read::Local;
use crate::staged::{StagedFile, io_err};

/// The annotation naming a layer's file.
pub const TITLE: &str = "org.opencontainers.image.title";

/// The artifact type used when none is given (as oras does).
pub const UNKNOWN_ARTIFACT_TYPE: &str = "application/vnd.unknown.artifact.v1";

/// The media type of a file's layer when none is given (as oras does).
pub const DEFAULT_FILE_TYPE: &str = media::OCI_LAYER;

/// The bytes of the OCI empty descriptor: `{}`.
const EMPTY_JSON: &[u8] = b"{}";

/// The OCI empty descriptor, with its bytes inlined as the spec shows it.
pub fn empty_descriptor() -> Descriptor {
    let mut d = Descriptor::of(media::OCI_EMPTY, EMPTY_JSON);
    d.data = Some("e30=".to_owned());
    d
}

/// One file of an artifact to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its name in the artifact (the title annotation).
    pub title: String,
    /// Its layer's media type.
    pub media_type: String,
}

impl ArtifactFile {
    /// A command-line file argument, `PATH` or `PATH:MEDIATYPE` as oras
    /// takes it (the suffix counts as a media type only if it has a `/`
    /// and the whole argument is not an existing file); the title is the
    /// file's name.
    pub fn from_arg(arg: &str) -> Result<ArtifactFile> {
        let (path, media_type) = match arg.rsplit_once(':') {
            Some((p, t))
                if media::is_valid_media_type(t) && t.contains('/') && !Path::new(arg).exists() =>
            {
                (p, t)
            }
            _ => (arg, DEFAULT_FILE_TYPE),
        };
        let path = PathBuf::from(path);
        let title = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| usage(format!("{path:?} does not name a file")))?
            .to_owned();
        let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        if !meta.is_file() {
            return Err(usage(format!(
                "{} is not a regular file (directories are not pushed)",
                path.display()
            )));
        }
        Ok(ArtifactFile {
            path,
            title,
            media_type: media_type.to_owned(),
        })
    }
}

fn usage(message: String) -> Error {
    Error::new(ErrorCode::Unsupported, message)
}

/// An artifact to push.
#[derive(Debug, Clone, Default)]
pub struct NewArtifact {
    /// Its type (default [`UNKNOWN_ARTIFACT_TYPE`]).
    pub artifact_type: Option<String>,
    /// Its files, in order.
    pub files: Vec<ArtifactFile>,
    /// The manifest it refers to, making it a referrer.
    pub subject: Option<Descriptor>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushedArtifact {
    /// The artifact's manifest.
    pub manifest: Descriptor,
    /// The layers pushed, one per file.
    pub layers: Vec<Descriptor>,
}

/// Pushes `artifact` to `target`'s repository, tagged with its tag if it
/// has one (by digest only otherwise, as referrers usually are). A
/// registry without the referrers API gets the subject's fallback tag
/// updated by the client.
pub async fn push_artifact(
    registry: &dyn Registry,
    target: &Reference,
    artifact: &NewArtifact,
) -> Result<PushedArtifact> {
    let repo = target.repository();
    let mut titles = HashSet::new();
    if let Some(dup) = artifact.files.iter().find(|f| !titles.insert(&f.title)) {
        return Err(usage(format!(
            "two files are named {:?}; an artifact's file names must differ",
            dup.title
        )));
    }
    let mut layers = Vec::with_capacity(artifact.files.len());
    for file in &artifact.files {
        let (dir, name) = split(&file.path)?;
        let local = Local::Dir(dir);
        let digest = local.digest(&name).await?;
        let size = local
            .size(&name)
            .ok_or_else(|| io_err(&file.path, std::io::ErrorKind::NotFound.into()))?;
        tracing::debug!(file = %file.path.display(), %digest, size, "pushing an artifact file");
        if registry.resolve_blob(repo, &digest).await.is_err() {
            registry
                .push_blob(repo, &digest, Some(size), local.stream(&name)?)
                .await
                .map_err(|e| changed(&file.path, e))?;
        }
        let mut d = Descriptor::new(file.media_type.clone(), digest, size);
        d.annotations = Some(BTreeMap::from([(TITLE.to_owned(), file.title.clone())]));
        layers.push(d);
    }
    let config = empty_descriptor();
    if registry.resolve_blob(repo, &config.digest).await.is_err() {
        let body = futures::stream::iter([Ok(Bytes::from_static(EMPTY_JSON))]).boxed();
        registry
            .push_blob(repo, &config.digest, Some(config.size), body)
            .await?;
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        artifact_type: Some(
            artifact
                .artifact_type
                .clone()
                .unwrap_or_else(|| UNKNOWN_ARTIFACT_TYPE.to_owned()),
        ),
        config,
        layers: layers.clone(),
        subject: artifact.subject.clone(),
        annotations: None,
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::internal(format!("encoding an artifact manifest: {e}")))?;
    let manifest = Manifest::new(media::OCI_MANIFEST, bytes);
    let tags: Vec<_> = target.tag().cloned().into_iter().collect();
    let pushed = registry.push_manifest(repo, &manifest, &tags).await?;
    Ok(PushedArtifact {
        manifest: pushed,
        layers,
    })
}

/// A file's directory and name, for [`Local`].
fn split(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| usage(format!("{path:?} is not a UTF-8 file name")))?
        .to_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// A digest refused by the registry means the file changed while pushed.
fn changed(path: &Path, e: Error) -> Error {
    if e.is(ErrorCode::DigestInvalid) || e.is(ErrorCode::SizeInvalid) {
        Error::new(
            e.code(),
            format!("{} changed while it was pushed: {}", path.display(), e),
        )
    } else {
        e
    }
}

/// One file of a pulled artifact.
#[derive(Debug, Clone)]
pub struct PulledFile {
    /// Its title, the path under the output directory.
    pub title: String,
    /// Its layer.
    pub descriptor: Descriptor,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PulledArtifact {
    /// The artifact's manifest.
    pub manifest: Descriptor,
    /// Its artifact type (or its config's media type).
    pub artifact_type: Option<String>,
    /// The files written.
    pub files: Vec<PulledFile>,
    /// Layers without a title, which were not written.
    pub untitled: Vec<Descriptor>,
}

/// The checked relative path of a title: plain names only, no `..`, no
/// root, no empty parts.
pub fn title_path(title: &str) -> Result<PathBuf> {
    let refused = |why: &str| {
        Error::new(
            ErrorCode::ManifestInvalid,
            format!("refusing file name {title:?}: {why}"),
        )
    };
    if title.is_empty() || title.contains('\0') {
        return Err(refused("empty or holds a NUL"));
    }
    let path = Path::new(title);
    if path.is_absolute() || title.starts_with('/') || title.starts_with('\\') {
        return Err(refused("it is an absolute path"));
    }
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(refused("it leads out of the directory (..)")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused("it is an absolute path"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refused("it names no file"));
    }
    Ok(out)
}

/// Creates the directories of `rel` under `root`, refusing to go through
/// a symlink or a non-directory.
fn make_parents(root: &Path, rel: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        at.push(part);
        match at.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::new(
                    ErrorCode::Unknown,
                    format!(
                        "refusing to write through {}: it is not a directory",
                        at.display()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| io_err(&at, e))?;
            }
            Err(e) => return Err(io_err(&at, e)),
        }
    }
    Ok(())
}

/// Pulls the artifact `reference` names into `out` (created if missing):
/// each titled layer becomes the file its title names. Existing files are
/// refused unless `force`. Nothing is renamed into place before every file
/// is complete and verified.
pub async fn pull_artifact(
    registry: Arc<dyn Registry>,
    reference: &Reference,
    out: &Path,
    force: bool,
    concurrency: usize,
) -> Result<PulledArtifact> {
    let m = crate::puller::Puller::new(Arc::clone(&registry))
        .manifest(reference)
        .await?;
    let image = match m.parse()? {
        ParsedManifest::Image(image) => image,
        ParsedManifest::Index(_) => {
            return Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("{reference} is an index, not an artifact of files"),
            ));
        }
    };
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut untitled = Vec::new();
    for layer in &image.layers {
        let Some(title) = layer.annotations.as_ref().and_then(|a| a.get(TITLE)) else {
            tracing::warn!(digest = %layer.digest, "layer without a title is not written");
            untitled.push(layer.clone());
            continue;
        };
        let rel = title_path(title)?;
        if !seen.insert(rel.clone()) {
            return Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("two files are named {title:?} in {reference}"),
            ));
        }
        files.push((rel, layer.clone(), title.clone()));
    }
    if let Some((rel, _, title)) = files
        .iter()
        .find(|(rel, _, _)| rel.ancestors().skip(1).any(|a| seen.contains(a)))
    {
        return Err(Error::new(
            ErrorCode::ManifestInvalid,
            format!(
                "{title:?} in {reference} lies inside another file's name ({})",
                rel.display()
            ),
        ));
    }
    match out.symlink_metadata() {
        Ok(_) if out.is_dir() => {}
        Ok(_) => {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!("{} exists and is not a directory", out.display()),
            ));
        }
        Err(_) => std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?,
    }
    for (rel, _, _) in &files {
        make_parents(out, rel)?;
        let target = out.join(rel);
        if target.symlink_metadata().is_ok() && !force {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!(
                    "{} already exists (use --force to replace it)",
                    target.display()
                ),
            ));
        }
    }
    let repo = reference.repository();
    let staged: Vec<StagedFile> = futures::stream::iter(&files)
        .map(|(rel, layer, _)| {
            let registry = Arc::clone(&registry);
            let target = out.join(rel);
            async move { download(registry.as_ref(), repo, layer, &target, force).await }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    for file in staged {
        file.persist()?;
    }
    Ok(PulledArtifact {
        manifest: m.descriptor.clone(),
        artifact_type: image
            .artifact_type
            .clone()
            .or_else(|| Some(image.config.media_type.clone())),
        files: files
            .into_iter()
            .map(|(_, descriptor, title)| PulledFile { title, descriptor })
            .collect(),
        untitled,
    })
}

/// Streams one layer into a staged file beside `target`, verified.
async fn download(
    registry: &dyn Registry,
    repo: &oci_core::RepoName,
    layer: &Descriptor,
    target: &Path,
    force: bool,
) -> Result<StagedFile> {
    let reader = registry.get_blob(repo, &layer.digest).await?;
    let mut stream = VerifyStream::new(reader.stream, layer.digest.clone(), Some(layer.size));
    let mut file = StagedFile::create(target, force)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Error::new(
                e.code(),
                format!("{} ({}): {}", target.display(), layer.digest, e.message()),
            )
        })?;
        file.write_all(&chunk)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_that_leave_the_directory_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/..", "\\x", "."] {
            assert!(title_path(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(title_path("a/./b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(title_path("sbom.json").unwrap(), PathBuf::from("sbom.json"));
    }

    #[test]
    fn the_empty_descriptor_is_the_one_the_spec_shows() {
        let d = empty_descriptor();
        assert_eq!(
            d.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.size, 2);
    }
}
