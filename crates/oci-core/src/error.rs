//! The spec error codes, the one code <-> HTTP status table, and the
//! error type every crate converts into at its boundary.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A result whose error is the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error code of the distribution spec (plus `RANGE_INVALID`, `UNKNOWN`).
///
/// Errors compare by code, so an error that crossed HTTP still matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The blob is not known to the registry.
    BlobUnknown,
    /// The upload is invalid (bad state, bad content).
    BlobUploadInvalid,
    /// The upload session is not known to the registry.
    BlobUploadUnknown,
    /// The content does not match the given digest, or the digest is malformed.
    DigestInvalid,
    /// A blob the manifest references is not in the repository.
    ManifestBlobUnknown,
    /// The manifest is malformed or fails validation.
    ManifestInvalid,
    /// The manifest (or tag) is not known to the repository.
    ManifestUnknown,
    /// The repository name is malformed.
    NameInvalid,
    /// The repository is not known to the registry.
    NameUnknown,
    /// A size does not match the content, or is out of bounds.
    SizeInvalid,
    /// Authentication is required.
    Unauthorized,
    /// Access to the resource is denied.
    Denied,
    /// The operation is not supported.
    Unsupported,
    /// The client sent too many requests.
    TooManyRequests,
    /// A requested or declared byte range cannot be satisfied.
    RangeInvalid,
    /// Anything else; an internal failure.
    Unknown,
}

