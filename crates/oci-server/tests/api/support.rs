//! A loopback server over a MemRegistry and a small HTTP client to poke it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http::{HeaderMap, Method, Request};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oci_core::registry::bytes_stream;
use oci_core::{Digest, Manifest, Registry, RepoName, Tag, media};
use oci_mem::MemRegistry;
use oci_server::{RegistryService, ServerOptions, TestServer};

pub type Body = BoxBody<Bytes, Infallible>;

/// A server over a fresh in-memory registry, and a client for it.
pub struct Harness {
    pub registry: Arc<MemRegistry>,
    pub server: TestServer,
    client: Client<HttpConnector, Body>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a spec error response: status, JSON content type and body
    /// shape `{"errors":[{"code":…,"message":…}]}` with the given code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body {:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json = self.json();
        let errors = json["errors"].as_array().expect("an errors array");
        assert_eq!(errors.len(), 1, "{json}");
        assert_eq!(errors[0]["code"], code, "{json}");
        assert!(errors[0]["message"].is_string(), "{json}");
    }
}

impl Harness {
    /// A server with the default options.
    pub async fn new() -> Harness {
        Harness::with_options(ServerOptions::new()).await
    }

    /// A server with the given options.
    pub async fn with_options(options: ServerOptions) -> Harness {
        Harness::build(options, |mem| mem).await
    }

    /// A server over a wrapper of the in-memory registry.
    pub async fn wrapped(wrap: impl FnOnce(Arc<dyn Registry>) -> Arc<dyn Registry>) -> Harness {
        Harness::build(ServerOptions::new(), wrap).await
    }

    async fn build(
        options: ServerOptions,
        wrap: impl FnOnce(Arc<dyn Registry>) -> Arc<dyn Registry>,
    ) -> Harness {
        let registry = Arc::new(MemRegistry::new());
        let service = RegistryService::with_options(wrap(registry.clone()), options);
        let server = TestServer::start_service(service).await;
        let client = Client::builder(TokioExecutor::new()).build_http();
        Harness {
            registry,
            server,
            client,
        }
    }

    /// Sends a request with a body whose length is known.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let body = Full::new(body.into()).boxed();
        self.send_body(method, path, headers, body).await
    }

    /// Sends a request whose body is streamed in pieces, with no length.
    pub async fn send_chunked(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        pieces: Vec<Bytes>,
    ) -> Resp {
        let frames = stream::iter(pieces.into_iter().map(|p| Ok(Frame::data(p))));
        let body = StreamBody::new(frames).boxed();
        self.send_body(method, path, headers, body).await
    }

    async fn send_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let uri = format!("{}{path}", self.server.url());
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// GET whose answer may break off: the status and body, or how the
    /// exchange failed (before the head or while reading the body).
    pub async fn get_fallible(&self, path: &str) -> std::result::Result<(u16, Bytes), String> {
        let uri = format!("{}{path}", self.server.url());
        let req = Request::get(uri)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap();
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes()))
    }

    /// GET with no body.
    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], Bytes::new()).await
    }

    /// HEAD with no body.
    pub async fn head(&self, path: &str) -> Resp {
        self.send("HEAD", path, &[], Bytes::new()).await
    }

    /// Puts a blob into the registry directly.
    pub async fn blob(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = Digest::sha256(data);
        let data = Bytes::copy_from_slice(data);
        self.registry
            .push_blob(
                &name(repo),
                &digest,
                Some(data.len() as u64),
                bytes_stream(data, 64),
            )
            .await
            .unwrap();
        digest
    }

    /// Puts an image manifest (with its config blob) into the registry
    /// directly, under `tags`; `extra` is spliced into its JSON.
    pub async fn image(&self, repo: &str, tags: &[&str], extra: &str) -> Manifest {
        let config = format!("{{\"tags\":{}}}", tags.len());
        let size = config.len();
        let config = self.blob(repo, config.as_bytes()).await;
        let manifest = Manifest::new(media::OCI_MANIFEST, image_json(&config, size, extra));
        let tags: Vec<Tag> = tags.iter().map(|t| t.parse().unwrap()).collect();
        self.registry
            .push_manifest(&name(repo), &manifest, &tags)
            .await
            .unwrap();
        manifest
    }
}

/// A repository name.
pub fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

/// The JSON of an OCI image manifest with an empty layer list.
pub fn image_json(config: &Digest, size: usize, extra: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":{size}}},"layers":[]{extra}}}"#,
        media::OCI_MANIFEST,
        media::OCI_CONFIG,
    )
}
