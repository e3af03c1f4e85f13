//! The server's authentication and authorization, assembled: `oci-auth`'s
//! [`Authenticator`] decides who the caller is and what they may do,
//! `oci-filter`'s [`Guarded`] wrapper enforces that on every registry call
//! (and filters the catalog), and `oci-server` asks through its
//! [`Authorize`] hook before any store call.
//!
//! ```
//! use std::sync::Arc;
//! use oci_auth::{Authenticator, Htpasswd, Policy};
//! use ocidist::server_auth::ServerAuth;
//!
//! let users = Htpasswd::parse(
//!     "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n",
//!     "users",
//! )
//! .unwrap();
//! let auth = Authenticator::basic("ocidist", Arc::new(users), Policy::authenticated_all());
//! let options = oci_server::ServerOptions::new().authorizer(Arc::new(ServerAuth::new(auth)));
//! let service = oci_server::RegistryService::with_options(
//!     Arc::new(oci_mem::MemRegistry::new()),
//!     options,
//! );
//! # let _ = service;
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, Method};
use oci_auth::jwt::SigningKey;
use oci_auth::{
    Actions, AuthError, Authenticator, Denial, Grants, Htpasswd, Policy as AuthPolicy, Scope,
    TokenConfig, TokenService,
};
use oci_core::{Registry, RepoName, Result};
use oci_filter::{Access, Guarded, Policy};
use oci_server::{Action, AuthRequest, Authorize, Rejection};

/// The path of the built-in token endpoint.
pub const TOKEN_PATH: &str = "/token";

/// An [`Authenticator`] as `oci-server`'s [`Authorize`] hook.
#[derive(Debug)]
pub struct ServerAuth {
    auth: Authenticator,
}

impl ServerAuth {
    /// Serves with `auth`; a built-in token service answers at
    /// [`TOKEN_PATH`].
    pub fn new(auth: Authenticator) -> ServerAuth {
        ServerAuth { auth }
    }
}

impl Authorize for ServerAuth {
    fn authorize(
        &self,
        request: &AuthRequest<'_>,
        registry: &Arc<dyn Registry>,
    ) -> std::result::Result<Arc<dyn Registry>, Rejection> {
        let scope = scope_of(request);
        let grants = self
            .auth
            .check(request.headers, &scope)
            .map_err(rejection)?;
        Ok(Arc::new(Guarded::with_policy(
            Arc::clone(registry),
            GrantsPolicy(grants),
        )))
    }

    fn token_path(&self) -> Option<&str> {
        self.auth.token_service().map(|_| TOKEN_PATH)
    }