/// One row per code: code, its wire name, its HTTP status.
const TABLE: &[(ErrorCode, &str, u16)] = &[
    (ErrorCode::BlobUnknown, "BLOB_UNKNOWN", 404),
    (ErrorCode::BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (ErrorCode::BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (ErrorCode::DigestInvalid, "DIGEST_INVALID", 400),
    (ErrorCode::ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (ErrorCode::ManifestInvalid, "MANIFEST_INVALID", 400),
    (ErrorCode::ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (ErrorCode::NameInvalid, "NAME_INVALID", 400),
    (ErrorCode::NameUnknown, "NAME_UNKNOWN", 404),
    (ErrorCode::SizeInvalid, "SIZE_INVALID", 400),
    (ErrorCode::Unauthorized, "UNAUTHORIZED", 401),
    (ErrorCode::Denied, "DENIED", 403),
    (ErrorCode::Unsupported, "UNSUPPORTED", 405),
    (ErrorCode::TooManyRequests, "TOOMANYREQUESTS", 429),
    (ErrorCode::RangeInvalid, "RANGE_INVALID", 416),
    (ErrorCode::Unknown, "UNKNOWN", 500),
];

impl ErrorCode {
    /// Every code, in table order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (ErrorCode, &'static str, u16) {
        // Every variant has a row; `all_codes_have_rows` checks it.
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .unwrap_or(&TABLE[TABLE.len() - 1])
    }

    /// The code's wire name, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The HTTP status a server answers with for this code.
    pub fn status(self) -> u16 {
        self.row().2
    }

    /// The code for a wire name; unknown names (e.g. distribution's
    /// `TAG_INVALID`) map to the nearest code or `UNKNOWN`.
    pub fn from_wire(name: &str) -> ErrorCode {
        if let Some(row) = TABLE.iter().find(|row| row.1 == name) {
            return row.0;
        }
        match name {
            "TAG_INVALID" | "MANIFEST_UNVERIFIED" | "PAGINATION_NUMBER_INVALID" => {
                ErrorCode::ManifestInvalid
            }
            "UNAVAILABLE" => ErrorCode::Unknown,
            _ => ErrorCode::Unknown,
        }
    }

    /// The most likely code for a bare HTTP status (a HEAD response has no
    /// body); `not_found` names what a 404 means for the request at hand.
    pub fn from_status(status: u16, not_found: ErrorCode) -> ErrorCode {
        match status {
            404 => not_found,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Denied,
            405 => ErrorCode::Unsupported,
            413 => ErrorCode::SizeInvalid,
            416 => ErrorCode::RangeInvalid,
            429 => ErrorCode::TooManyRequests,
            400..=499 => ErrorCode::Unknown,
            _ => ErrorCode::Unknown,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(ErrorCode::from_wire(&name))
    }
}

/// A registry error: a spec code, a message, an optional detail, an
/// optional HTTP status that overrides the code's usual one, an optional
/// cause, and whether another attempt may succeed.
///
/// Only the code, message, detail and status cross HTTP: the cause
/// ([`std::error::Error::source`]) stays on this side, so it may name
/// files or hosts. Errors compare by code, message, detail and status.
///
/// ```
/// use oci_core::{Error, ErrorCode};
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
/// let err = Error::transient("the connection broke").with_source(io);
/// assert!(err.is(ErrorCode::Unknown) && err.is_transient());
/// assert!(std::error::Error::source(&err).is_some());
/// assert!(!Error::internal("bad configuration").is_transient());
/// ```
#[derive(Debug, Clone)]
pub struct Error {
    code: ErrorCode,
    message: String,
    detail: Option<serde_json::Value>,
    status: Option<u16>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    transient: bool,
    retried: bool,
    retry_after: Option<std::time::Duration>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.detail == other.detail
            && self.status == other.status
    }
}

impl Error {
    /// An error with a code and a message; transient only for
    /// `TOOMANYREQUESTS` (see [`Error::is_transient`]).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            detail: None,
            status: None,
            source: None,
            transient: code == ErrorCode::TooManyRequests,
            retried: false,
            retry_after: None,
        }
    }

    /// The same error with a JSON detail attached.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Error {
        self.detail = Some(detail);
        self
    }

    /// The same error answered with a status other than the code's usual one
    /// (e.g. 413 for an oversized manifest).
    pub fn with_status(mut self, status: u16) -> Error {
        self.status = Some(status);
        self
    }

    /// The same error caused by `source`, which [`std::error::Error::source`]
    /// shows. The source never reaches a client: a server writes only the
    /// code, message and detail.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error with a cause already shared (e.g. one kept by another
    /// error).
    pub fn with_shared_source(mut self, source: Arc<dyn std::error::Error + Send + Sync>) -> Error {
        self.source = Some(source);
        self
    }

    /// The same error, saying whether another attempt may succeed.
    pub fn with_transient(mut self, transient: bool) -> Error {
        self.transient = transient;
        self
    }

    /// The same error, marked as already retried by the layer that met it
    /// until its retry budget was spent, so no layer above retries it again
    /// (see [`crate::retry`]).
    pub fn with_retried(mut self) -> Error {
        self.retried = true;
        self
    }

    /// The same error with how long the client should wait before trying
    /// again: a registry's `Retry-After`, kept so that a layer passing the
    /// error on (a mirror, a proxy) can pass the hint on too. A server
    /// answering with this error writes it as `Retry-After`.
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Error {
        self.retry_after = Some(wait);
        self
    }

    /// How long to wait before trying again, when the failure said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// An `UNSUPPORTED` error naming the operation.
    pub fn unsupported(operation: &str) -> Error {
        Error::new(
            ErrorCode::Unsupported,
            format!("{operation} is not supported"),
        )
    }

    /// `NAME_UNKNOWN` for a repository a store does not hold.
    pub fn name_unknown(repo: &crate::RepoName) -> Error {
        Error::new(
            ErrorCode::NameUnknown,
            format!("repository {repo} is not known"),
        )
    }

    /// `BLOB_UNKNOWN` for a blob the repository does not hold.
    pub fn blob_unknown(repo: &crate::RepoName, digest: &crate::Digest) -> Error {
        Error::new(
            ErrorCode::BlobUnknown,
            format!("blob {digest} is not in repository {repo}"),
        )
    }

    /// `BLOB_UNKNOWN` for a mount whose source repository does not hold
    /// the blob.
    pub fn mount_source_unknown(from: &crate::RepoName, digest: &crate::Digest) -> Error {
        Error::new(
            ErrorCode::BlobUnknown,
            format!("cannot mount {digest}: repository {from} does not hold it"),
        )
    }

    /// `MANIFEST_UNKNOWN` for a manifest (by digest) or tag the repository
    /// does not hold.
    pub fn manifest_unknown(repo: &crate::RepoName, what: impl fmt::Display) -> Error {
        Error::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {what} is not in repository {repo}"),
        )
    }

    /// `DENIED` for a blob delete that names one of the repository's
    /// manifests: those go through `delete_manifest`.
    pub fn manifest_is_not_a_blob(repo: &crate::RepoName, digest: &crate::Digest) -> Error {
        Error::new(
            ErrorCode::Denied,
            format!("{digest} is a manifest of {repo}: delete the manifest instead"),
        )
    }

    /// An `UNKNOWN` error for an internal failure: a bug, a configuration
    /// that cannot work, corrupt data. Not transient.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Unknown, message)
    }

    /// An `UNKNOWN` error that another attempt may not meet: a transport
    /// failure, a dropped connection, a timeout.
    pub fn transient(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Unknown, message).with_transient(true)
    }

    /// The error a registry's HTTP answer carries: `status` overrides the
    /// code's usual one when it differs, and a 5xx or 429 is transient.
    pub fn from_response(code: ErrorCode, message: impl Into<String>, status: u16) -> Error {
        let mut err = Error::new(code, message);
        if status != code.status() {
            err.status = Some(status);
        }
        err.transient = status == 429 || (500..=599).contains(&status);
        err
    }

    /// The spec code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Whether the error has the given code.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The optional JSON detail.
    pub fn detail(&self) -> Option<&serde_json::Value> {
        self.detail.as_ref()
    }

    /// The HTTP status: the override if set, else the code's.
    pub fn status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// Whether another attempt may succeed: transport failures, a
    /// registry's 5xx and 429 are transient; configuration, authentication,
    /// corrupt data and the spec's client errors are not.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// Whether a lower layer already retried this failure until its budget
    /// was spent (see [`crate::retry`]).
    pub fn is_retried(&self) -> bool {
        self.retried
    }

    /// Whether a "not found" code (blob, manifest, name, upload unknown).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::BlobUnknown
                | ErrorCode::ManifestUnknown
                | ErrorCode::NameUnknown
                | ErrorCode::BlobUploadUnknown
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    /// An `UNKNOWN` error keeping the io error as its source; transient
    /// when the kind is a broken or timed-out connection.
    fn from(err: std::io::Error) -> Error {
        use std::io::ErrorKind;
        let transient = matches!(
            err.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::ConnectionRefused
                | ErrorKind::BrokenPipe
                | ErrorKind::TimedOut
                | ErrorKind::Interrupted
        );
        Error::internal(format!("i/o error: {err}"))
            .with_transient(transient)
            .with_source(err)
    }
}

