//! [`ServerOptions`]: how a [`RegistryService`](crate::RegistryService)
//! behaves (manifest size cap, authorizer, limits, `?ns=` namespaces).

use std::sync::Arc;

use oci_core::manifest::MAX_MANIFEST_SIZE;

use crate::auth::{AuthHook, Authorize};
use crate::limits::Limits;

/// How a [`RegistryService`](crate::RegistryService) behaves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub(crate) max_manifest_size: usize,
    pub(crate) authorizer: Option<AuthHook>,
    pub(crate) limits: Limits,
    pub(crate) namespaces: bool,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            max_manifest_size: MAX_MANIFEST_SIZE,
            authorizer: None,
            limits: Limits::default(),
            namespaces: false,
        }
    }
}

impl ServerOptions {
    /// The default options: manifests up to 4 MiB, the default [`Limits`].
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// The limits on connections, requests and upload sessions.
    pub fn limits(mut self, limits: Limits) -> ServerOptions {
        self.limits = limits;
        self
    }

    /// The largest manifest a PUT may carry; a larger one is a 413
    /// `SIZE_INVALID`.
    pub fn max_manifest_size(mut self, bytes: usize) -> ServerOptions {
        self.max_manifest_size = bytes;
        self
    }

    /// Names repositories by the registry a request's `?ns=HOST` names, as
    /// pull-through mirrors do: `GET /v2/library/alpine/manifests/3.20?ns=docker.io`
    /// reaches the registry (and the authorizer) as repository
    /// `docker.io/library/alpine` (a port after `_`:
    /// `oci_core::RepoName::in_namespace`). Off by default: `ns` is ignored.
    pub fn namespaces(mut self, on: bool) -> ServerOptions {
        self.namespaces = on;
        self
    }

    /// Checks every request with `authorizer` before any store call (and
    /// serves its token endpoint, if it has one). Without one, every
    /// request is let through.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorize>) -> ServerOptions {
        self.authorizer = Some(AuthHook(authorizer));
        self
    }
}
