//! Server-side authentication and authorization for an OCI registry.
//!
//! - [`Htpasswd`]: users and bcrypt hashes, as `htpasswd -B` writes them;
//! - [`Policy`]: who may `pull`, `push`, `delete` which repositories (a
//!   TOML file, globs like `team-a/**`, groups, anonymous);
//! - [`jwt`]: ES256/RS256 JSON Web Tokens carrying distribution's `access`
//!   claims;
//! - [`TokenService`]: the built-in token endpoint (`GET`/`POST /token`);
//! - [`external`]: the keys of another token service, from a PEM bundle;
//! - [`Authenticator`]: what a server calls on every request: it reads the
//!   `Authorization` header, checks it against the request's [`Scope`] and
//!   answers the caller's [`Grants`], or a [`Denial`] to send (401 with the
//!   right `WWW-Authenticate` challenge, or 403).
//!
//! The crate knows nothing of the server: a server turns its route into a
//! [`Scope`] and enforces the [`Grants`] per repository (the `ocidist`
//! binary does so with `oci-filter`'s access-check wrapper).
//!
//! ```
//! use std::sync::Arc;
//! use oci_auth::{Actions, Authenticator, Htpasswd, Policy, Scope};
//!
//! let users = Htpasswd::parse(
//!     "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n",
//!     "users",
//! )
//! .unwrap();
//! let auth = Authenticator::basic("registry", Arc::new(users), Policy::authenticated_all());
//! let scope = Scope::repository("team-a/app".parse().unwrap(), Actions::PULL);
//! let denial = auth.check(&http::HeaderMap::new(), &scope).unwrap_err();
//! assert_eq!(denial.status(), 401);
//! assert_eq!(denial.challenge(), Some("Basic realm=\"registry\""));
//! ```

pub mod external;
mod gate;
mod htpasswd;
pub mod jwt;
mod policy;
mod scope;
mod token;
mod verified;

pub use gate::{Authenticator, Denial, Grants};
pub use htpasswd::Htpasswd;
pub use policy::Policy;
pub use scope::{Actions, Identity, Resource, Scope, ScopeItem};
pub use token::{TokenConfig, TokenService};

/// What can go wrong configuring or running authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A file or setting is wrong; the server should not start.
    #[error("{0}")]
    Config(String),
    /// A request to the token endpoint is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Something that should not fail did.
    #[error("{0}")]
    Internal(String),
}