/// The spec's JSON error body: `{"errors":[{"code":…,"message":…,"detail":…}]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// The errors; a server writes one, a client reads the first.
    pub errors: Vec<ErrorEntry>,
}

/// One entry of an [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorEntry {
    /// The spec code.
    pub code: ErrorCode,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The body a server writes for an error.
    pub fn from_error(err: &Error) -> ErrorBody {
        ErrorBody {
            errors: vec![ErrorEntry {
                code: err.code,
                message: err.message.clone(),
                detail: err.detail.clone(),
            }],
        }
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec())
    }

    /// Reads an error back from a response: status and body. A body that is
    /// not the spec's JSON still yields an error, coded from the status.
    pub fn parse_response(status: u16, body: &[u8], not_found: ErrorCode) -> Error {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        match parsed.and_then(|b| b.errors.into_iter().next()) {
            Some(entry) => {
                let mut err = Error::from_response(entry.code, entry.message, status);
                err.detail = entry.detail;
                err
            }
            None => {
                let code = ErrorCode::from_status(status, not_found);
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let message = if text.is_empty() || text.len() > 200 {
                    format!("HTTP status {status}")
                } else {
                    format!("HTTP status {status}: {text}")
                };
                Error::from_response(code, message, status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_codes_have_rows() {
        for code in [
            ErrorCode::BlobUnknown,
            ErrorCode::BlobUploadInvalid,
            ErrorCode::BlobUploadUnknown,
            ErrorCode::DigestInvalid,
            ErrorCode::ManifestBlobUnknown,
            ErrorCode::ManifestInvalid,
            ErrorCode::ManifestUnknown,
            ErrorCode::NameInvalid,
            ErrorCode::NameUnknown,
            ErrorCode::SizeInvalid,
            ErrorCode::Unauthorized,
            ErrorCode::Denied,
            ErrorCode::Unsupported,
            ErrorCode::TooManyRequests,
            ErrorCode::RangeInvalid,
            ErrorCode::Unknown,
        ] {
            assert!(TABLE.iter().any(|row| row.0 == code), "{code:?}");
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
        assert_eq!(ErrorCode::all().count(), TABLE.len());
    }

    #[test]
    fn error_survives_the_wire() {
        let err = Error::new(ErrorCode::ManifestBlobUnknown, "blob sha256:00 missing")
            .with_detail(serde_json::json!({"digest": "sha256:00"}));
        let body = ErrorBody::from_error(&err).to_json();
        let back = ErrorBody::parse_response(err.status(), &body, ErrorCode::Unknown);
        assert_eq!(back, err);
        assert_eq!(back.status(), 400);
    }

    #[test]
    fn status_override_survives_the_wire() {
        let err = Error::new(ErrorCode::SizeInvalid, "too big").with_status(413);
        let body = ErrorBody::from_error(&err).to_json();
        let back = ErrorBody::parse_response(413, &body, ErrorCode::Unknown);
        assert_eq!(back.status(), 413);
        assert!(back.is(ErrorCode::SizeInvalid));
    }

    #[test]
    fn bodiless_and_garbage_responses_map_by_status() {
        let e = ErrorBody::parse_response(404, b"", ErrorCode::BlobUnknown);
        assert!(e.is(ErrorCode::BlobUnknown));
        let e = ErrorBody::parse_response(502, b"<html>bad gateway</html>", ErrorCode::BlobUnknown);
        assert!(e.is(ErrorCode::Unknown));
        assert_eq!(e.status(), 502);
        let e = ErrorBody::parse_response(
            400,
            b"{\"errors\":[{\"code\":\"TAG_INVALID\"}]}",
            ErrorCode::Unknown,
        );
        assert!(e.is(ErrorCode::ManifestInvalid));
    }

    #[test]
    fn transience_of_each_kind_of_error() {
        // Transport failures and a registry's 5xx and 429 may pass.
        assert!(Error::transient("connection reset").is_transient());
        assert!(Error::new(ErrorCode::TooManyRequests, "slow down").is_transient());
        for status in [500, 502, 503, 504] {
            let e = ErrorBody::parse_response(status, b"", ErrorCode::BlobUnknown);
            assert!(e.is_transient(), "{status}");
        }
        let e = ErrorBody::parse_response(429, b"", ErrorCode::BlobUnknown);
        assert!(e.is_transient() && e.is(ErrorCode::TooManyRequests));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(Error::from(reset).is_transient());
        // Configuration, auth, corrupt data and spec client errors do not.
        assert!(!Error::internal("the user agent is not a valid header").is_transient());
        assert!(!Error::unsupported("mount").is_transient());
        for code in ErrorCode::all().filter(|c| *c != ErrorCode::TooManyRequests) {
            assert!(!Error::new(code, "").is_transient(), "{code}");
            let body = ErrorBody::from_error(&Error::new(code, "")).to_json();
            let back = ErrorBody::parse_response(code.status(), &body, ErrorCode::Unknown);
            assert_eq!(back.is_transient(), code.status() >= 500, "{code}");
        }
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(!Error::from(missing).is_transient());
    }

    #[test]
    fn the_source_is_kept_but_never_written() {
        let cause = std::io::Error::other("open /srv/secret/blobs/sha256/ab: permission denied");
        let err = Error::internal("the store could not open a file").with_source(cause);
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("/srv/secret")));
        assert!(!err.to_string().contains("/srv/secret"));
        let body = String::from_utf8(ErrorBody::from_error(&err).to_json()).unwrap();
        assert!(!body.contains("/srv/secret"), "{body}");
        // Errors compare by what crosses the wire.
        assert_eq!(err, Error::internal("the store could not open a file"));
    }
}
