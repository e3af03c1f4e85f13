//! The hook for authentication and authorization: an [`Authorize`]
//! implementation, set with `ServerOptions::authorizer`, sees what each
//! request needs before any store call and answers the registry view the
//! caller may use, or the refusal to send. It may also serve a token
//! endpoint beside `/v2/`.
//!
//! Without an authorizer nothing of this runs.

use std::fmt;
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use oci_core::{BlobStream, Error, Registry, RepoName};

use crate::body;
use crate::response::{Answer, Failure, Reply};
use crate::routes::{Query, Route};

/// The largest token request body read.
const MAX_TOKEN_FORM: usize = 64 * 1024;

/// An action on a repository, as the distribution token spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Reading manifests, blobs, tags or referrers.
    Pull,
    /// Uploading blobs, pushing manifests (also any upload session call).
    Push,
    /// Deleting manifests, tags or blobs.
    Delete,
}

/// What a request needs, as an [`Authorize`] sees it.
#[derive(Debug)]
pub struct AuthRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request headers (`Authorization` among them).
    pub headers: &'a HeaderMap,
    /// The access needed, one entry per repository and action; empty for
    /// `/v2/`.
    pub needs: Vec<(&'a RepoName, Action)>,
    /// Whether the request lists the catalog.
    pub catalog: bool,
}

/// A refusal: the spec error (401 `UNAUTHORIZED`, 403 `DENIED`, ...) and
/// the `WWW-Authenticate` challenge to send with a 401.
#[derive(Debug)]
pub struct Rejection {
    /// The error; its code and status decide the response.
    pub error: Error,
    /// The challenge, if any.
    pub challenge: Option<String>,
}

/// Decides who may do what. Called for every request once its route is
/// parsed and before any store call.
pub trait Authorize: Send + Sync + 'static {
    /// `Ok` with the registry the request's handler uses (typically
    /// `registry` wrapped so that each call is checked against the caller's
    /// rights, which also filters the catalog), or the refusal.
    fn authorize(
        &self,
        request: &AuthRequest<'_>,
        registry: &Arc<dyn Registry>,
    ) -> Result<Arc<dyn Registry>, Rejection>;

    /// The path of a token endpoint this authorizer serves (e.g. `/token`).
    fn token_path(&self) -> Option<&str> {
        None
    }

    /// Answers a request to [`Authorize::token_path`]: the JSON to send
    /// with 200, or the refusal. `query` is the raw query string and `body`
    /// a POST's form.
    fn token(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, Rejection> {
        let _ = (query, headers, body);
        Err(Rejection {
            error: Error::unsupported(&format!("{method} on the token endpoint")),
            challenge: None,
        })
    }
}

/// An [`Authorize`] as the options hold it.
#[derive(Clone)]
pub(crate) struct AuthHook(pub(crate) Arc<dyn Authorize>);

impl fmt::Debug for AuthHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorize")
    }
}

impl From<Rejection> for Failure {
    fn from(rejection: Rejection) -> Failure {
        let failure = Failure::from(rejection.error);
        match rejection.challenge {
            Some(c) => failure.with_header(WWW_AUTHENTICATE, &c),
            None => failure,
        }
    }
}

/// Checks a routed request; the registry its handler uses.
pub(crate) fn check(
    hook: &AuthHook,
    route: &Route,
    query: &Query,
    parts: &http::request::Parts,
    registry: &Arc<dyn Registry>,
) -> Result<Arc<dyn Registry>, Failure> {
    let from = match route {
        Route::UploadStart { .. } if query.get("mount").is_some() => {
            query.get("from").and_then(|f| f.parse::<RepoName>().ok())
        }
        _ => None,
    };
    let mut request = AuthRequest {
        method: &parts.method,
        headers: &parts.headers,
        needs: Vec::new(),
        catalog: matches!(route, Route::Catalog),
    };
    if let Some(repo) = route.repo() {
        let action = match (route, parts.method.as_str()) {
            (Route::UploadStart { .. } | Route::Upload { .. }, _) => Action::Push,
            (_, "GET" | "HEAD") => Action::Pull,
            (_, "DELETE") => Action::Delete,
            _ => Action::Push,
        };
        request.needs.push((repo, action));
    }
    if let Some(from) = &from {
        request.needs.push((from, Action::Pull));
    }
    Ok(hook.0.authorize(&request, registry)?)
}

/// Serves the token endpoint.
pub(crate) async fn token(
    hook: &AuthHook,
    parts: &http::request::Parts,
    body: BlobStream,
) -> Answer {
    let form = if parts.method == Method::POST {
        body::read_capped(body, MAX_TOKEN_FORM).await?
    } else {
        bytes::Bytes::new()
    };
    let json = hook
        .0
        .token(&parts.method, parts.uri.query(), &parts.headers, &form)?;
    Reply::new(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(body::full(json))
        .done()
}
