//! [`RegistryService`]: the hyper (and tower) service that routes requests
//! to the handlers, and its [`ServerOptions`].

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use oci_core::{BlobStream, Error, ErrorCode, Registry, wire};

use crate::auth;
use crate::body::{self, BoxError, ResponseBody};
use crate::ctx::Ctx;
use crate::limits::{Limits, RateLimiter};
use crate::options::ServerOptions;
use crate::response::{Answer, Failure, Reply};
use crate::routes::{Query, Route};
use crate::sessions::Sessions;
use crate::{blobs, lists, manifests, uploads};

/// A hyper service exposing a [`Registry`] over the OCI distribution API.
///
/// Cheap to clone; every clone serves the same registry. It implements
/// both `hyper::service::Service` and `tower_service::Service` for any
/// request body of `Bytes`, so it can be handed to hyper's connection
/// builders or mounted in a tower stack (e.g. `axum::Router::fallback_service`).
#[derive(Clone)]
pub struct RegistryService {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Arc<dyn Registry>,
    options: ServerOptions,
    sessions: Sessions,
    rate: Option<RateLimiter>,
}

impl RegistryService {
    /// A service over `registry` with the default options.
    pub fn new(registry: Arc<dyn Registry>) -> RegistryService {
        RegistryService::with_options(registry, ServerOptions::default())
    }

    /// A service over `registry` with the given options.
    pub fn with_options(registry: Arc<dyn Registry>, options: ServerOptions) -> RegistryService {
        let sessions = Sessions::new(&options.limits);
        let rate = options.limits.rate_limit.map(RateLimiter::new);
        RegistryService {
            shared: Arc::new(Shared {
                registry,
                options,
                sessions,
                rate,
            }),
        }
    }

    /// The registry this service exposes.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.shared.registry
    }

    /// The service's limits.
    pub fn limits(&self) -> &Limits {
        &self.shared.options.limits
    }

    /// The `429 TOOMANYREQUESTS` answer for a request from `client` over
    /// its rate limit, if any.
    pub(crate) fn rate_limited<B>(
        &self,
        client: IpAddr,
        request: &Request<B>,
    ) -> Option<Response<ResponseBody>> {
        let wait = self.shared.rate.as_ref()?.take(client).err()?;
        tracing::debug!(%client, path = request.uri().path(), "rate limited");
        let error = Error::new(
            ErrorCode::TooManyRequests,
            "too many requests from this client; retry later",
        );
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = Failure::from(error)
            .with_header(http::header::RETRY_AFTER, &seconds.max(1).to_string())
            .into_response(request.method() == http::Method::HEAD);
        response.headers_mut().insert(
            wire::DOCKER_DISTRIBUTION_API_VERSION,
            HeaderValue::from_static("registry/2.0"),
        );
        Some(response)
    }

    /// Cancels upload sessions idle for the upload expiry, in the store
    /// (`Registry::expire_uploads`, where supported) and in the session
    /// count, every eighth of that time (at least every second, at most
    /// every ten minutes), for ever; [`RegistryService::serve`] runs it.
    /// Returns at once when uploads never expire.
    pub async fn sweep_uploads(self) {
        let Some(expiry) = self.limits().upload_expiry else {
            return;
        };
        let period = (expiry / 8).clamp(Duration::from_secs(1), Duration::from_secs(600));
        let mut supported = true;
        loop {
            tokio::time::sleep(period).await;
            match self.shared.registry.expire_uploads(expiry).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "idle upload sessions expired"),
                Err(e) if e.is(ErrorCode::Unsupported) => {
                    if supported {
                        tracing::debug!("the store does not expire uploads itself");
                    }
                    supported = false;
                }
                Err(e) => tracing::warn!(error = %e, "expiring idle uploads failed"),
            }
            let forgotten = self.shared.sessions.expire(expiry);
            if forgotten > 0 {
                tracing::debug!(forgotten, "idle upload sessions no longer counted");
            }
        }
    }

    /// Answers one request. Never fails: every error becomes a spec error
    /// response.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let head = parts.method == http::Method::HEAD;
        let body = body::request_stream(body, self.limits().body_idle_timeout);
        let mut response = match self.dispatch(&parts, body).await {
            Ok(response) => response,
            Err(failure) => {
                if failure.error().status() >= 500 {
                    tracing::warn!(method = %parts.method, path = parts.uri.path(), error = %failure.error(), "request failed");
                }
                failure.into_response(head)
            }
        };
        if head {
            *response.body_mut() = body::empty();
        }
        response.headers_mut().insert(
            wire::DOCKER_DISTRIBUTION_API_VERSION,
            HeaderValue::from_static("registry/2.0"),
        );
        tracing::debug!(
            method = %parts.method,
            path = parts.uri.path(),
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        response
    }

    /// Routes a request to its handler.
    async fn dispatch(&self, parts: &http::request::Parts, body: BlobStream) -> Answer {
        let hook = self.shared.options.authorizer.as_ref();
        if let Some(hook) = hook
            && hook.0.token_path() == Some(parts.uri.path())
        {
            return auth::token(hook, parts, body).await;
        }
        let mut route = Route::parse(parts.uri.path())?;
        let query = Query::parse(parts.uri.query())?;
        if self.shared.options.namespaces
            && let Some(ns) = query.get("ns")
        {
            route = route.in_namespace(ns)?;
        }
        let authorized;
        let registry = match hook {
            None => self.shared.registry.as_ref(),
            Some(hook) => {
                authorized = auth::check(hook, &route, &query, parts, &self.shared.registry)?;
                authorized.as_ref()
            }
        };
        let ctx = Ctx {
            registry,
            options: &self.shared.options,
            headers: &parts.headers,
            query,
            sessions: &self.shared.sessions,
        };
        let method = parts.method.as_str();
        let head = method == "HEAD";
        match (&route, method) {
            (Route::Base, "GET" | "HEAD") => Reply::new(StatusCode::OK)
                .header(CONTENT_TYPE, "application/json")
                .body(body::full("{}"))
                .done(),
            (Route::Catalog, "GET" | "HEAD") => lists::catalog(&ctx).await,
            (Route::Blob { repo, digest }, "GET" | "HEAD") => {
                blobs::get(&ctx, repo, digest, head).await
            }
            (Route::Blob { repo, digest }, "DELETE") => blobs::delete(&ctx, repo, digest).await,
            (Route::UploadStart { repo }, "POST") => uploads::start(&ctx, repo, body).await,
            (Route::Upload { repo, id }, "PATCH") => uploads::patch(&ctx, repo, id, body).await,
            (Route::Upload { repo, id }, "PUT") => uploads::finish(&ctx, repo, id, body).await,
            (Route::Upload { repo, id }, "GET") => uploads::status(&ctx, repo, id).await,
            (Route::Upload { repo, id }, "DELETE") => uploads::cancel(&ctx, repo, id).await,
            (Route::Manifest { repo, reference }, "GET" | "HEAD") => {
                manifests::get(&ctx, repo, reference, head).await
            }
            (Route::Manifest { repo, reference }, "PUT") => {
                manifests::put(&ctx, repo, reference, body).await
            }
            (Route::Manifest { repo, reference }, "DELETE") => {
                manifests::delete(&ctx, repo, reference).await
            }
            (Route::ManifestBadRef { repo, reference }, "GET" | "HEAD" | "DELETE") => {
                Err(manifests::unknown_reference(repo, reference).into())
            }
            (Route::ManifestBadRef { reference, .. }, "PUT") => {
                Err(manifests::invalid_reference(reference).into())
            }
            (Route::Tags { repo }, "GET" | "HEAD") => lists::tags(&ctx, repo).await,
            (Route::Referrers { repo, subject }, "GET" | "HEAD") => {
                lists::referrers(&ctx, repo, subject).await
            }
            _ => Err(Error::unsupported(&format!("{method} on {}", route_name(&route))).into()),
        }
    }
}

