//! [`Ctx`]: what a handler sees of a request. A low module, so that the
//! handlers (`blobs`, `lists`, `manifests`, `uploads`) and the service that
//! routes to them do not import each other in a circle: the service
//! imports the handlers, the handlers import this.

use http::HeaderMap;
use oci_core::Registry;

use crate::options::ServerOptions;
use crate::routes::Query;
use crate::sessions::Sessions;

/// What a handler sees of a request.
pub(crate) struct Ctx<'a> {
    /// The registry served.
    pub(crate) registry: &'a dyn Registry,
    /// The service's options.
    pub(crate) options: &'a ServerOptions,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The decoded query parameters.
    pub(crate) query: Query,
    /// The upload sessions open, against their caps.
    pub(crate) sessions: &'a Sessions,
}
