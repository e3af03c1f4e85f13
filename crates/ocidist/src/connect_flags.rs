//! The command line's connection flags as the library's
//! [`ConnectOptions`].

use std::io::BufRead;

use oci_client::{AuthOptions, Scheme};
use oci_core::{Error, ErrorCode, Result};
use ocidist::connect::{self, ConnectOptions, Connector};

use crate::cli::{ConnectFlags, SchemeArg};

/// A connector from the flags (reads files and stdin as asked).
pub fn connector(flags: &ConnectFlags) -> Result<Connector> {
    Connector::from_options(&connect_options(flags)?)
}

/// The connection flags as options (the password read from stdin if asked).
pub fn connect_options(flags: &ConnectFlags) -> Result<ConnectOptions> {
    let scheme = match (flags.scheme, flags.plain_http) {
        (_, true) | (Some(SchemeArg::Http), _) => Some(Scheme::Http),
        (Some(SchemeArg::Https), _) => Some(Scheme::Https),
        (None, false) => None,
    };
    let auth = if let Some(token) = &flags.token {
        AuthOptions::BearerToken(token.0.clone())
    } else if let Some(username) = &flags.username {
        let password = match (&flags.password, flags.password_stdin) {
            (Some(p), _) => p.0.clone(),
            (None, true) => read_password_stdin()?,
            (None, false) => {
                return Err(Error::new(
                    ErrorCode::NameInvalid,
                    "--username needs --password or --password-stdin",
                ));
            }
        };
        AuthOptions::Basic {
            username: username.clone(),
            password,
        }
    } else if flags.anonymous {
        AuthOptions::Anonymous
    } else {
        let (auth, warnings) = connect::stored_credentials();
        for warning in warnings {
            eprintln!("ocidist: warning: {warning}");
        }
        auth
    };
    Ok(ConnectOptions {
        scheme,
        auth,
        insecure: flags.insecure,
        ca_file: flags.cacert.clone(),
        client_cert: flags.cert.clone().zip(flags.key.clone()),
        namespace: flags.namespace.clone(),
        proxy: flags.proxy.clone(),
    })
}

/// The first line of stdin, read once however many connectors ask (the
/// two sides of a copy are built from flags that may share it).
fn read_password_stdin() -> Result<String> {
    static READ: std::sync::OnceLock<std::result::Result<String, String>> =
        std::sync::OnceLock::new();
    READ.get_or_init(|| {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    })
    .clone()
    .map_err(|e| Error::new(ErrorCode::Unknown, e))
}
