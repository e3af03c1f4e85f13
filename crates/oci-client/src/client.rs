//! The [`Client`]: one registry host, its URLs, and [`Client::execute`],
//! which runs a [`Call`] through its steps: authorize
//! ([`crate::authorize`]), send with retries ([`crate::send`]), follow
//! redirects ([`crate::redirect`]).

use std::sync::Arc;

use http::{HeaderValue, Method, Uri};
use oci_core::retry::RetryConfig;
use oci_core::wire::encode_query_value;
use oci_core::{Error, ErrorCode, Result};
use tokio::sync::Semaphore;

use crate::auth::Authenticator;
use crate::auth::token::Scope;
use crate::authorize::Authorization;
pub(crate) use crate::call::Call;
use crate::connector::Connector;
use crate::error::ClientError;
use crate::options::{ClientOptions, Scheme};
use crate::redirect::Redirects;
use crate::send::Attempts;
use crate::state::ClientState;
use crate::transport::{Response, Transport, redact};

/// A registry reached over HTTP(S); implements [`oci_core::Registry`].
///
/// Cheap to clone: clones share connections, tokens and the concurrency
/// limit.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    host: String,
    scheme: Scheme,
    namespace: Option<String>,
    pub(crate) transport: Transport,
    pub(crate) auth: Authenticator,
    pub(crate) slots: Arc<Semaphore>,
    retry: RetryConfig,
    pub(crate) user_agent: HeaderValue,
    read_timeout: Option<std::time::Duration>,
    /// Whether whole-blob reads are hashed and checked.
    pub(crate) verify_blob_reads: bool,
    /// What the operations remember across calls (upload offsets,
    /// fallback locks).
    pub(crate) state: ClientState,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.host)
            .field("scheme", &self.inner.scheme)
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `registry_host` (`host[:port]`; any Docker Hub alias
    /// means its API host).
    ///
    /// ```
    /// use oci_client::{Client, ClientOptions};
    /// let client = Client::new("localhost:5000", ClientOptions::default()).unwrap();
    /// assert_eq!(client.base_url(), "http://localhost:5000");
    /// ```
    pub fn new(registry_host: &str, options: ClientOptions) -> Result<Client> {
        let host = registry_host.trim().trim_end_matches('/').to_owned();
        if host.is_empty() || host.contains('/') || host.contains("://") {
            return Err(Error::new(
                ErrorCode::NameInvalid,
                format!("registry host {registry_host:?} is not host[:port]"),
            ));
        }
        // Docker Hub answers its API on one host whatever name it goes by.
        let host = if oci_core::reference::is_docker_hub(&host) {
            oci_core::reference::DOCKER_HUB_API.to_owned()
        } else {
            host
        };
        let scheme = options.scheme_for(&host);
        // The host must make a valid URL authority.
        format!("{}://{host}/v2/", scheme.as_str())
            .parse::<Uri>()
            .map_err(|e| {
                Error::new(
                    ErrorCode::NameInvalid,
                    format!("registry host {registry_host:?} is not host[:port]: {e}"),
                )
            })?;
        let tls = Arc::new(crate::tls::TlsSetup::new(&options.tls)?);
        let connector = Connector::new(tls, &options.proxy, options.connect_timeout);
        let transport = Transport::new(connector, options.request_timeout);
        let user_agent = HeaderValue::from_str(&options.user_agent).map_err(|_| {
            ClientError::Config("the user agent is not a valid header value".into())
        })?;
        let auth = Authenticator::new(
            &host,
            options.auth.clone(),
            transport.clone(),
            user_agent.clone(),
            options.retry.clone(),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                host,
                scheme,
                namespace: options.namespace.clone().filter(|n| !n.is_empty()),
                transport,
                auth,
                slots: Arc::new(Semaphore::new(options.max_concurrency.max(1))),
                retry: options.retry.clone(),
                user_agent,
                read_timeout: options.read_timeout,
                verify_blob_reads: options.verify_blob_reads,
                state: ClientState::default(),
            }),
        })
    }

    /// The retry policy.
    pub(crate) fn retry_config(&self) -> &RetryConfig {
        &self.inner.retry
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// `scheme://host`, the root every request path hangs off.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.inner.scheme.as_str(), self.inner.host)
    }

    /// Checks that the registry speaks the distribution API (`GET /v2/`),
    /// authenticating if it asks to.
    pub async fn ping(&self) -> Result<()> {
        let url = self.url("/v2/", &[])?;
        let res = self
            .execute(Call::new(Method::GET, url, Scope::none()))
            .await?;
        if res.status.is_success() {
            Ok(())
        } else {
            Err(res.into_error(ErrorCode::NameUnknown).await)
        }
    }

    /// The absolute URL of `path` with the query pairs (values encoded).
    pub(crate) fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Uri> {
        let mut url = format!("{}{path}", self.base_url());
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_query_value(v));
        }
        parse_uri(&url)
    }

    /// Resolves a `Location` (or `Link`) against the URL that sent it.
    pub(crate) fn resolve(&self, base: &Uri, location: &str) -> Result<Uri> {
        let loc = location.trim();
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return parse_uri(loc);
        }
        let scheme = base.scheme_str().unwrap_or(self.inner.scheme.as_str());
        if let Some(rest) = loc.strip_prefix("//") {
            return parse_uri(&format!("{scheme}://{rest}"));
        }
        let authority = base
            .authority()
            .map(|a| a.as_str())
            .unwrap_or(&self.inner.host);
        if loc.starts_with('/') {
            return parse_uri(&format!("{scheme}://{authority}{loc}"));
        }
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        parse_uri(&format!("{scheme}://{authority}{dir}/{loc}"))
    }

    /// Whether `url` points at this client's registry (credentials may go there).
    pub(crate) fn is_own(&self, url: &Uri) -> bool {
        url.authority()
            .is_some_and(|a| a.as_str().eq_ignore_ascii_case(&self.inner.host))
            && url.scheme_str() == Some(self.inner.scheme.as_str())
    }

    /// Adds the mirror namespace to a URL of this registry.
    pub(crate) fn with_namespace(&self, url: Uri) -> Result<Uri> {
        let Some(ns) = &self.inner.namespace else {
            return Ok(url);
        };
        if !self.is_own(&url) {
            return Ok(url);
        }
        let query = url.query().unwrap_or("");
        if query.split('&').any(|p| p.starts_with("ns=")) {
            return Ok(url);
        }
        let pq = match url.query() {
            Some(q) if !q.is_empty() => format!("{}?{q}&ns={}", url.path(), encode_query_value(ns)),
            _ => format!("{}?ns={}", url.path(), encode_query_value(ns)),
        };
        let mut parts = url.into_parts();
        parts.path_and_query = Some(
            pq.parse()
                .map_err(|e| ClientError::url(format!("invalid URL with namespace: {e}"), e))?,
        );
        Ok(Uri::from_parts(parts).map_err(|e| ClientError::url(format!("invalid URL: {e}"), e))?)
    }

    /// Makes a request: authorizes each attempt, sends it with retries of
    /// transient failures (when the body can be sent again), follows
    /// redirects when asked. Any status is returned; a 401 after fresh
    /// credentials becomes `UNAUTHORIZED` or `DENIED`.
    pub(crate) async fn execute(&self, call: Call) -> Result<Response> {
        let mut url = self.with_namespace(call.url)?;
        let mut authorization = Authorization::new(call.scope);
        let mut attempts = Attempts::new(&self.inner.retry, call.body, call.idempotent);
        let mut redirects = Redirects::new(call.follow_redirects);
        loop {
            let headers = authorization.headers(self, &call.headers, &url).await?;
            let sent = self.send_attempt(&call.method, &url, headers, &mut attempts);
            let Some((mut res, permit)) = sent.await? else {
                continue;
            };
            if Authorization::is_challenge(self, &res, &url) && attempts.can_repeat() {
                match authorization.after_challenge(self, res, &url).await? {
                    Some(unanswered) => res = unanswered,
                    None => continue,
                }
            }
            if let Some(delay) = attempts.after_status(res.status(), res.headers()) {
                let (status, url) = (res.status(), redact(&url));
                tracing::warn!(%status, ?delay, %url, "transient failure; retrying");
                drop((res, permit));
                tokio::time::sleep(delay).await;
                continue;
            }
            if let Some(next) = redirects.next(self, &url, res.status(), res.headers())? {
                url = next;
                attempts.redirected();
                continue;
            }
            return Ok(Response::new(res, url, Some(permit))
                .with_read_timeout(self.inner.read_timeout)
                .with_retried(attempts.spent()));
        }
    }
}

