//! [`TokenService`]: the built-in token endpoint of distribution's token
//! spec. `GET /token?service=S&scope=repository:NAME:pull,push` (Basic
//! credentials, or none for anonymous; `offline_token=true` adds a refresh
//! token) and the OAuth2 form `POST /token` (`grant_type=password` or
//! `refresh_token`) both answer
//! `{"token","access_token","expires_in","issued_at","refresh_token"}`.
//! A token grants what was asked for *and* the policy allows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use oci_core::{Error, ErrorCode};
use serde::Serialize;

use crate::gate::{Credentials, Denial, parse_authorization};
use crate::htpasswd::Htpasswd;
use crate::jwt::{Audience, Claims, SigningKey, Validation};
use crate::policy::Policy;
use crate::scope::{Identity, Resource, Scope};

/// How tokens are issued.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// The `iss` of our tokens.
    pub issuer: String,
    /// The service name (`aud`), as clients send it in `service=`.
    pub service: String,
    /// How long an access token lives.
    pub lifetime: Duration,
    /// How long a refresh token lives.
    pub refresh_lifetime: Duration,
    /// Allowed clock skew when checking our tokens' times, in seconds.
    pub leeway: u64,
}

impl TokenConfig {
    /// Tokens for `service` with the usual lifetimes: five minutes for
    /// access tokens, a week for refresh tokens.
    pub fn new(service: &str) -> TokenConfig {
        TokenConfig {
            issuer: "ocidist".to_owned(),
            service: service.to_owned(),
            lifetime: Duration::from_secs(300),
            refresh_lifetime: Duration::from_secs(7 * 24 * 3600),
            leeway: crate::jwt::LEEWAY,
        }
    }
}

/// The built-in token endpoint.
///
/// ```
/// use oci_auth::{Policy, TokenConfig, TokenService, jwt::SigningKey};
/// let (key, _der) = SigningKey::generate().unwrap();
/// let tokens = TokenService::new(
///     TokenConfig::new("registry.example"),
///     key,
///     None,
///     Policy::deny_all().with_anonymous_read(),
/// );
/// let answer = tokens
///     .handle(&http::Method::GET, Some("scope=repository:a/b:pull,push"), &http::HeaderMap::new(), b"")
///     .unwrap();
/// let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
/// assert!(json["token"].is_string());
/// ```
pub struct TokenService {
    config: TokenConfig,
    key: SigningKey,
    users: Option<Arc<Htpasswd>>,
    policy: Arc<Policy>,
}

/// The JSON answer.
#[derive(Serialize)]
struct Answer<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

impl TokenService {
    /// A token service signing with `key`, checking passwords against
    /// `users` (none: anonymous tokens only) and granting per `policy`.
    pub fn new(
        config: TokenConfig,
        key: SigningKey,
        users: Option<Arc<Htpasswd>>,
        policy: Policy,
    ) -> TokenService {
        TokenService {
            config,
            key,
            users,
            policy: Arc::new(policy),
        }
    }

    /// The policy tokens are granted by.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// How our tokens are checked.
    pub(crate) fn validation(&self) -> Validation {
        Validation {
            issuer: self.config.issuer.clone(),
            audience: self.config.service.clone(),
            keys: vec![self.key.verify_key()],
            leeway: self.config.leeway,
        }
    }

