//! Authentication: which credentials to present, answering the registry's
//! challenges (basic, or bearer tokens from a token endpoint), and caching
//! what was learnt so later requests authenticate up front.

pub mod challenge;
pub mod credentials;
pub mod token;

use std::sync::Mutex;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Uri};
use oci_core::{Error, ErrorCode, Result};
use tokio::sync::OnceCell;

use crate::options::AuthOptions;
use oci_core::retry::{Retrier, RetryConfig};

use crate::error::ClientError;
use crate::retry;
use crate::transport::{Payload, Response, Transport, redact};
use challenge::{Challenge, parse_challenges};
use credentials::Credentials;
use token::{Scope, TokenAnswer, TokenCache};

/// The largest token endpoint answer read.
const MAX_TOKEN_ANSWER: usize = 1024 * 1024;

/// Authentication state for one registry host.
pub(crate) struct Authenticator {
    host: String,
    options: AuthOptions,
    credentials: OnceCell<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: TokenCache,
    refresh_token: Mutex<Option<String>>,
    transport: Transport,
    user_agent: HeaderValue,
    retry: RetryConfig,
}

impl Authenticator {
    /// Auth for `host` with credentials from `options`.
    pub(crate) fn new(
        host: &str,
        options: AuthOptions,
        transport: Transport,
        user_agent: HeaderValue,
        retry: RetryConfig,
    ) -> Authenticator {
        Authenticator {
            host: host.to_owned(),
            options,
            credentials: OnceCell::new(),
            challenge: Mutex::new(None),
            tokens: TokenCache::default(),
            refresh_token: Mutex::new(None),
            transport,
            user_agent,
            retry,
        }
    }

    /// The credentials, resolved once (config files and helpers are read
    /// off the async threads).
    async fn credentials(&self) -> Result<Credentials> {
        self.credentials
            .get_or_try_init(|| async {
                Ok(match &self.options {
                    AuthOptions::Anonymous => Credentials::Anonymous,
                    AuthOptions::Basic { username, password } => Credentials::Basic {
                        username: username.clone(),
                        password: password.clone(),
                    },
                    AuthOptions::IdentityToken(t) => Credentials::IdentityToken(t.clone()),
                    AuthOptions::BearerToken(t) => Credentials::BearerToken(t.clone()),
                    AuthOptions::FromConfig | AuthOptions::ConfigFiles(_) => {
                        let host = self.host.clone();
                        let files = match &self.options {
                            AuthOptions::ConfigFiles(files) => files.clone(),
                            _ => credentials::default_files(),
                        };
                        tokio::task::spawn_blocking(move || {
                            credentials::lookup_files(&files, &host)
                        })
                        .await
                        .map_err(|e| ClientError::Closed(format!("credential lookup: {e}")))??
                    }
                })
            })
            .await
            .cloned()
    }

    /// Whether there are credentials to present (not anonymous).
    pub(crate) async fn has_credentials(&self) -> bool {
        !matches!(
            self.credentials().await,
            Ok(Credentials::Anonymous) | Err(_)
        )
    }