fn parse_uri(s: &str) -> Result<Uri> {
    Ok(s.parse::<Uri>()
        .map_err(|e| ClientError::url(format!("invalid URL {s:?}: {e}"), e))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ns: Option<&str>) -> Client {
        let mut o = ClientOptions::default().anonymous();
        o.namespace = ns.map(Into::into);
        Client::new("127.0.0.1:5000", o).unwrap()
    }

    #[test]
    fn urls_and_locations() {
        let c = client(None);
        let base = c.url("/v2/a/blobs/uploads/", &[]).unwrap();
        assert_eq!(
            base.to_string(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/"
        );
        assert_eq!(
            c.url("/v2/a/tags/list", &[("last", "a/b"), ("n", "2")])
                .unwrap()
                .to_string(),
            "http://127.0.0.1:5000/v2/a/tags/list?last=a%2Fb&n=2"
        );
        let r = |l: &str| c.resolve(&base, l).unwrap().to_string();
        assert_eq!(
            r("/v2/a/blobs/uploads/u1?s=1"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?s=1"
        );
        assert_eq!(r("u2"), "http://127.0.0.1:5000/v2/a/blobs/uploads/u2");
        assert_eq!(
            r("https://cdn.example/x?sig=1"),
            "https://cdn.example/x?sig=1"
        );
        assert_eq!(r("//cdn.example/x"), "http://cdn.example/x");
        assert!(c.is_own(&base));
        assert!(!c.is_own(&"http://cdn.example/x".parse().unwrap()));
        assert!(!c.is_own(&"https://127.0.0.1:5000/x".parse().unwrap()));
    }

    #[test]
    fn namespace_is_added_once_and_only_for_the_registry() {
        let c = client(Some("docker.io"));
        let add = |u: &str| c.with_namespace(u.parse().unwrap()).unwrap().to_string();
        assert_eq!(
            add("http://127.0.0.1:5000/v2/"),
            "http://127.0.0.1:5000/v2/?ns=docker.io"
        );
        assert_eq!(
            add("http://127.0.0.1:5000/v2/a/tags/list?n=1"),
            "http://127.0.0.1:5000/v2/a/tags/list?n=1&ns=docker.io"
        );
        assert_eq!(
            add("http://127.0.0.1:5000/v2/x?ns=docker.io"),
            "http://127.0.0.1:5000/v2/x?ns=docker.io"
        );
        assert_eq!(add("http://cdn.example/x"), "http://cdn.example/x");
    }

    #[test]
    fn ipv6_and_explicit_schemes() {
        let c = Client::new("[::1]:5000", ClientOptions::default()).unwrap();
        assert_eq!(c.base_url(), "http://[::1]:5000");
        let c = Client::new("registry.example", ClientOptions::default()).unwrap();
        assert_eq!(c.base_url(), "https://registry.example");
        let c = Client::new("registry.example:80", ClientOptions::default().plain_http()).unwrap();
        assert_eq!(c.base_url(), "http://registry.example:80");
        let hub = Client::new("docker.io", ClientOptions::default()).unwrap();
        assert_eq!(hub.base_url(), "https://registry-1.docker.io");
    }

    #[test]
    fn bad_hosts_are_rejected() {
        for bad in ["", "http://x", "a/b", "a b"] {
            assert!(Client::new(bad, ClientOptions::default()).is_err(), "{bad}");
        }
    }
}
