//! `?ns=HOST` with namespaces on: the registry sees `HOST/NAME`, in the
//! form `RepoName::in_namespace` gives; off, `ns` is ignored.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use oci_core::{ErrorBody, ErrorCode, RepoName};
use oci_server::{RegistryService, ServerOptions};

async fn get(service: &RegistryService, uri: &str) -> (u16, Bytes) {
    let request = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    let response = service.handle(request).await;
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn ns_names_the_repository_within_its_registry() {
    let store = Arc::new(oci_mem::MemRegistry::new());
    let qualified: RepoName = "127.0.0.1_5000/team/app".parse().unwrap();
    let tag = "v1".parse().unwrap();
    let image = oci_core::testkit::push_image(store.as_ref(), &qualified, Some(&tag)).await;
    let on = RegistryService::with_options(store.clone(), ServerOptions::new().namespaces(true));
    let off = RegistryService::new(store);

    let (status, body) = get(&on, "/v2/team/app/manifests/v1?ns=127.0.0.1:5000").await;
    assert_eq!(status, 200);
    assert_eq!(body, image.manifest.bytes);
    let layer = &image.layers[0].digest;
    let (status, body) = get(
        &on,
        &format!("/v2/team/app/blobs/{layer}?ns=127.0.0.1%3A5000"),
    )
    .await;
    assert_eq!((status, body), (200, image.layer_bytes[0].clone()));
    // The same repository by its full name, without `ns`.
    let (status, _) = get(&on, "/v2/127.0.0.1_5000/team/app/manifests/v1").await;
    assert_eq!(status, 200);
    // Another registry's repository of the same name is another repository.
    let (status, _) = get(&on, "/v2/team/app/manifests/v1?ns=example.com").await;
    assert_eq!(status, 404);

    // An IPv6 upstream is a registry too: not this one.
    let (status, _) = get(&on, "/v2/team/app/manifests/v1?ns=%5B%3A%3A1%5D%3A5000").await;
    assert_eq!(status, 404);

    let (status, body) = get(&on, "/v2/team/app/manifests/v1?ns=not%20a%20host").await;
    assert_eq!(status, 400);
    let err = ErrorBody::parse_response(status, &body, ErrorCode::Unknown);
    assert!(err.is(ErrorCode::NameInvalid), "{err}");

    let (status, _) = get(&off, "/v2/team/app/manifests/v1?ns=127.0.0.1:5000").await;
    assert_eq!(status, 404, "without namespaces, ns is ignored");
}
