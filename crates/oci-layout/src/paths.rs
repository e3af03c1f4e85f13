//! Where everything lives under the store's root (see the crate docs for
//! the picture), and the mapping between repository names and directories.

use std::path::{Path, PathBuf};

use oci_core::{Digest, Error, ErrorCode, RepoName, Result};

/// Repository name components that would collide with a layout's own
/// entries; on disk they are written with a leading `_`, which no valid
/// component has.
const RESERVED: [&str; 3] = ["blobs", "index.json", "oci-layout"];

/// The length of an upload id: 128 random bits in hex.
pub(crate) const UPLOAD_ID_LEN: usize = 32;

/// The paths of a store rooted at one directory.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    root: PathBuf,
}

impl Paths {
    /// The paths under `root`.
    pub(crate) fn new(root: PathBuf) -> Paths {
        Paths { root }
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file that keeps a second process out.
    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// The directory of files being written, emptied at open.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    /// A fresh, unused temporary file path.
    pub(crate) fn tmp_file(&self) -> PathBuf {
        self.tmp_dir()
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    /// The shared content store.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.root.join(".blobs")
    }

    /// A blob in the shared content store.
    pub(crate) fn store_blob(&self, digest: &Digest) -> PathBuf {
        self.store_dir()
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The directory of chunked uploads.
    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.root.join(".uploads")
    }

    /// The directory of one upload; `BLOB_UPLOAD_UNKNOWN` for an id that
    /// cannot be one of ours (which also keeps ids from naming other paths).
    pub(crate) fn upload(&self, repo: &RepoName, id: &str) -> Result<PathBuf> {
        let ours = id.len() == UPLOAD_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ours {
            return Err(Error::new(
                ErrorCode::BlobUploadUnknown,
                format!("upload {id} is not in progress in repository {repo}"),
            ));
        }
        Ok(self.uploads_dir().join(id))
    }

    /// A repository's layout directory.
    pub(crate) fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        let mut dir = self.root.clone();
        for component in repo.as_str().split('/') {
            if RESERVED.contains(&component) {
                dir.push(format!("_{component}"));
            } else {
                dir.push(component);
            }
        }
        dir
    }

    /// A blob (or manifest) file of a repository's layout.
    pub(crate) fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        blob_in(&self.repo_dir(repo), digest)
    }
}

/// The file of `digest` in the layout at `dir`.
pub(crate) fn blob_in(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// The repository name component a directory entry stands for, if any.
pub(crate) fn component_of(entry: &str) -> Option<&str> {
    match entry.strip_prefix('_') {
        Some(rest) if RESERVED.contains(&rest) => Some(rest),
        Some(_) => None,
        None if entry.starts_with('.') || RESERVED.contains(&entry) => None,
        None => Some(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_components_are_escaped_both_ways() {
        let paths = Paths::new(PathBuf::from("/r"));
        let repo: RepoName = "a/blobs/index.json/b".parse().unwrap();
        assert_eq!(
            paths.repo_dir(&repo),
            PathBuf::from("/r/a/_blobs/_index.json/b")
        );
        assert_eq!(component_of("_blobs"), Some("blobs"));
        assert_eq!(component_of("blobs"), None);
        assert_eq!(component_of(".tmp"), None);
        assert_eq!(component_of("_x"), None);
        assert_eq!(component_of("app"), Some("app"));
    }

    #[test]
    fn upload_ids_cannot_name_other_paths() {
        let paths = Paths::new(PathBuf::from("/r"));
        let repo: RepoName = "a".parse().unwrap();
        assert!(paths.upload(&repo, "../../etc/passwd").is_err());
        assert!(paths.upload(&repo, &"A".repeat(32)).is_err());
        assert!(paths.upload(&repo, &"a".repeat(32)).is_ok());
    }
}
