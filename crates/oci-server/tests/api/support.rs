//! A loopback server over a MemRegistry and a small HTTP client to poke it.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http::{Method, Request};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use oci_core::registry::bytes_stream;
use oci_core::{Digest, Manifest, Registry, RepoName, Tag, media};
use oci_mem::MemRegistry;
use oci_server::{RegistryService, ServerOptions, TestServer};
use oci_testbed::raw_http::{Body, RawClient, full};

/// A server over a fresh in-memory registry, and a client for it.
pub struct Harness {
    pub registry: Arc<MemRegistry>,
    pub server: TestServer,
    client: RawClient,
}

/// A response read whole.
pub use oci_testbed::raw_http::Response as Resp;

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
        let client = RawClient::new();
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
        self.send_body(method, path, headers, full(body)).await
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
        let resp = self.client.send(req.body(body).unwrap()).await.unwrap();
        if let Some(e) = &resp.body_error {
            panic!("{}: reading the body failed: {e}", resp.what);
        }
        resp
    }

    /// GET whose answer may break off: the status and body, or how the
    /// exchange failed (before the head or while reading the body).
    pub async fn get_fallible(&self, path: &str) -> std::result::Result<(u16, Bytes), String> {
        let uri = format!("{}{path}", self.server.url());
        let req = Request::get(uri).body(full(Bytes::new())).unwrap();
        let resp = self.client.send(req).await?;
        match resp.body_error {
            Some(e) => Err(e),
            None => Ok((resp.status.as_u16(), resp.body)),
        }
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
