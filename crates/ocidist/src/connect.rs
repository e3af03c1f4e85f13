//! Turns connection options ([`ConnectOptions`]; the command line's flags
//! become them) into a connected [`Registry`] per host.

use std::path::PathBuf;
use std::sync::Arc;

use oci_client::auth::credentials;
use oci_client::{AuthOptions, Client, ClientOptions, ProxyOptions, Scheme};
use oci_core::{Error, ErrorCode, Registry, Result};

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

/// How to reach and authenticate to registries: the library form of the
/// command line's connection flags (files are named by path and read when
/// a [`Connector`] is made).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The scheme (default https; http for loopback hosts).
    pub scheme: Option<Scheme>,
    /// Where credentials come from (default: docker/podman config files).
    pub auth: AuthOptions,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Extra CA certificates (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Mirror namespace (`?ns=`).
    pub namespace: Option<String>,
    /// Proxy URL for every request (default: the environment's).
    pub proxy: Option<String>,
}

impl Connector {
    /// A connector with `options` (reads the CA and certificate files).
    pub fn from_options(o: &ConnectOptions) -> Result<Connector> {
        let mut options = ClientOptions {
            scheme: o.scheme,
            auth: o.auth.clone(),
            namespace: o.namespace.clone(),
            ..ClientOptions::default()
        };
        options.tls.insecure = o.insecure;
        if let Some(path) = &o.ca_file {
            options.tls.ca_pem = Some(read_file(path, "CA bundle")?);
        }
        if let Some((cert, key)) = &o.client_cert {
            options.tls.client_cert_pem = Some(read_file(cert, "client certificate")?);
            options.tls.client_key_pem = Some(read_file(key, "client key")?);
        }
        if let Some(url) = &o.proxy {
            options.proxy = ProxyOptions::Url {
                url: url.clone(),
                no_proxy: std::env::var("NO_PROXY")
                    .or_else(|_| std::env::var("no_proxy"))
                    .ok(),
            };
        }
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

    /// Retries requests by `retry` instead of the client's default policy.
    pub fn retry(mut self, retry: oci_client::RetryConfig) -> Connector {
        self.options.retry = retry;
        self
    }

    /// Whether whole-blob reads are verified by the client (on unless
    /// the caller verifies them itself: `ClientOptions::verify_blob_reads`).
    pub fn verify_blob_reads(mut self, verify: bool) -> Connector {
        self.options.verify_blob_reads = verify;
        self
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
        Ok(self.trace(client))
    }

    /// `registry` (a client, or a store opened directly) wrapped in
    /// `oci_debug::Traced` when every call is to be logged (`-v`).
    pub fn trace(&self, registry: Arc<dyn Registry>) -> Arc<dyn Registry> {
        if self.traced {
            Arc::new(oci_debug::Traced::new(registry))
        } else {
            registry
        }
    }
}

/// Stored credentials from the default auth files, and a warning for
/// each file that cannot be read or parsed: it is skipped, so what works
/// anonymously still does.
pub fn stored_credentials() -> (AuthOptions, Vec<String>) {
    let mut usable = Vec::new();
    let mut warnings = Vec::new();
    for path in credentials::default_files() {
        match credentials::ConfigFile::load(&path) {
            Ok(_) => usable.push(path),
            Err(e) => warnings.push(format!(
                "ignoring credentials in {}: {}",
                path.display(),
                e.message()
                    .strip_prefix(&format!("{}: ", path.display()))
                    .unwrap_or(e.message())
            )),
        }
    }
    (AuthOptions::ConfigFiles(usable), warnings)
}