/// A route's name for messages.
fn route_name(route: &Route) -> String {
    let kind = match route {
        Route::Base => return "/v2/".to_owned(),
        Route::Catalog => return "/v2/_catalog".to_owned(),
        Route::Blob { .. } => "blobs",
        Route::UploadStart { .. } | Route::Upload { .. } => "blob uploads",
        Route::Manifest { .. } | Route::ManifestBadRef { .. } => "manifests",
        Route::Tags { .. } => "tags",
        Route::Referrers { .. } => "referrers",
    };
    match route.repo() {
        Some(repo) => format!("the {kind} of {repo}"),
        None => kind.to_owned(),
    }
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// The future a [`RegistryService`] returns for one request.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<B> hyper::service::Service<Request<B>> for RegistryService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<B>) -> ResponseFuture {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<B> tower_service::Service<Request<B>> for RegistryService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        hyper::service::Service::call(self, request)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Empty};

    use super::*;

    struct Nothing;

    #[oci_core::async_trait]
    impl Registry for Nothing {}

    #[tokio::test]
    async fn works_as_a_tower_service_in_process() {
        let mut service = RegistryService::new(Arc::new(Nothing));
        let request = Request::get("/v2/").body(Empty::<Bytes>::new()).unwrap();
        let response = tower_service::Service::call(&mut service, request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{}");
    }

    #[tokio::test]
    async fn unsupported_operations_keep_their_code() {
        let service = RegistryService::new(Arc::new(Nothing));
        let request = Request::get("/v2/a/tags/list")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = service.handle(request).await;
        assert_eq!(response.status(), 405);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let err = oci_core::ErrorBody::parse_response(405, &body, oci_core::ErrorCode::Unknown);
        assert!(err.is(oci_core::ErrorCode::Unsupported));
    }
}
