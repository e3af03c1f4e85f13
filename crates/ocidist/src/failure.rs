//! How a failed command is told: one line naming what failed and what to
//! do, and an exit code a script can tell apart.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | any other failure (a local file, a registry refusing content, …) |
//! | 2 | usage: bad flags or arguments (an unparsable reference, platform, tag) |
//! | 3 | not found: repository, tag, manifest, blob or platform |
//! | 4 | authentication or authorization (HTTP 401/403) |
//! | 5 | network or TLS: no connection, certificate, scheme mismatch, timeout |
//! | 130 | interrupted (Ctrl-C) |

use oci_client::{Client, ClientOptions, NetworkFailure, RetryConfig, Scheme};
use oci_core::{Error, ErrorCode};

/// Exit code: any other failure.
pub const EXIT_GENERIC: i32 = 1;
/// Exit code: bad flags or arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: something named does not exist.
pub const EXIT_NOT_FOUND: i32 = 3;
/// Exit code: authentication or authorization refused.
pub const EXIT_AUTH: i32 = 4;
/// Exit code: network or TLS failure.
pub const EXIT_NETWORK: i32 = 5;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: i32 = 130;

/// The exit codes as `--help` lists them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes: 0 success, 1 other failure, 2 usage (bad flags or arguments),
3 not found (repository, tag, manifest, blob, platform), 4 authentication or
authorization (HTTP 401/403), 5 network or TLS (connection, certificate,
http/https mismatch, timeout), 130 interrupted.";

/// Why a command failed, before it is told.
#[derive(Debug)]
pub enum Failure {
    /// The command line asks for something impossible.
    Usage(String),
    /// Acting failed.
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl Failure {
    /// A usage failure from an error parsing an argument.
    pub fn usage(e: Error) -> Failure {
        Failure::Usage(e.message().to_owned())
    }
}

/// A failure as told to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// The process exit code.
    pub code: i32,
    /// One line for stderr.
    pub message: String,
}

/// The exit code for an error, by its class.
pub fn exit_code(e: &Error) -> i32 {
    if NetworkFailure::of(e).is_some() || is_http_to_https(e) {
        EXIT_NETWORK
    } else if e.is_not_found() {
        EXIT_NOT_FOUND
    } else if e.is(ErrorCode::Unauthorized) || e.is(ErrorCode::Denied) {
        EXIT_AUTH
    } else {
        EXIT_GENERIC
    }
}

/// The message of an error: a registry's code in parentheses, none for
/// local failures (`UNKNOWN`).
pub fn base_message(e: &Error) -> String {
    let message = if e.message().is_empty() {
        e.code().as_str().to_lowercase().replace('_', " ")
    } else {
        e.message().to_owned()
    };
    if e.is(ErrorCode::Unknown) {
        message
    } else {
        format!("{message} ({})", e.code())
    }
}

/// Go's TLS servers answer plain http with this 400.
fn is_http_to_https(e: &Error) -> bool {
    e.message()
        .contains("Client sent an HTTP request to an HTTPS server")
}

/// What a registry the command talked to was reached with.
#[derive(Debug, Clone)]
pub struct Side {
    /// `host[:port]`.
    pub host: String,
    /// The scheme used.
    pub scheme: Scheme,
    /// Whether credentials were presented (flags or stored).
    pub credentials: bool,
    /// The options, for a probe with the other scheme.
    pub options: ClientOptions,
    /// The prefix of this side's flags (`""`, `"src-"`, `"dest-"`).
    pub flags: &'static str,
}

/// Tells an error: the message with a hint for the registry it concerns
/// (the side whose host the message names, else the first), and its code.
pub async fn tell(e: &Error, sides: &[Side]) -> Told {
    let code = exit_code(e);
    let mut message = base_message(e);
    // The side the message names; else, for a refusal that names no
    // host (a registry's bare 401 to a request without credentials), a
    // side that had none to send; else the first.
    let auth = e.is(ErrorCode::Unauthorized) || e.is(ErrorCode::Denied);
    let named = sides.iter().find(|s| e.message().contains(&s.host));
    let candidates: Vec<&Side> = match named {
        Some(s) => vec![s],
        None if auth => sides
            .iter()
            .find(|s| !s.credentials)
            .or_else(|| sides.first())
            .into_iter()
            .collect(),
        // A network failure naming no host: the first side a hint fits.
        None => sides.iter().collect(),
    };
    for side in candidates {
        if let Some(hint) = hint(e, side).await {
            message = format!("{message}; {hint}");
            break;
        }
    }
    Told { code, message }
}

