//! Bearer tokens: the scopes an operation needs, the token endpoint's
//! request and answer, and a cache of tokens per scope until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_core::wire::encode_query_value;
use oci_core::{Error, ErrorCode, RepoName, Result};
use serde::Deserialize;

/// The access an operation needs, as token-endpoint scope strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No particular access (e.g. `/v2/`).
    pub fn none() -> Scope {
        Scope(Vec::new())
    }

    /// Reading a repository.
    pub fn pull(repo: &RepoName) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }

    /// Writing a repository (pushing needs pull as well).
    pub fn push(repo: &RepoName) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }

    /// Deleting from a repository.
    pub fn delete(repo: &RepoName) -> Scope {
        Scope(vec![format!("repository:{repo}:delete")])
    }

    /// Mounting a blob from `from` into `repo`.
    pub fn mount(repo: &RepoName, from: &RepoName) -> Scope {
        Scope(vec![
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ])
    }

    /// Listing the registry's repositories.
    pub fn catalog() -> Scope {
        Scope(vec!["registry:catalog:*".to_owned()])
    }

    /// This scope plus `extra` (a scope the server asked for), deduplicated.
    pub fn with(&self, extra: Option<&str>) -> Scope {
        let mut out = self.0.clone();
        if let Some(extra) = extra {
            for s in extra.split(' ').filter(|s| !s.is_empty()) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
        }
        Scope(out)
    }

    /// The scope strings.
    pub fn items(&self) -> &[String] {
        &self.0
    }

    /// The cache key.
    fn key(&self) -> String {
        let mut items = self.0.clone();
        items.sort();
        items.join(" ")
    }
}

/// The token endpoint's JSON answer.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    /// The token (docker's name).
    #[serde(default)]
    token: Option<String>,
    /// The token (OAuth2's name).
    #[serde(default)]
    access_token: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    expires_in: Option<u64>,
    /// A new refresh token, if the server rotated it.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// The shortest lifetime a token is assumed to have, as the spec says.
const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// Tokens are reused for at most this long, whatever `expires_in` says
/// (an absurd value would otherwise overflow the clock).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

impl TokenAnswer {
    /// Parses an answer; it must carry a token.
    pub fn parse(body: &[u8]) -> Result<TokenAnswer> {
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorCode::Unauthorized,
                format!("token endpoint answered invalid JSON: {e}"),
            )
        })?;
        if answer.token().is_empty() {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                "token endpoint answered without a token",
            ));
        }
        Ok(answer)
    }

    /// The token.
    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref())
            .unwrap_or("")
    }

    /// How long the token may be used (at least a minute, at most a day,
    /// less a margin).
    pub fn lifetime(&self) -> Duration {
        let secs =
            Duration::from_secs(self.expires_in.unwrap_or(60)).clamp(MIN_LIFETIME, MAX_LIFETIME);
        secs.saturating_sub(Duration::from_secs(10))
    }
}

/// The query of a GET token request (`service`, then one `scope` each).
pub fn get_query(service: Option<&str>, scope: &Scope) -> String {
    let mut parts = Vec::new();
    if let Some(s) = service {
        parts.push(format!("service={}", encode_query_value(s)));
    }
    for s in scope.items() {
        parts.push(format!("scope={}", encode_query_value(s)));
    }
    parts.join("&")
}

/// The form body of an OAuth2 refresh-token request.
pub fn refresh_form(
    service: Option<&str>,
    scope: &Scope,
    refresh_token: &str,
    client_id: &str,
) -> String {
    let mut parts = vec![
        "grant_type=refresh_token".to_owned(),
        format!("refresh_token={}", encode_query_value(refresh_token)),
        format!("client_id={}", encode_query_value(client_id)),
    ];
    if let Some(s) = service {
        parts.push(format!("service={}", encode_query_value(s)));
    }
    let joined = scope.items().join(" ");
    if !joined.is_empty() {
        parts.push(format!("scope={}", encode_query_value(&joined)));
    }
    parts.join("&")
}

/// Tokens by scope, each until it expires.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl TokenCache {
    /// A live token for `scope`, if one is cached.
    pub fn get(&self, scope: &Scope) -> Option<String> {
        let map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&scope.key())
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    /// Caches `token` for `scope` for `lifetime`.
    pub fn put(&self, scope: &Scope, token: String, lifetime: Duration) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, until)| now < *until);
        let until = now.checked_add(lifetime.min(MAX_LIFETIME)).unwrap_or(now);
        map.insert(scope.key(), (token, until));
    }

    /// Forgets the token for `scope` (the server rejected it).
    pub fn remove(&self, scope: &Scope) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&scope.key());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn scopes_for_operations() {
        assert_eq!(Scope::pull(&repo("a/b")).items(), ["repository:a/b:pull"]);
        assert_eq!(
            Scope::mount(&repo("t"), &repo("f")).items(),
            ["repository:t:pull,push", "repository:f:pull"]
        );
        let s = Scope::pull(&repo("a")).with(Some("repository:a:pull registry:catalog:*"));
        assert_eq!(s.items(), ["repository:a:pull", "registry:catalog:*"]);
        assert_eq!(
            get_query(Some("reg svc"), &Scope::mount(&repo("t"), &repo("f"))),
            "service=reg%20svc&scope=repository%3At%3Apull%2Cpush&scope=repository%3Af%3Apull"
        );
        let form = refresh_form(None, &Scope::pull(&repo("a")), "r t", "ocidist");
        assert_eq!(
            form,
            "grant_type=refresh_token&refresh_token=r%20t&client_id=ocidist&scope=repository%3Aa%3Apull"
        );
    }

    #[test]
    fn answers() {
        let a = TokenAnswer::parse(br#"{"token":"t1","expires_in":300}"#).unwrap();
        assert_eq!(a.token(), "t1");
        assert_eq!(a.lifetime(), Duration::from_secs(290));
        let a = TokenAnswer::parse(br#"{"access_token":"t2","expires_in":5}"#).unwrap();
        assert_eq!(a.token(), "t2");
        assert_eq!(a.lifetime(), Duration::from_secs(50));
        let e = TokenAnswer::parse(br#"{"expires_in":5}"#).unwrap_err();
        assert!(e.is(ErrorCode::Unauthorized));
        assert!(TokenAnswer::parse(b"<html>").is_err());
    }

    #[test]
    fn cache_by_scope_until_expiry() {
        let c = TokenCache::default();
        let a = Scope::pull(&repo("a"));
        let b = Scope::push(&repo("a"));
        c.put(&a, "ta".into(), Duration::from_secs(60));
        c.put(&b, "tb".into(), Duration::ZERO);
        assert_eq!(c.get(&a).as_deref(), Some("ta"));
        assert_eq!(c.get(&b), None);
        c.remove(&a);
        assert_eq!(c.get(&a), None);
    }
}