    fn token(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> std::result::Result<Vec<u8>, Rejection> {
        match self.auth.token_service() {
            Some(service) => service
                .handle(method, query, headers, body)
                .map_err(rejection),
            None => Err(Rejection {
                error: oci_core::Error::unsupported("the token endpoint"),
                challenge: None,
            }),
        }
    }
}

/// The scope a request needs, in the token spec's terms.
fn scope_of(request: &AuthRequest<'_>) -> Scope {
    let mut scope = if request.catalog {
        Scope::catalog()
    } else {
        Scope::none()
    };
    for (repo, action) in &request.needs {
        let actions = match action {
            Action::Pull => Actions::PULL,
            Action::Push => Actions::PUSH,
            Action::Delete => Actions::DELETE,
        };
        scope.add((*repo).clone(), actions);
    }
    scope
}

fn rejection(denial: Denial) -> Rejection {
    let (error, challenge) = denial.into_parts();
    Rejection { error, challenge }
}

/// The caller's grants as an `oci-filter` policy: reads and lists need
/// `pull`, writes `push`, deletes `delete`.
struct GrantsPolicy(Grants);

impl Policy for GrantsPolicy {
    fn check(&self, repo: &RepoName, access: Access) -> Result<()> {
        let action = match access {
            Access::Read | Access::List => Actions::PULL,
            Access::Write => Actions::PUSH,
            Access::Delete => Actions::DELETE,
        };
        self.0.check(repo, action)
    }
}

/// The name of the token signing key kept in a `--storage` directory.
pub const TOKEN_KEY_FILE: &str = "token-signing.key";

/// `serve`'s authentication flags.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthFlags {
    /// Users and their bcrypt password hashes, as `htpasswd -B` writes them.
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Who may pull, push, delete which repositories (TOML; see the README).
    /// Default: every user in --htpasswd may do everything.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Let callers without credentials pull every repository.
    #[arg(long)]
    pub anonymous_read: bool,
    /// Use bearer tokens: the URL where clients get them. With no
    /// --token-issuer-keys this server issues them at `/token`, so give
    /// this server's own URL plus `/token`.
    #[arg(long, value_name = "URL")]
    pub token_realm: Option<String>,
    /// The token service name (the tokens' audience).
    #[arg(long, value_name = "NAME", default_value = "ocidist")]
    pub token_service: String,
    /// The built-in token service's ES256 signing key (PKCS#8 DER), made
    /// on first start. Default: `token-signing.key` in --storage; without
    /// --storage a new key each start.
    #[arg(long, value_name = "FILE")]
    pub token_key: Option<PathBuf>,
    /// Accept tokens of an external issuer instead: its certificates or
    /// public keys (PEM), as distribution's `rootcertbundle`.
    #[arg(long, value_name = "FILE", requires_all = ["token_realm", "token_issuer"])]
    pub token_issuer_keys: Option<PathBuf>,
    /// The external issuer's name (the tokens' `iss`).
    #[arg(long, value_name = "NAME", requires = "token_issuer_keys")]
    pub token_issuer: Option<String>,
    /// Serve without authentication on an address other than loopback.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

impl AuthFlags {
    /// The authenticator the flags describe; `None` when they ask for no
    /// authentication. `storage` is where a signing key is kept by default.
    pub fn authenticator(
        &self,
        storage: Option<&Path>,
    ) -> Result<Option<Authenticator>, AuthError> {
        if let (Some(keys), Some(realm)) = (&self.token_issuer_keys, &self.token_realm) {
            let pem = std::fs::read_to_string(keys)
                .map_err(|e| AuthError::Config(format!("cannot read {}: {e}", keys.display())))?;
            let keys = oci_auth::external::keys_from_pem(&pem)
                .map_err(|e| AuthError::Config(format!("{}: {e}", keys.display())))?;
            let issuer = self.token_issuer.as_deref().unwrap_or_default();
            return Ok(Some(Authenticator::external_token(
                realm,
                &self.token_service,
                issuer,
                keys,
            )));
        }
        let users = self
            .htpasswd
            .as_deref()
            .map(Htpasswd::load)
            .transpose()?
            .map(Arc::new);
        let policy = match (&self.policy, &users) {
            (Some(path), _) => AuthPolicy::load(path)?,
            (None, Some(_)) => AuthPolicy::authenticated_all(),
            (None, None) => AuthPolicy::deny_all(),
        };
        let policy = if self.anonymous_read {
            policy.with_anonymous_read()
        } else {
            policy
        };
        if users.is_none() && !self.anonymous_read && self.policy.is_none() {
            if self.token_realm.is_some() {
                return Err(AuthError::Config(
                    "--token-realm needs --htpasswd, --anonymous-read or --policy".to_owned(),
                ));
            }
            return Ok(None);
        }
        if let Some(realm) = &self.token_realm {
            let key = match (&self.token_key, storage) {
                (Some(path), _) => SigningKey::load_or_create(path)?,
                (None, Some(dir)) => SigningKey::load_or_create(&dir.join(TOKEN_KEY_FILE))?,
                (None, None) => SigningKey::generate()?.0,
            };
            let tokens =
                TokenService::new(TokenConfig::new(&self.token_service), key, users, policy);
            return Ok(Some(Authenticator::builtin_token(realm, tokens)));
        }
        let users = users.unwrap_or_else(|| Arc::new(Htpasswd::empty()));
        Ok(Some(Authenticator::basic(
            &self.token_service,
            users,
            policy,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n";

    #[test]
    fn the_readme_policy_example_parses() {
        let readme = include_str!("../../../README.md");
        let section = readme.split("### A secured registry").nth(1).unwrap();
        let toml = section
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let policy = AuthPolicy::parse(toml).unwrap();
        let user = |u: &str| oci_auth::Identity::User(u.to_owned());
        let repo = |r: &str| r.parse().unwrap();
        assert_eq!(
            policy.allowed(&user("bob"), &repo("team-a/app")),
            Actions::PULL.union(Actions::PUSH)
        );
        assert_eq!(policy.allowed(&user("root"), &repo("x")), Actions::ALL);
        assert_eq!(
            policy.allowed(&oci_auth::Identity::Anonymous, &repo("public/app")),
            Actions::PULL
        );
    }

    #[test]
    fn flags_choose_the_authenticator() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, USERS).unwrap();
        let none = AuthFlags::default();
        assert!(none.authenticator(None).unwrap().is_none());

        let basic = AuthFlags {
            htpasswd: Some(users.clone()),
            ..AuthFlags::default()
        };
        let auth = basic.authenticator(None).unwrap().unwrap();
        assert!(auth.token_service().is_none());

        let token = AuthFlags {
            token_realm: Some("http://127.0.0.1:5000/token".into()),
            ..basic.clone()
        };
        let auth = token.authenticator(Some(dir.path())).unwrap().unwrap();
        assert!(auth.token_service().is_some());
        assert!(
            dir.path().join(TOKEN_KEY_FILE).exists(),
            "key kept with the store"
        );

        let lonely = AuthFlags {
            token_realm: Some("http://127.0.0.1:5000/token".into()),
            ..AuthFlags::default()
        };
        let err = lonely.authenticator(None).unwrap_err().to_string();
        assert!(err.contains("--htpasswd"), "{err}");

        let missing = AuthFlags {
            htpasswd: Some(dir.path().join("nope")),
            ..AuthFlags::default()
        };
        assert!(missing.authenticator(None).is_err());
    }
}
