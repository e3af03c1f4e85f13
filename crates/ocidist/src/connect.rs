//! Turns the connection flags into a connected [`Registry`] per host.

use std::io::BufRead;
use std::sync::Arc;

use oci_client::auth::credentials;
use oci_client::{AuthOptions, Client, ClientOptions, ProxyOptions, Scheme};
use oci_core::{Error, ErrorCode, Registry, Result};

use crate::cli::{ConnectFlags, SchemeArg};
use crate::failure::Side;

/// Connects to registries with one set of options.
#[derive(Debug, Clone)]
pub struct Connector {
    options: ClientOptions,
    traced: bool,
}

fn read_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorCode::Unknown,
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })
}

impl Connector {
    /// Options from the command line flags (reads files and stdin as asked).
    pub fn from_flags(flags: &ConnectFlags) -> Result<Connector> {
        let scheme = match (flags.scheme, flags.plain_http) {
            (_, true) | (Some(SchemeArg::Http), _) => Some(Scheme::Http),
            (Some(SchemeArg::Https), _) => Some(Scheme::Https),
            (None, false) => None,
        };
        let mut options = ClientOptions {
            scheme,
            ..ClientOptions::default()
        };
        options.tls.insecure = flags.insecure;
        if let Some(path) = &flags.cacert {
            options.tls.ca_pem = Some(read_file(path, "CA bundle")?);
        }
        if let (Some(cert), Some(key)) = (&flags.cert, &flags.key) {
            options.tls.client_cert_pem = Some(read_file(cert, "client certificate")?);
            options.tls.client_key_pem = Some(read_file(key, "client key")?);
        }
        if let Some(url) = &flags.proxy {
            options.proxy = ProxyOptions::Url {
                url: url.clone(),
                no_proxy: std::env::var("NO_PROXY")
                    .or_else(|_| std::env::var("no_proxy"))
                    .ok(),
            };
        }
        options.namespace = flags.namespace.clone();
        options.auth = if let Some(token) = &flags.token {
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
            stored_credentials()
        };
        Ok(Connector {
            options,
            traced: false,
        })
    }

    /// Wraps every connection in `oci_debug::Traced`, so each registry call
    /// is logged (`-v`).
    pub fn traced(mut self, traced: bool) -> Connector {
        self.traced = traced;
        self
    }

    /// What a failure report needs to know of the connection to `host`;
    /// `flags` is the prefix of its side's flags (`""`, `"src-"`, `"dest-"`).
    pub fn side(&self, host: &str, flags: &'static str) -> Side {
        let credentials = match &self.options.auth {
            AuthOptions::Anonymous => false,
            AuthOptions::FromConfig => {
                credentials::lookup_files(&credentials::default_files(), host)
                    .is_ok_and(|c| c != credentials::Credentials::Anonymous)
            }
            AuthOptions::ConfigFiles(files) => credentials::lookup_files(files, host)
                .is_ok_and(|c| c != credentials::Credentials::Anonymous),
            _ => true,
        };
        let host = Client::new(host, self.options.clone())
            .map(|c| c.host().to_owned())
            .unwrap_or_else(|_| host.to_owned());
        Side {
            scheme: self.options.scheme_for(&host),
            host,
            credentials,
            options: self.options.clone(),
            flags,
        }
    }

    /// The credentials the flags chose.
    pub fn auth(&self) -> &AuthOptions {
        &self.options.auth
    }

    /// The same connection settings with other credentials.
    pub fn with_auth(mut self, auth: AuthOptions) -> Connector {
        self.options.auth = auth;
        self
    }

    /// A bare HTTP client for `host[:port]` (for `ping`).
    pub fn client(&self, host: &str) -> Result<Client> {
        Client::new(host, self.options.clone())
    }

    /// A client for `host[:port]`.
    pub fn connect(&self, host: &str) -> Result<Arc<dyn Registry>> {
        let client: Arc<dyn Registry> = Arc::new(Client::new(host, self.options.clone())?);
        Ok(if self.traced {
            Arc::new(oci_debug::Traced::new(client))
        } else {
            client
        })
    }
}

/// Stored credentials from the default auth files; a file that cannot be
/// read or parsed is skipped with a warning, so commands that work
/// anonymously still do.
fn stored_credentials() -> AuthOptions {
    let files = credentials::default_files();
    let mut usable = Vec::new();
    for path in files {
        match credentials::ConfigFile::load(&path) {
            Ok(_) => usable.push(path),
            Err(e) => eprintln!(
                "ocidist: warning: ignoring credentials in {}: {}",
                path.display(),
                e.message()
                    .strip_prefix(&format!("{}: ", path.display()))
                    .unwrap_or(e.message())
            ),
        }
    }
    AuthOptions::ConfigFiles(usable)
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
