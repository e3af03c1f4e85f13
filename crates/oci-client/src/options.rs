//! How a [`Client`](crate::Client) connects: scheme, TLS, proxy, auth,
//! mirror namespace, timeouts, concurrency and retries.

use std::time::Duration;

use crate::retry::RetryConfig;

/// The URL scheme used to reach the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// TLS (the default for every host but loopback).
    Https,
    /// Plain HTTP (the default for `localhost`, `127.x`, `[::1]`).
    Http,
}

impl Scheme {
    /// The scheme's name as it appears in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// TLS settings: extra trust, a client certificate, or no verification.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM, one or more), trusted besides the OS store.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1) for mutual TLS.
    pub client_key_pem: Option<Vec<u8>>,
    /// Accept any server certificate. For tests and trusted networks only.
    pub insecure: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Which HTTP proxy, if any, requests go through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxyOptions {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` from the
    /// environment (loopback hosts are never proxied).
    #[default]
    FromEnv,
    /// No proxy.
    None,
    /// This proxy URL for every request (CONNECT for https) except hosts
    /// matched by the `NO_PROXY`-style list in `no_proxy`.
    Url {
        /// `http://[user:pass@]host:port` of the proxy.
        url: String,
        /// Comma-separated hosts, domains or CIDRs to reach directly.
        no_proxy: Option<String>,
    },
}

/// Where credentials come from.
#[derive(Clone, Default)]
pub enum AuthOptions {
    /// Look the registry up in docker's `config.json` and podman's
    /// `auth.json` (credential helpers included); anonymous if absent.
    #[default]
    FromConfig,
    /// Look the registry up in these auth files only, in order (docker
    /// `config.json` or podman `auth.json` format).
    ConfigFiles(Vec<std::path::PathBuf>),
    /// No credentials.
    Anonymous,
    /// A username and password (basic auth, or the token request's basic auth).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity (refresh) token exchanged at the token endpoint.
    IdentityToken(String),
    /// A bearer token sent as is.
    BearerToken(String),
}

impl std::fmt::Debug for AuthOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthOptions::FromConfig => f.write_str("FromConfig"),
            AuthOptions::ConfigFiles(files) => write!(f, "ConfigFiles({files:?})"),
            AuthOptions::Anonymous => f.write_str("Anonymous"),
            AuthOptions::Basic { username, .. } => write!(f, "Basic({username})"),
            AuthOptions::IdentityToken(_) => f.write_str("IdentityToken(..)"),
            AuthOptions::BearerToken(_) => f.write_str("BearerToken(..)"),
        }
    }
}

/// Every setting of a [`Client`](crate::Client); `Default` is https (plain
/// http for loopback hosts), the OS trust store, proxies from the
/// environment and credentials from docker's config.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The scheme; `None` picks https, or http for loopback hosts.
    pub scheme: Option<Scheme>,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Proxy settings.
    pub proxy: ProxyOptions,
    /// Credentials.
    pub auth: AuthOptions,
    /// Mirror namespace: `?ns=<host>` is added to every request.
    pub namespace: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// How long establishing a connection (TCP, proxy, TLS) may take.
    pub connect_timeout: Duration,
    /// How long a request may wait for the response headers.
    pub request_timeout: Option<Duration>,
    /// How long reading a body may wait for more bytes (a stalled blob
    /// read then resumes with `Range`).
    pub read_timeout: Option<Duration>,
    /// Requests in flight at once (a blob stream holds its slot until read).
    pub max_concurrency: usize,
    /// Retry policy for throttled, failed and dropped requests.
    pub retry: RetryConfig,
    /// Whether whole-blob reads hash their bytes and fail unless they
    /// match the digest (default). Off only for a caller that verifies
    /// every byte itself before trusting it, such as a mirror whose cache
    /// store checks each blob as it writes it.
    pub verify_blob_reads: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            scheme: None,
            tls: TlsOptions::default(),
            proxy: ProxyOptions::default(),
            auth: AuthOptions::default(),
            namespace: None,
            user_agent: concat!("ocidist/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Some(Duration::from_secs(300)),
            read_timeout: Some(Duration::from_secs(120)),
            max_concurrency: 16,
            retry: RetryConfig::default(),
            verify_blob_reads: true,
        }
    }
}

impl ClientOptions {
    /// Default options.
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    /// Sets the scheme.
    pub fn scheme(mut self, scheme: Scheme) -> ClientOptions {
        self.scheme = Some(scheme);
        self
    }

    /// Uses plain HTTP.
    pub fn plain_http(self) -> ClientOptions {
        self.scheme(Scheme::Http)
    }

    /// Trusts the CA certificates in `pem` besides the OS store.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> ClientOptions {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Presents a client certificate (mutual TLS).
    pub fn client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> ClientOptions {
        self.tls.client_cert_pem = Some(cert_pem.into());
        self.tls.client_key_pem = Some(key_pem.into());
        self
    }

    /// Skips server certificate verification.
    pub fn insecure(mut self, insecure: bool) -> ClientOptions {
        self.tls.insecure = insecure;
        self
    }

    /// Sets the proxy settings.
    pub fn proxy(mut self, proxy: ProxyOptions) -> ClientOptions {
        self.proxy = proxy;
        self
    }

    /// Sets where credentials come from.
    pub fn auth(mut self, auth: AuthOptions) -> ClientOptions {
        self.auth = auth;
        self
    }

    /// Uses a username and password.
    pub fn basic_auth(self, username: &str, password: &str) -> ClientOptions {
        self.auth(AuthOptions::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Sends no credentials.
    pub fn anonymous(self) -> ClientOptions {
        self.auth(AuthOptions::Anonymous)
    }

    /// Adds `?ns=<namespace>` to every request (for a mirroring proxy).
    pub fn namespace(mut self, namespace: &str) -> ClientOptions {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Sets the `User-Agent`.
    pub fn user_agent(mut self, user_agent: &str) -> ClientOptions {
        self.user_agent = user_agent.to_owned();
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the response-header timeout (`None`: wait forever).
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> ClientOptions {
        self.request_timeout = timeout;
        self
    }

    /// Sets the body read stall timeout (`None`: wait forever).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> ClientOptions {
        self.read_timeout = timeout;
        self
    }

    /// Sets how many requests may be in flight at once (at least one).
    pub fn max_concurrency(mut self, n: usize) -> ClientOptions {
        self.max_concurrency = n.max(1);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryConfig) -> ClientOptions {
        self.retry = retry;
        self
    }

    /// Sets whether whole-blob reads are verified
    /// ([`ClientOptions::verify_blob_reads`]).
    pub fn verify_blob_reads(mut self, verify: bool) -> ClientOptions {
        self.verify_blob_reads = verify;
        self
    }

    /// The scheme for `host`: the explicit one, else http for loopback.
    pub fn scheme_for(&self, host: &str) -> Scheme {
        match self.scheme {
            Some(s) => s,
            None if oci_core::reference::is_loopback_host(host) => Scheme::Http,
            None => Scheme::Https,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_default_to_http() {
        let o = ClientOptions::default();
        assert_eq!(o.scheme_for("localhost:5000"), Scheme::Http);
        assert_eq!(o.scheme_for("127.0.0.1:5000"), Scheme::Http);
        assert_eq!(o.scheme_for("[::1]:5000"), Scheme::Http);
        assert_eq!(o.scheme_for("registry.example"), Scheme::Https);
        let o = o.scheme(Scheme::Https);
        assert_eq!(o.scheme_for("localhost:5000"), Scheme::Https);
        assert!(ClientOptions::default().user_agent.starts_with("ocidist/"));
    }
}