    /// Answers one token request: `query` is the raw query string, `body`
    /// the form body of a POST. The answer is the JSON to send with 200.
    pub fn handle(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, Denial> {
        if *method == Method::GET {
            let params = form(query.unwrap_or_default())?;
            self.check_service(&params)?;
            let scope = Scope::parse(values(&params, "scope")).map_err(bad_request)?;
            let identity = match parse_authorization(headers).map_err(|r| self.unauthorized(r))? {
                None => Identity::Anonymous,
                Some(Credentials::Basic { user, password }) => self.login(user, &password)?,
                Some(Credentials::Bearer(_)) => {
                    return Err(self.unauthorized("the token endpoint takes basic credentials"));
                }
            };
            let offline = values(&params, "offline_token").any(|v| v == "true");
            self.issue(&identity, &scope, offline, None)
        } else if *method == Method::POST {
            let text =
                std::str::from_utf8(body).map_err(|_| bad_request("the form is not UTF-8"))?;
            let params = form(text)?;
            self.check_service(&params)?;
            let scope = Scope::parse(values(&params, "scope")).map_err(bad_request)?;
            match first(&params, "grant_type") {
                Some("password") => {
                    let user = first(&params, "username").unwrap_or_default().to_owned();
                    let password = first(&params, "password").unwrap_or_default();
                    let identity = self.login(user, password)?;
                    let offline = first(&params, "access_type") == Some("offline");
                    self.issue(&identity, &scope, offline, None)
                }
                Some("refresh_token") => {
                    let refresh = first(&params, "refresh_token").unwrap_or_default();
                    let claims = self
                        .validation()
                        .verify(refresh, crate::jwt::now(), true)
                        .map_err(|e| {
                            tracing::debug!(reason = %e, "refresh token refused");
                            self.unauthorized("the refresh token is not valid")
                        })?;
                    let known = self.users.as_ref().is_some_and(|u| u.contains(&claims.sub));
                    if !known {
                        return Err(self.unauthorized("the refresh token's user is not known"));
                    }
                    self.issue(&Identity::User(claims.sub), &scope, false, Some(refresh))
                }
                _ => Err(bad_request("grant_type must be password or refresh_token")),
            }
        } else {
            Err(Denial::new(
                Error::unsupported(&format!("{method} on the token endpoint")).with_status(405),
                None,
            ))
        }
    }

    /// Signs an access token for what `identity` asked and may have, plus a
    /// refresh token when `offline` (or the one given back again).
    fn issue(
        &self,
        identity: &Identity,
        requested: &Scope,
        offline: bool,
        refresh: Option<&str>,
    ) -> Result<Vec<u8>, Denial> {
        let granted = self.grant(identity, requested);
        tracing::debug!(%identity, asked = %requested, %granted, "issuing a token");
        let now = crate::jwt::now();
        let claims = |lifetime: Duration, access, token_use| Claims {
            iss: self.config.issuer.clone(),
            sub: identity.user().unwrap_or_default().to_owned(),
            aud: Audience::One(self.config.service.clone()),
            exp: now.saturating_add(lifetime.as_secs()),
            nbf: Some(now),
            iat: Some(now),
            jti: Some(crate::jwt::random_id()),
            access,
            token_use,
        };
        let sign = |c: &Claims| {
            self.key
                .sign(c)
                .map_err(|e| Denial::new(Error::internal(e.to_string()), None))
        };
        let token = sign(&claims(
            self.config.lifetime,
            Claims::access_for(&granted),
            None,
        ))?;
        let new_refresh = match identity {
            Identity::User(_) if offline && refresh.is_none() => Some(sign(&claims(
                self.config.refresh_lifetime,
                Vec::new(),
                Some("refresh".to_owned()),
            ))?),
            _ => None,
        };
        let answer = Answer {
            token: &token,
            access_token: &token,
            expires_in: self.config.lifetime.as_secs(),
            issued_at: rfc3339(now),
            refresh_token: new_refresh.as_deref().or(refresh),
        };
        serde_json::to_vec(&answer).map_err(|e| Denial::new(Error::internal(e.to_string()), None))
    }

    /// What of `requested` the policy lets `identity` have.
    fn grant(&self, identity: &Identity, requested: &Scope) -> Scope {
        let mut granted = Scope::none();
        for item in &requested.items {
            match &item.resource {
                Resource::Repository(repo) => {
                    let actions = item.actions.intersect(self.policy.allowed(identity, repo));
                    if !actions.is_empty() {
                        granted.add(repo.clone(), actions);
                    }
                }
                Resource::Catalog => {
                    if self.policy.may_list_catalog(identity) {
                        granted.items.push(item.clone());
                    }
                }
            }
        }
        granted
    }

    fn login(&self, user: String, password: &str) -> Result<Identity, Denial> {
        let ok = self
            .users
            .as_ref()
            .is_some_and(|u| u.verify(&user, password));
        if !ok {
            tracing::debug!(user, "token request with wrong credentials");
            return Err(self.unauthorized("invalid username or password"));
        }
        Ok(Identity::User(user))
    }

    fn check_service(&self, params: &[(String, String)]) -> Result<(), Denial> {
        match first(params, "service") {
            Some(s) if s != self.config.service => Err(bad_request("unknown service")),
            _ => Ok(()),
        }
    }

    fn unauthorized(&self, message: &str) -> Denial {
        Denial::new(
            Error::new(ErrorCode::Unauthorized, message),
            Some(format!(
                "Basic realm=\"{}\"",
                self.config.service.replace('"', "")
            )),
        )
    }
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn bad_request(message: impl fmt::Display) -> Denial {
    Denial::new(
        Error::new(ErrorCode::Unauthorized, message.to_string()).with_status(400),
        None,
    )
}

/// Decodes a query or form body (`+` is a space in forms).
fn form(text: &str) -> Result<Vec<(String, String)>, Denial> {
    oci_core::wire::parse_query(&text.replace('+', "%20"))
        .map_err(|_| bad_request("malformed form encoding"))
}

fn values<'a>(params: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    params
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn first<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
