//! [`Authenticator`]: the check a server runs on every request, before any
//! store call, and what it answers: the caller's [`Grants`] or a
//! [`Denial`].

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use oci_core::{Error, ErrorCode, RepoName};

use crate::htpasswd::Htpasswd;
use crate::jwt::{self, JwtError, Validation, VerifyKey};
use crate::policy::Policy;
use crate::scope::{Actions, Identity, Resource, Scope, ScopeItem};
use crate::token::TokenService;
use crate::verified::VerifiedTokens;

/// The longest `Authorization` header looked at.
const MAX_AUTHORIZATION_LEN: usize = jwt::MAX_TOKEN_LEN + 64;

/// Checks every request's credentials and rights.
///
/// Three ways to set it up: [`Authenticator::basic`] (an htpasswd file),
/// [`Authenticator::builtin_token`] (this server issues the tokens) and
/// [`Authenticator::external_token`] (another token service does).
pub struct Authenticator {
    mode: Mode,
}

enum Mode {
    Basic {
        realm: String,
        users: Arc<Htpasswd>,
        policy: Arc<Policy>,
    },
    Token {
        realm: String,
        service: String,
        validation: Validation,
        builtin: Option<Arc<TokenService>>,
        verified: VerifiedTokens,
    },
}

impl Authenticator {
    /// Basic authentication against `users`, rights from `policy`.
    pub fn basic(realm: &str, users: Arc<Htpasswd>, policy: Policy) -> Authenticator {
        Authenticator {
            mode: Mode::Basic {
                realm: realm.to_owned(),
                users,
                policy: Arc::new(policy),
            },
        }
    }

    /// Bearer tokens issued by `service`, this server's own token
    /// endpoint, which clients reach at `realm` (an absolute URL).
    pub fn builtin_token(realm: &str, service: TokenService) -> Authenticator {
        let validation = service.validation();
        Authenticator {
            mode: Mode::Token {
                realm: realm.to_owned(),
                service: validation.audience.clone(),
                validation,
                builtin: Some(Arc::new(service)),
                verified: VerifiedTokens::default(),
            },
        }
    }

    /// Bearer tokens from another token service at `realm`, for `service`,
    /// signed by `issuer` with one of `keys`. Rights are what the tokens
    /// carry.
    pub fn external_token(
        realm: &str,
        service: &str,
        issuer: &str,
        keys: Vec<VerifyKey>,
    ) -> Authenticator {
        Authenticator {
            mode: Mode::Token {
                realm: realm.to_owned(),
                service: service.to_owned(),
                validation: Validation {
                    issuer: issuer.to_owned(),
                    audience: service.to_owned(),
                    keys,
                    leeway: jwt::LEEWAY,
                },
                builtin: None,
                verified: VerifiedTokens::default(),
            },
        }
    }

    /// The built-in token endpoint, when this server issues tokens.
    pub fn token_service(&self) -> Option<&TokenService> {
        match &self.mode {
            Mode::Token { builtin, .. } => builtin.as_deref(),
            Mode::Basic { .. } => None,
        }
    }

