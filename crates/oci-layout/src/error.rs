//! [`LayoutError`]: what can go wrong on disk, always naming the path, and
//! its conversion into the core [`oci_core::Error`]. The path stays on this
//! side: the conversion logs the whole error (path and cause), keeps it as
//! the core error's source (which never crosses HTTP), and gives the
//! caller, who may be a client across the network, a message without it.
//! None of these failures is transient: retrying a corrupt file or a full
//! disk does not help.

use std::path::{Path, PathBuf};

use oci_core::{Error, ErrorCode};

/// A failure of the on-disk store, with the offending path.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "rename", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file holds something it must not: bad JSON, a digest mismatch, a
    /// missing blob listed in an index.
    #[error("corrupt layout at {path}: {why}")]
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Another process holds the store's lock.
    #[error("the store is in use by another process (its .lock file is held)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl LayoutError {
    /// An I/O failure of `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> LayoutError {
        LayoutError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// A corrupt file at `path`.
    pub(crate) fn corrupt(path: &Path, why: impl Into<String>) -> LayoutError {
        LayoutError::Corrupt {
            path: path.to_owned(),
            why: why.into(),
        }
    }
}

impl LayoutError {
    /// What a caller is told: the failure without any path.
    fn public_message(&self) -> String {
        match self {
            LayoutError::Io { op, source, .. } => {
                format!("the store could not {op} a file: {}", source.kind())
            }
            LayoutError::Corrupt { why, .. } => format!("corrupt data in the store: {why}"),
            LayoutError::Locked { .. } => self.to_string(),
        }
    }
}

impl From<LayoutError> for Error {
    fn from(err: LayoutError) -> Error {
        match &err {
            LayoutError::Corrupt { .. } => tracing::error!(error = %err, "layout store corrupt"),
            _ => tracing::warn!(error = %err, "layout store failure"),
        }
        Error::new(ErrorCode::Unknown, err.public_message()).with_source(err)
    }
}

/// A closure turning an `io::Error` of `op` on `path` into a core error.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| LayoutError::io(op, path, source).into()
}

/// An error for a blocking task that did not finish (it panicked).
pub(crate) fn join_err(err: tokio::task::JoinError) -> Error {
    Error::internal(format!("a blocking file task failed: {err}")).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_kept_as_the_source_not_the_message() {
        let path = Path::new("/srv/registry/secret-dir/index.json");
        let cause = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err: Error = LayoutError::io("read", path, cause).into();
        assert!(!err.message().contains("secret-dir"), "{err}");
        assert!(!err.is_transient());
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("/srv/registry/secret-dir")));
        let err: Error = LayoutError::corrupt(path, "invalid index.json").into();
        assert!(!err.message().contains("secret-dir") && !err.is_transient());
        assert!(std::error::Error::source(&err).is_some());
    }
}
