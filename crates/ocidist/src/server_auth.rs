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

use std::sync::Arc;

use http::{HeaderMap, Method};
use oci_auth::{Actions, Authenticator, Denial, Grants, Scope};
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