async fn hint(e: &Error, side: &Side) -> Option<String> {
    let host = &side.host;
    let flag = |name: &str| format!("--{}{name}", side.flags);
    if e.is(ErrorCode::Unauthorized) || e.is(ErrorCode::Denied) {
        let sent = side.credentials || e.message().contains("rejected the credentials");
        if !sent {
            return Some(format!(
                "no credentials were sent to {host}: log in with `ocidist login {host}` or pass {} USER {}",
                flag("username"),
                flag("password-stdin")
            ));
        }
        return Some(if e.is(ErrorCode::Denied) {
            "the credentials sent do not grant this access".to_owned()
        } else {
            format!("check the user name and password (`ocidist login {host}` stores new ones)")
        });
    }
    let network = NetworkFailure::of(e);
    if network.is_none() && !is_http_to_https(e) {
        return None;
    }
    let text = e.message();
    match side.scheme {
        Scheme::Http if speaks(side, Scheme::Https).await => {
            return Some(format!(
                "{host} speaks https, not plain http: use {} https (with {} FILE or {} for a private CA)",
                flag("scheme"),
                flag("cacert"),
                flag("insecure")
            ));
        }
        Scheme::Https
            if network == Some(NetworkFailure::Tls) && speaks(side, Scheme::Http).await =>
        {
            return Some(format!(
                "{host} speaks plain http, not https: use {} http",
                flag("scheme")
            ));
        }
        _ => {}
    }
    let lower = text.to_ascii_lowercase();
    let refused_handshake = [
        "certificaterequired",
        "badcertificate",
        "handshakefailure",
        "unknownca",
    ]
    .iter()
    .any(|alert| lower.contains(alert));
    // With TLS 1.3 a server that wants a client certificate refuses it
    // after the handshake: the client may see only the connection close.
    let dropped = network == Some(NetworkFailure::Connection)
        && side.options.tls.client_cert_pem.is_none()
        && ["broken pipe", "closed", "reset"]
            .iter()
            .any(|w| lower.contains(w));
    if side.scheme == Scheme::Https && (refused_handshake || dropped) {
        Some(format!(
            "the registry refused the TLS connection; if it requires a client certificate pass {} FILE {} FILE",
            flag("cert"),
            flag("key")
        ))
    } else if network == Some(NetworkFailure::Tls) && lower.contains("certificate") {
        Some(format!(
            "to trust the registry's certificate pass its CA with {} FILE, or skip verification with {}",
            flag("cacert"),
            flag("insecure")
        ))
    } else {
        None
    }
}

/// Whether `side`'s host answers HTTP at all over `scheme` (any status,
/// even 401): one request, no retries, no credentials, TLS unverified.
async fn speaks(side: &Side, scheme: Scheme) -> bool {
    let mut options = side.options.clone().anonymous().scheme(scheme);
    options.tls.insecure = true;
    options.retry = RetryConfig::none();
    options.connect_timeout = std::time::Duration::from_secs(5);
    let Ok(client) = Client::new(&side.host, options) else {
        return false;
    };
    match client.ping().await {
        Ok(()) => true,
        Err(e) => NetworkFailure::of(&e).is_none() && !is_http_to_https(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_messages() {
        let local = Error::internal("out.tar already exists");
        assert_eq!(exit_code(&local), EXIT_GENERIC);
        assert_eq!(base_message(&local), "out.tar already exists");
        let missing = Error::new(ErrorCode::ManifestUnknown, "tag v9 not found");
        assert_eq!(exit_code(&missing), EXIT_NOT_FOUND);
        assert_eq!(
            base_message(&missing),
            "tag v9 not found (MANIFEST_UNKNOWN)"
        );
        assert_eq!(exit_code(&Error::new(ErrorCode::Denied, "")), EXIT_AUTH);
        assert_eq!(
            base_message(&Error::new(ErrorCode::Denied, "")),
            "denied (DENIED)"
        );
        let tls = Error::internal("x").with_detail(serde_json::json!({"network": "tls"}));
        assert_eq!(exit_code(&tls), EXIT_NETWORK);
    }
}
