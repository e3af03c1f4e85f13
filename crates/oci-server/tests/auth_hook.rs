//! The authorization hook: what it is asked, that a refusal reaches no
//! store, and the token endpoint it may serve.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use oci_core::{BlobWriter, Descriptor, Digest, Error, ErrorBody, ErrorCode, Registry, RepoName};
use oci_server::{Action, AuthRequest, Authorize, RegistryService, Rejection, ServerOptions};

/// Lets `GET`s through to the store it is given; refuses the rest, and
/// remembers what it was asked.
#[derive(Default)]
struct PullOnly {
    seen: Mutex<Vec<Asked>>,
}

/// What one request asked: its needs and whether it lists the catalog.
type Asked = (Vec<(String, Action)>, bool);

impl Authorize for PullOnly {
    fn authorize(
        &self,
        request: &AuthRequest<'_>,
        registry: &Arc<dyn Registry>,
    ) -> Result<Arc<dyn Registry>, Rejection> {
        let needs = request
            .needs
            .iter()
            .map(|(r, a)| (r.to_string(), *a))
            .collect();
        self.seen.lock().unwrap().push((needs, request.catalog));
        if request.needs.iter().all(|(_, a)| *a == Action::Pull) {
            return Ok(Arc::clone(registry));
        }
        Err(Rejection {
            error: Error::new(ErrorCode::Unauthorized, "log in"),
            challenge: Some("Basic realm=\"test\"".to_owned()),
        })
    }

    fn token_path(&self) -> Option<&str> {
        Some("/auth/token")
    }

    fn token(
        &self,
        method: &Method,
        query: Option<&str>,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, Rejection> {
        Ok(format!(
            "{{\"method\":\"{method}\",\"query\":\"{}\",\"body\":\"{}\"}}",
            query.unwrap_or_default(),
            String::from_utf8_lossy(body)
        )
        .into_bytes())
    }
}

async fn call(
    service: &RegistryService,
    method: &str,
    uri: &str,
    body: &str,
) -> (u16, HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = service.handle(request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// A store whose writes must never be reached.
struct Tripwire;

#[oci_core::async_trait]
impl Registry for Tripwire {
    async fn push_blob_chunked(&self, _: &RepoName) -> oci_core::Result<Box<dyn BlobWriter>> {
        panic!("an upload reached the store")
    }

    async fn mount_blob(
        &self,
        _: &RepoName,
        _: &RepoName,
        _: &Digest,
    ) -> oci_core::Result<Descriptor> {
        panic!("a mount reached the store")
    }

    async fn delete_blob(&self, _: &RepoName, _: &Digest) -> oci_core::Result<()> {
        panic!("a delete reached the store")
    }
}

#[tokio::test]
async fn refusals_carry_the_challenge_and_reach_no_store() {
    let store = Arc::new(Tripwire);
    let hook = Arc::new(PullOnly::default());
    let service =
        RegistryService::with_options(store.clone(), ServerOptions::new().authorizer(hook.clone()));
    let (status, headers, body) = call(&service, "POST", "/v2/a/b/blobs/uploads/", "").await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"test\"");
    let err = ErrorBody::parse_response(status, &body, ErrorCode::Unknown);
    assert!(err.is(ErrorCode::Unauthorized));

    let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (status, _, _) = call(&service, "DELETE", &format!("/v2/a/b/blobs/{digest}"), "").await;
    assert_eq!(status, 401);
    let (status, _, _) = call(&service, "GET", "/v2/a/b/manifests/latest", "").await;
    assert_eq!(
        status, 405,
        "let through to the store, which has no manifests"
    );
    let (status, _, _) = call(
        &service,
        "POST",
        &format!("/v2/a/b/blobs/uploads/?mount={digest}&from=c/d"),
        "",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = call(&service, "GET", "/v2/_catalog", "").await;
    assert_eq!(status, 405, "let through");
    let seen = hook.seen.lock().unwrap().clone();
    let s = |r: &str| r.to_owned();
    assert_eq!(
        seen,
        [
            (vec![(s("a/b"), Action::Push)], false),
            (vec![(s("a/b"), Action::Delete)], false),
            (vec![(s("a/b"), Action::Pull)], false),
            (
                vec![(s("a/b"), Action::Push), (s("c/d"), Action::Pull)],
                false
            ),
            (vec![], true),
        ]
    );
}

#[tokio::test]
async fn serves_the_token_endpoint() {
    let service = RegistryService::with_options(
        Arc::new(oci_mem::MemRegistry::new()),
        ServerOptions::new().authorizer(Arc::new(PullOnly::default())),
    );
    let (status, headers, body) = call(&service, "GET", "/auth/token?scope=x", "").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        &body[..],
        br#"{"method":"GET","query":"scope=x","body":""}"#
    );
    let (_, _, body) = call(&service, "POST", "/auth/token", "grant_type=password").await;
    assert_eq!(
        &body[..],
        br#"{"method":"POST","query":"","body":"grant_type=password"}"#
    );
    // Without an authorizer the path is no endpoint.
    let plain = RegistryService::new(Arc::new(oci_mem::MemRegistry::new()));
    assert_eq!(call(&plain, "GET", "/auth/token", "").await.0, 404);
}