    /// Checks a request that needs `scope` (empty for `/v2/`): who sends
    /// it, and whether they may. `/v2/` without credentials is always
    /// refused, so that clients learn how to authenticate.
    pub fn check(&self, headers: &HeaderMap, scope: &Scope) -> Result<Grants, Denial> {
        let credentials = parse_authorization(headers)
            .map_err(|reason| self.unauthorized(scope, reason, Some("invalid_request")))?;
        match (&self.mode, credentials) {
            (_, None) => {
                let Some(policy) = self.policy() else {
                    return Err(self.unauthorized(scope, "authentication required", None));
                };
                if scope.items.is_empty()
                    || !missing(policy, &Identity::Anonymous, scope).is_empty()
                {
                    return Err(self.unauthorized(scope, "authentication required", None));
                }
                Ok(Grants::policy(Identity::Anonymous, policy))
            }
            (Mode::Basic { users, policy, .. }, Some(Credentials::Basic { user, password })) => {
                if !users.verify(&user, &password) {
                    tracing::debug!(user, "basic credentials refused");
                    return Err(self.unauthorized(scope, "invalid username or password", None));
                }
                let identity = Identity::User(user);
                let lacking = missing(policy, &identity, scope);
                if !lacking.is_empty() {
                    return Err(denied(&identity, &lacking));
                }
                Ok(Grants::policy(identity, policy))
            }
            (
                Mode::Token {
                    validation,
                    builtin,
                    verified,
                    ..
                },
                Some(Credentials::Bearer(token)),
            ) => {
                let verified = verified
                    .verify(validation, &token, jwt::now())
                    .map_err(|e| {
                        tracing::debug!(reason = %e, "bearer token refused");
                        let reason = match e {
                            JwtError::Expired => "the token has expired",
                            _ => "the token is not valid",
                        };
                        self.unauthorized(scope, reason, Some("invalid_token"))
                    })?;
                let identity = verified.identity.clone();
                let granted = &verified.granted;
                let lacking = lacking_in(granted, scope);
                if !lacking.is_empty() {
                    if let (Some(service), Identity::User(_)) = (builtin, &identity)
                        && !missing(service.policy(), &identity, &lacking).is_empty()
                    {
                        return Err(denied(&identity, &lacking));
                    }
                    return Err(self.unauthorized(
                        scope,
                        "the token does not grant this access",
                        Some("insufficient_scope"),
                    ));
                }
                Ok(match builtin {
                    Some(service) => Grants::policy(identity, service.policy()),
                    None => Grants::token(identity, Arc::clone(granted), scope),
                })
            }
            (_, Some(_)) => Err(self.unauthorized(
                scope,
                "this registry does not accept that kind of credentials",
                None,
            )),
        }
    }

    /// The policy that decides for callers without tokens.
    fn policy(&self) -> Option<&Arc<Policy>> {
        match &self.mode {
            Mode::Basic { policy, .. } => Some(policy),
            Mode::Token { builtin, .. } => builtin.as_ref().map(|s| s.policy()),
        }
    }

    /// A 401 with this authenticator's challenge.
    fn unauthorized(&self, scope: &Scope, message: &str, error: Option<&str>) -> Denial {
        let challenge = match &self.mode {
            Mode::Basic { realm, .. } => format!("Basic realm=\"{}\"", quoted(realm)),
            Mode::Token { realm, service, .. } => {
                let mut c = format!(
                    "Bearer realm=\"{}\",service=\"{}\"",
                    quoted(realm),
                    quoted(service)
                );
                if !scope.items.is_empty() {
                    c.push_str(&format!(",scope=\"{scope}\""));
                }
                if let Some(error) = error {
                    c.push_str(&format!(",error=\"{error}\""));
                }
                c
            }
        };
        Denial {
            error: Error::new(ErrorCode::Unauthorized, message),
            challenge: Some(challenge),
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Basic { realm, users, .. } => f
                .debug_struct("Authenticator::Basic")
                .field("realm", realm)
                .field("users", &users.len())
                .finish_non_exhaustive(),
            Mode::Token {
                realm,
                service,
                builtin,
                ..
            } => f
                .debug_struct("Authenticator::Token")
                .field("realm", realm)
                .field("service", service)
                .field("builtin", &builtin.is_some())
                .finish_non_exhaustive(),
        }
    }
}

/// The items of `scope` that `policy` does not grant `identity`, each with
/// the actions lacking.
fn missing(policy: &Policy, identity: &Identity, scope: &Scope) -> Scope {
    let mut lacking = Scope::none();
    for item in &scope.items {
        match &item.resource {
            Resource::Repository(repo) => {
                let short = item.actions.without(policy.allowed(identity, repo));
                if !short.is_empty() {
                    lacking
                        .items
                        .push(ScopeItem::repository(repo.clone(), short));
                }
            }
            Resource::Catalog => {
                if !policy.may_list_catalog(identity) {
                    lacking.items.push(item.clone());
                }
            }
        }
    }
    lacking
}

/// The items of `wanted` that `granted` (a token's claims) lacks.
fn lacking_in(granted: &Scope, wanted: &Scope) -> Scope {
    let mut lacking = Scope::none();
    for item in &wanted.items {
        let has = granted
            .items
            .iter()
            .filter(|g| g.resource == item.resource)
            .fold(Actions::NONE, |acc, g| acc.union(g.actions));
        let short = item.actions.without(has);
        if !short.is_empty() {
            lacking.items.push(ScopeItem {
                resource: item.resource.clone(),
                actions: short,
            });
        }
    }
    lacking
}

