//! [`LayoutError`]: what can go wrong on disk, always naming the path, and
//! its conversion into the core [`oci_core::Error`]. The path stays on this
//! side: the conversion logs the whole error (path and cause) and gives the
//! caller, who may be a client across the network, a message without it.

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
        Error::new(ErrorCode::Unknown, err.public_message())
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
    Error::internal(format!("a blocking file task failed: {err}"))
}
