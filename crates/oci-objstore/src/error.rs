//! [`ObjError`]: what can go wrong talking to the object store, naming the
//! operation and the key, and its conversion into the core
//! [`oci_core::Error`]. The key and the backend's own message (which may
//! hold the endpoint's URL) stay on this side: the conversion logs them and
//! gives the caller, who may be a client across the network, a message
//! without them.

use object_store::path::Path;
use oci_core::{Error, ErrorCode};

/// A failure of the object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjError {
    /// A call to the object store failed.
    #[error("object store {op} {key}: {source}")]
    Store {
        /// What was being done ("get", "put", "list", …).
        op: &'static str,
        /// The object or prefix.
        key: String,
        /// The backend's error.
        source: object_store::Error,
    },
    /// An object holds something it must not.
    #[error("corrupt object {key}: {why}")]
    Corrupt {
        /// The object.
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// The storage URL or its settings are not usable.
    #[error("{0}")]
    Config(String),
}

impl ObjError {
    /// A failure of `op` on `key`.
    pub(crate) fn store(op: &'static str, key: &Path, source: object_store::Error) -> ObjError {
        ObjError::Store {
            op,
            key: key.to_string(),
            source,
        }
    }

    /// A corrupt object at `key`.
    pub(crate) fn corrupt(key: &Path, why: impl Into<String>) -> ObjError {
        ObjError::Corrupt {
            key: key.to_string(),
            why: why.into(),
        }
    }
}

impl From<ObjError> for Error {
    fn from(err: ObjError) -> Error {
        match &err {
            ObjError::Corrupt { .. } => tracing::error!(error = %err, "object store corrupt"),
            _ => tracing::warn!(error = %err, "object store failure"),
        }
        let message = match &err {
            ObjError::Store { op, source, .. } => {
                format!(
                    "the object store could not {op} an object: {}",
                    kind(source)
                )
            }
            ObjError::Corrupt { why, .. } => format!("corrupt data in the object store: {why}"),
            ObjError::Config(why) => why.clone(),
        };
        let error = Error::new(ErrorCode::Unknown, message);
        match &err {
            // The backend failed or could not be reached: 503, which
            // clients retry (a store briefly down then answers).
            ObjError::Store { source, .. } if transient(source) => error.with_status(503),
            _ => error,
        }
    }
}

/// A short name for a backend error, without its details.
fn kind(err: &object_store::Error) -> &'static str {
    match err {
        object_store::Error::NotFound { .. } => "not found",
        object_store::Error::AlreadyExists { .. } => "already exists",
        object_store::Error::Precondition { .. } => "precondition failed",
        object_store::Error::NotImplemented { .. } => "not implemented by the backend",
        object_store::Error::NotSupported { .. } => "not supported by the backend",
        object_store::Error::PermissionDenied { .. } => "permission denied",
        object_store::Error::Unauthenticated { .. } => "unauthenticated",
        _ => "the backend failed or could not be reached",
    }
}

/// Whether a backend error may go away by itself (a retry can help).
fn transient(err: &object_store::Error) -> bool {
    !matches!(
        err,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::InvalidPath { .. }
    )
}

/// A closure turning a backend error of `op` on `key` into a core error.
pub(crate) fn store_err(op: &'static str, key: &Path) -> impl FnOnce(object_store::Error) -> Error {
    let key = key.clone();
    move |source| ObjError::store(op, &key, source).into()
}

/// Whether a backend error means the object is not there.
pub(crate) fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
}