/// The 403 for an authenticated caller without the right.
fn denied(identity: &Identity, lacking: &Scope) -> Denial {
    Denial {
        error: Error::new(
            ErrorCode::Denied,
            format!("{identity} may not do this: lacking {lacking}"),
        ),
        challenge: None,
    }
}

/// Escapes a challenge parameter's value.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What the `Authorization` header carries.
pub(crate) enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Reads the `Authorization` header; `Err` with a reason when it is there
/// but unusable.
pub(crate) fn parse_authorization(
    headers: &HeaderMap,
) -> Result<Option<Credentials>, &'static str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err("the Authorization header is too large");
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or("the Authorization header has no scheme")?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = STANDARD
            .decode(rest)
            .map_err(|_| "basic credentials are not base64")?;
        let text = String::from_utf8(raw).map_err(|_| "basic credentials are not UTF-8")?;
        let (user, password) = text
            .split_once(':')
            .ok_or("basic credentials are not USER:PASSWORD")?;
        Ok(Some(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err("an empty bearer token");
        }
        Ok(Some(Credentials::Bearer(rest.to_owned())))
    } else {
        Err("an unknown Authorization scheme")
    }
}

/// What an authenticated (or anonymous) caller may do, per repository.
#[derive(Clone)]
pub struct Grants {
    identity: Identity,
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// What the policy grants the identity.
    Policy(Arc<Policy>),
    /// What a token from an external issuer grants.
    Token(Arc<Scope>),
    /// A catalog listing under an external token: every repository is listed.
    ListAll,
}

impl Grants {
    fn policy(identity: Identity, policy: &Arc<Policy>) -> Grants {
        Grants {
            identity,
            source: Source::Policy(Arc::clone(policy)),
        }
    }

    fn token(identity: Identity, granted: Arc<Scope>, wanted: &Scope) -> Grants {
        let source = if wanted.items.iter().any(|i| i.resource == Resource::Catalog) {
            Source::ListAll
        } else {
            Source::Token(granted)
        };
        Grants { identity, source }
    }

    /// Who the caller is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The actions the caller may take on `repo`.
    pub fn actions(&self, repo: &RepoName) -> Actions {
        match &self.source {
            Source::Policy(policy) => policy.allowed(&self.identity, repo),
            Source::Token(scope) => scope
                .items
                .iter()
                .filter(|i| matches!(&i.resource, Resource::Repository(r) if r == repo))
                .fold(Actions::NONE, |acc, i| acc.union(i.actions)),
            Source::ListAll => Actions::PULL,
        }
    }

    /// `Ok` when the caller may take `action` on `repo`, else `DENIED`.
    pub fn check(&self, repo: &RepoName, action: Actions) -> oci_core::Result<()> {
        if self.actions(repo).contains(action) {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::Denied,
            format!("{} may not {action} {repo}", self.identity),
        ))
    }
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A refusal: the spec error to answer with, and the `WWW-Authenticate`
/// challenge that goes with a 401.
#[derive(Debug, Clone)]
pub struct Denial {
    error: Error,
    challenge: Option<String>,
}

impl Denial {
    pub(crate) fn new(error: Error, challenge: Option<String>) -> Denial {
        Denial { error, challenge }
    }

    /// The HTTP status: 401 or 403 (400 for a malformed token request).
    pub fn status(&self) -> u16 {
        self.error.status()
    }