    /// The `Authorization` to send up front for `scope`, from what earlier
    /// challenges taught; `None` before the registry asked for anything.
    pub(crate) async fn header_for(&self, scope: &Scope) -> Result<Option<HeaderValue>> {
        let creds = self.credentials().await?;
        if let Credentials::BearerToken(t) = &creds {
            return Ok(Some(bearer(t)?));
        }
        let challenge = self.lock_challenge().clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => basic(&creds),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(t) = self.tokens.get(scope) {
                    return Ok(Some(bearer(&t)?));
                }
                let (t, lifetime) = self
                    .fetch(&realm, service.as_deref(), scope, &creds)
                    .await?;
                self.tokens.put(scope, t.clone(), lifetime);
                Ok(Some(bearer(&t)?))
            }
        }
    }

    /// Learns from a 401 and returns fresh credentials to try again with,
    /// or `None` when there is nothing new to offer.
    pub(crate) async fn on_unauthorized(
        &self,
        headers: &HeaderMap,
        scope: &Scope,
    ) -> Result<Option<HeaderValue>> {
        let values = headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let challenges = parse_challenges(values);
        let chosen = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        let Some(chosen) = chosen else {
            tracing::debug!(host = %self.host, "401 without a usable challenge");
            return Ok(None);
        };
        *self.lock_challenge() = Some(chosen.clone());
        let creds = self.credentials().await?;
        match chosen {
            Challenge::Basic => basic(&creds),
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                self.tokens.remove(scope);
                let wanted = scope.with(asked.as_deref());
                let (t, lifetime) = self
                    .fetch(&realm, service.as_deref(), &wanted, &creds)
                    .await?;
                self.tokens.put(scope, t.clone(), lifetime);
                Ok(Some(bearer(&t)?))
            }
        }
    }

    fn lock_challenge(&self) -> std::sync::MutexGuard<'_, Option<Challenge>> {
        self.challenge.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gets a token for `scope` from the token endpoint, with its lifetime.
    async fn fetch(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        creds: &Credentials,
    ) -> Result<(String, std::time::Duration)> {
        let refresh = self
            .refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let refresh = refresh.or(match creds {
            Credentials::IdentityToken(t) => Some(t.clone()),
            _ => None,
        });
        let res = match &refresh {
            Some(rt) => {
                let form = token::refresh_form(service, scope, rt, "ocidist");
                let res = self
                    .token_request(Method::POST, realm, None, Some(form), creds)
                    .await?;
                if matches!(res.status.as_u16(), 404 | 405) {
                    tracing::debug!(realm, "token endpoint has no OAuth2 POST; using GET");
                    let q = token::get_query(service, scope);
                    self.token_request(Method::GET, realm, Some(q), None, creds)
                        .await?
                } else {
                    res
                }
            }
            None => {
                let q = token::get_query(service, scope);
                self.token_request(Method::GET, realm, Some(q), None, creds)
                    .await?
            }
        };
        if !res.status.is_success() {
            let status = res.status;
            let err = res.into_error(ErrorCode::Unauthorized).await;
            let code = if status.as_u16() == 403 {
                ErrorCode::Denied
            } else {
                ErrorCode::Unauthorized
            };
            return Err(Error::new(
                code,
                format!("token endpoint {realm} refused: {err}"),
            ));
        }
        let answer = TokenAnswer::parse(&res.bytes_limited(MAX_TOKEN_ANSWER).await?)?;
        if let Some(rt) = &answer.refresh_token {
            *self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(rt.clone());
        }
        Ok((answer.token().to_owned(), answer.lifetime()))
    }

    async fn token_request(
        &self,
        method: Method,
        realm: &str,
        query: Option<String>,
        form: Option<String>,
        creds: &Credentials,
    ) -> Result<Response> {
        let url = match query.filter(|q| !q.is_empty()) {
            Some(q) if realm.contains('?') => format!("{realm}&{q}"),
            Some(q) => format!("{realm}?{q}"),
            None => realm.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|e| {
            Error::new(
                ErrorCode::Unauthorized,
                format!("invalid token realm {realm:?}: {e}"),
            )
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(http::header::USER_AGENT, self.user_agent.clone());
        if form.is_none()
            && let Some(h) = basic(creds)?
        {
            headers.insert(http::header::AUTHORIZATION, h);
        }
        let body = match form {
            Some(f) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Payload::Bytes(f.into())
            }
            None => Payload::Empty,
        };
        let mut retrier = Retrier::new(&self.retry);
        loop {
            tracing::debug!(method = %method, url = %redact(&uri), "requesting a token");
            let payload = body.replay().unwrap_or(Payload::Empty);
            match self
                .transport
                .send(method.clone(), uri.clone(), headers.clone(), payload)
                .await
            {
                Ok(res) => {
                    let busy = retry::is_retryable_status(res.status());
                    if busy
                        && let Some(delay) = retrier.next_delay(retry::retry_after(res.headers()))
                    {
                        tracing::warn!(status = %res.status(), ?delay, "token endpoint busy; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Ok(Response::new(res, uri, None).with_retried(busy));
                }
                Err(e) => match retrier.delay_after(&e.error, None) {
                    Some(delay) => {
                        tracing::warn!(error = %e.error, ?delay, "token request failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(retrier.give_up(e.error)),
                },
            }
        }
    }
}

fn bearer(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::new(ErrorCode::Unauthorized, "token is not a valid header value"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The basic `Authorization` for username/password credentials.
fn basic(creds: &Credentials) -> Result<Option<HeaderValue>> {
    let Credentials::Basic { username, password } = creds else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {raw}")).map_err(|_| {
        Error::new(
            ErrorCode::Unauthorized,
            "credentials are not a valid header",
        )
    })?;
    v.set_sensitive(true);
    Ok(Some(v))
}
