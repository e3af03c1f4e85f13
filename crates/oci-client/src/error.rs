//! [`ClientError`]: what goes wrong talking to a registry, and its
//! conversion into the core [`oci_core::Error`] with its spec code, its
//! transience and its cause intact.

use bytes::Bytes;
use oci_core::{Error, ErrorBody, ErrorCode};

use crate::transport::NetworkFailure;

/// A cause kept as a source.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failure of the client, before it becomes an [`oci_core::Error`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request failed on the network, before or while a response came
    /// (transient, unless TLS refused the connection).
    #[error("{message}")]
    Transport {
        /// How it failed; kept in the error's detail (`{"network": …}`).
        kind: NetworkFailure,
        /// What was being done, with the failure.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// The registry answered with an error status; the body carries the
    /// spec code (5xx and 429 are transient).
    #[error("HTTP status {status}")]
    Status {
        /// The status.
        status: u16,
        /// The body (the spec's JSON error, or anything else).
        body: Bytes,
        /// What a body-less 404 means for the request at hand.
        not_found: ErrorCode,
        /// Whether the client already retried the status until its budget
        /// was spent.
        retried: bool,
    },
    /// The registry refused the credentials sent, or asked for some that
    /// the client has not got (`UNAUTHORIZED` or `DENIED`).
    #[error("{host} {what}: {message}")]
    Auth {
        /// `UNAUTHORIZED` or `DENIED`.
        code: ErrorCode,
        /// The registry host.
        host: String,
        /// "rejected the credentials" or "requires authentication".
        what: &'static str,
        /// The registry's own message.
        message: String,
    },
    /// A docker or podman auth config file that cannot be used.
    #[error("{message}")]
    AuthConfig {
        /// What is wrong, naming the file when there is one.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// A credential helper that could not be run or gave no usable answer.
    #[error("{message}")]
    CredentialHelper {
        /// What failed, naming the program.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// A redirect that cannot be followed.
    #[error("{0}")]
    Redirect(String),
    /// A URL that cannot be built (from a host, a `Location`, a `Link`).
    #[error("{message}")]
    Url {
        /// Which URL, and why.
        message: String,
        /// The parse error.
        #[source]
        source: Option<Cause>,
    },
    /// The TLS configuration cannot be built (CA bundle, certificate, key).
    #[error("TLS setup: {what}: {message}")]
    Tls {
        /// What was being read or built.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// A setting that cannot work (an invalid user agent).
    #[error("{0}")]
    Config(String),
    /// Something the client had to encode could not be.
    #[error("{what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// The client's own machinery failed (a closed semaphore, a blocking
    /// task that panicked).
    #[error("{0}")]
    Closed(String),
}

impl ClientError {
    /// A transport failure of `kind` with a message and no further cause.
    pub(crate) fn network(kind: NetworkFailure, message: impl Into<String>) -> ClientError {
        ClientError::Transport {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An invalid URL.
    pub(crate) fn url(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ClientError {
        ClientError::Url {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A credential helper failure.
    pub(crate) fn helper(
        message: impl Into<String>,
        source: Option<std::io::Error>,
    ) -> ClientError {
        ClientError::CredentialHelper {
            message: message.into(),
            source: source.map(|s| Box::new(s) as Cause),
        }
    }

    /// An unusable auth config.
    pub(crate) fn auth_config(message: impl Into<String>, source: Option<Cause>) -> ClientError {
        ClientError::AuthConfig {
            message: message.into(),
            source,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { kind, .. } => *kind != NetworkFailure::Tls,
            ClientError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<ClientError> for Error {
    fn from(err: ClientError) -> Error {
        let transient = err.is_transient();
        let message = err.to_string();
        match err {
            ClientError::Transport { kind, source, .. } => {
                let e = Error::internal(message)
                    .with_transient(transient)
                    .with_detail(serde_json::json!({"network": kind.as_str()}));
                match source {
                    Some(source) => e.with_shared_source(source.into()),
                    None => e,
                }
            }
            ClientError::Status {
                status,
                body,
                not_found,
                retried,
            } => {
                let e = ErrorBody::parse_response(status, &body, not_found);
                if retried { e.with_retried() } else { e }
            }
            ClientError::Auth { code, .. } => Error::new(code, message),
            other => {
                let e = Error::internal(message);
                match std::error::Error::source(&other) {
                    Some(_) => e.with_source(other),
                    None => e,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> ClientError {
        ClientError::Status {
            status,
            body: Bytes::new(),
            not_found: ErrorCode::BlobUnknown,
            retried: false,
        }
    }

    #[test]
    fn each_kind_converts_with_its_code_and_transience() {
        let cases: Vec<(ClientError, ErrorCode, bool)> = vec![
            (
                ClientError::network(NetworkFailure::Connect, "connection refused"),
                ErrorCode::Unknown,
                true,
            ),
            (
                ClientError::network(NetworkFailure::Timeout, "timed out"),
                ErrorCode::Unknown,
                true,
            ),
            (
                ClientError::network(NetworkFailure::Tls, "unknown issuer"),
                ErrorCode::Unknown,
                false,
            ),
            (status(503), ErrorCode::Unknown, true),
            (status(429), ErrorCode::TooManyRequests, true),
            (status(404), ErrorCode::BlobUnknown, false),
            (status(401), ErrorCode::Unauthorized, false),
            (
                ClientError::Auth {
                    code: ErrorCode::Denied,
                    host: "r.example".into(),
                    what: "rejected the credentials",
                    message: "no".into(),
                },
                ErrorCode::Denied,
                false,
            ),
            (
                ClientError::helper("docker-credential-x get failed: boom", None),
                ErrorCode::Unknown,
                false,
            ),
            (
                ClientError::auth_config("auth config: auth is not UTF-8", None),
                ErrorCode::Unknown,
                false,
            ),
            (
                ClientError::Redirect("more than 10 redirects".into()),
                ErrorCode::Unknown,
                false,
            ),
            (
                ClientError::Config("the user agent is not a valid header value".into()),
                ErrorCode::Unknown,
                false,
            ),
        ];
        for (client, code, transient) in cases {
            let what = client.to_string();
            assert_eq!(client.is_transient(), transient, "{what}");
            let err = Error::from(client);
            assert!(err.is(code), "{what}: {err}");
            assert_eq!(err.is_transient(), transient, "{what}");
        }
    }

    #[test]
    fn a_spec_error_body_keeps_its_code_and_the_network_kind_its_detail() {
        let body = ErrorBody::from_error(&Error::new(ErrorCode::ManifestBlobUnknown, "missing"));
        let err = Error::from(ClientError::Status {
            status: 400,
            body: body.to_json().into(),
            not_found: ErrorCode::ManifestUnknown,
            retried: false,
        });
        assert!(err.is(ErrorCode::ManifestBlobUnknown));
        assert_eq!(err.message(), "missing");
        let err = Error::from(ClientError::network(NetworkFailure::Tls, "bad cert"));
        assert_eq!(NetworkFailure::of(&err), Some(NetworkFailure::Tls));
        let spent = Error::from(ClientError::Status {
            status: 503,
            body: Bytes::new(),
            not_found: ErrorCode::BlobUnknown,
            retried: true,
        });
        assert!(spent.is_transient() && spent.is_retried());
    }

    #[test]
    fn causes_are_kept_as_sources() {
        let parse = "a b".parse::<http::Uri>().unwrap_err();
        let err = Error::from(ClientError::url("invalid URL \"a b\"", parse));
        assert!(std::error::Error::source(&err).is_some());
        let io = std::io::Error::other("exec format error");
        let err = Error::from(ClientError::helper(
            "running x: exec format error",
            Some(io),
        ));
        assert!(std::error::Error::source(&err).is_some());
    }
}