    /// The `WWW-Authenticate` value, for a 401.
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_deref()
    }

    /// The error, with its spec code.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error and the challenge.
    pub fn into_parts(self) -> (Error, Option<String>) {
        (self.error, self.challenge)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::jwt::SigningKey;
    use crate::token::{TokenConfig, TokenService};

    /// `htpasswd -nbB alice wonderland`, `htpasswd -nbB -C 6 bob builder`.
    const USERS: &str = "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n\
                         bob:$2y$06$w9FqOKTYALuNqHRCzliIH./fJ7LQXmqd2yGiTtt737QuFT7hmeEzq\n";

    const POLICY: &str = r#"
[[rule]]
repositories = ["**"]
users = ["alice"]
actions = ["*"]

[[rule]]
repositories = ["**"]
users = ["bob"]
actions = ["pull"]

[[rule]]
repositories = ["public/**"]
anonymous = true
actions = ["pull"]
"#;

    fn users() -> Arc<Htpasswd> {
        Arc::new(Htpasswd::parse(USERS, "users").unwrap())
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        h
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        headers(&format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    fn scope(repo: &str, actions: Actions) -> Scope {
        Scope::repository(repo.parse().unwrap(), actions)
    }

    fn basic_auth() -> Authenticator {
        Authenticator::basic("ocidist", users(), Policy::parse(POLICY).unwrap())
    }

    fn token_auth() -> Authenticator {
        let (key, _) = SigningKey::generate().unwrap();
        let service = TokenService::new(
            TokenConfig::new("registry"),
            key,
            Some(users()),
            Policy::parse(POLICY).unwrap(),
        );
        Authenticator::builtin_token("http://127.0.0.1:5000/token", service)
    }

    /// A token from the built-in service for `scope`.
    fn token_for(auth: &Authenticator, creds: &HeaderMap, scope: &str) -> String {
        let service = auth.token_service().unwrap();
        let answer = service
            .handle(
                &http::Method::GET,
                Some(&format!("scope={scope}")),
                creds,
                b"",
            )
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        json["token"].as_str().unwrap().to_owned()
    }

    #[test]
    fn basic_users_get_what_the_policy_grants() {
        let auth = basic_auth();
        let push = scope("team/app", Actions::PULL.union(Actions::PUSH));
        let grants = auth.check(&basic("alice", "wonderland"), &push).unwrap();
        assert_eq!(grants.identity(), &Identity::User("alice".into()));
        assert_eq!(grants.actions(&"x".parse().unwrap()), Actions::ALL);
        let pull = scope("team/app", Actions::PULL);
        assert!(auth.check(&basic("bob", "builder"), &pull).is_ok());
        let denial = auth.check(&basic("bob", "builder"), &push).unwrap_err();
        assert_eq!(denial.status(), 403);
        assert!(denial.error().is(ErrorCode::Denied));
        assert!(denial.challenge().is_none());
    }

    #[test]
    fn anonymous_callers_are_challenged_unless_the_policy_lets_them() {
        let auth = basic_auth();
        let none = HeaderMap::new();
        let denial = auth.check(&none, &Scope::none()).unwrap_err();
        assert_eq!(denial.status(), 401);
        assert_eq!(denial.challenge(), Some("Basic realm=\"ocidist\""));
        assert!(auth.check(&none, &scope("public/x", Actions::PULL)).is_ok());
        let denial = auth
            .check(&none, &scope("public/x", Actions::PUSH))
            .unwrap_err();
        assert_eq!(denial.status(), 401);
        assert!(
            auth.check(&none, &scope("private/x", Actions::PULL))
                .is_err()
        );
    }

    #[test]
    fn bad_credentials_and_malformed_headers_are_401() {
        let auth = basic_auth();
        let pull = scope("public/x", Actions::PULL);
        for h in [
            basic("alice", "builder"),
            basic("mallory", "x"),
            headers("Basic !!!notbase64"),
            headers(&format!("Basic {}", STANDARD.encode("no-colon"))),
            headers("Basic"),
            headers("Digest abc"),
            headers("Bearer abc.def.ghi"),
        ] {
            let denial = auth.check(&h, &pull).unwrap_err();
            assert_eq!(denial.status(), 401, "{h:?}");
            assert!(denial.error().is(ErrorCode::Unauthorized));
            assert!(denial.challenge().is_some());
        }
        let mut two = basic("alice", "wonderland");
        two.append(AUTHORIZATION, HeaderValue::from_static("Basic eDp5"));
        assert_eq!(auth.check(&two, &pull).unwrap_err().status(), 401);
    }

    #[test]
    fn bearer_challenge_names_realm_service_and_scope() {
        let auth = token_auth();
        let push = scope("team/app", Actions::PULL.union(Actions::PUSH));
        let denial = auth.check(&HeaderMap::new(), &push).unwrap_err();
        assert_eq!(denial.status(), 401);
        assert_eq!(
            denial.challenge(),
            Some(
                "Bearer realm=\"http://127.0.0.1:5000/token\",service=\"registry\",\
                 scope=\"repository:team/app:pull,push\""
            )
        );
        // Basic credentials are not taken by a token registry.
        assert_eq!(
            auth.check(&basic("alice", "wonderland"), &push)
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn tokens_grant_what_was_asked_and_allowed() {
        let auth = token_auth();
        let pull = scope("team/app", Actions::PULL);
        let push = scope("team/app", Actions::PULL.union(Actions::PUSH));
        let t = token_for(
            &auth,
            &basic("alice", "wonderland"),
            "repository:team/app:pull,push",
        );
        let bearer = headers(&format!("Bearer {t}"));
        assert!(auth.check(&bearer, &push).is_ok());
        // A token for one repository does not open another.
        let other = auth
            .check(&bearer, &scope("team/other", Actions::PULL))
            .unwrap_err();
        assert_eq!(other.status(), 401);
        assert!(
            other
                .challenge()
                .unwrap()
                .contains("error=\"insufficient_scope\"")
        );

        // Bob asks for push and gets a pull-only token; pushing with it is
        // 403, since no new token could help.
        let t = token_for(
            &auth,
            &basic("bob", "builder"),
            "repository:team/app:pull,push",
        );
        let bearer = headers(&format!("Bearer {t}"));
        assert!(auth.check(&bearer, &pull).is_ok());
        let denial = auth.check(&bearer, &push).unwrap_err();
        assert_eq!(denial.status(), 403);
        assert!(denial.error().is(ErrorCode::Denied));

        // An anonymous token for a public repository.
        let t = token_for(&auth, &HeaderMap::new(), "repository:public/x:pull,push");
        let bearer = headers(&format!("Bearer {t}"));
        assert!(
            auth.check(&bearer, &scope("public/x", Actions::PULL))
                .is_ok()
        );
        let denial = auth
            .check(&bearer, &scope("public/x", Actions::PUSH))
            .unwrap_err();
        assert_eq!(denial.status(), 401);
    }

    #[test]
    fn tokens_from_elsewhere_are_refused_with_invalid_token() {
        let auth = token_auth();
        let other = token_auth();
        let t = token_for(&other, &basic("alice", "wonderland"), "repository:a:pull");
        let denial = auth
            .check(&headers(&format!("Bearer {t}")), &scope("a", Actions::PULL))
            .unwrap_err();
        assert_eq!(denial.status(), 401);
        assert!(
            denial
                .challenge()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(
            auth.check(&headers(&huge), &Scope::none())
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn external_tokens_carry_their_own_rights() {
        let (key, _) = SigningKey::generate().unwrap();
        let auth = Authenticator::external_token(
            "https://auth.example/token",
            "registry",
            "issuer",
            vec![key.verify_key()],
        );
        assert!(auth.token_service().is_none());
        let now = jwt::now();
        let claims = jwt::Claims {
            iss: "issuer".into(),
            sub: "carol".into(),
            aud: jwt::Audience::One("registry".into()),
            exp: now + 60,
            nbf: None,
            iat: None,
            jti: None,
            access: jwt::Claims::access_for(&scope("a/b", Actions::PULL)),
            token_use: None,
        };
        let bearer = headers(&format!("Bearer {}", key.sign(&claims).unwrap()));
        let grants = auth.check(&bearer, &scope("a/b", Actions::PULL)).unwrap();
        assert_eq!(grants.actions(&"a/b".parse().unwrap()), Actions::PULL);
        assert_eq!(grants.actions(&"a/c".parse().unwrap()), Actions::NONE);
        assert!(
            grants
                .check(&"a/b".parse().unwrap(), Actions::PUSH)
                .is_err()
        );
        let denial = auth
            .check(&bearer, &scope("a/b", Actions::PUSH))
            .unwrap_err();
        assert_eq!(denial.status(), 401);
        assert!(denial.challenge().unwrap().contains("insufficient_scope"));
    }
}
