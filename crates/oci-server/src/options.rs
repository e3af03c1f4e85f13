//! [`ServerOptions`]: how a [`RegistryService`](crate::RegistryService)
//! behaves (manifest size cap, authorizer, limits).

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
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            max_manifest_size: MAX_MANIFEST_SIZE,
            authorizer: None,
            limits: Limits::default(),
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

    /// Checks every request with `authorizer` before any store call (and
    /// serves its token endpoint, if it has one). Without one, every
    /// request is let through.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorize>) -> ServerOptions {
        self.authorizer = Some(AuthHook(authorizer));
        self
    }
}
