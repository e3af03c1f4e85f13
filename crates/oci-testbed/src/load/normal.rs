//! The normal client of the soak: an image workflow, every request timed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oci_core::{Digest, media};

use super::{Latencies, location_path, with_query};

/// The normal client: an image workflow over keep-alive connections,
/// each request timed and its answer checked.
pub struct Normal {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Each request made: what it was and how long it took.
    pub latencies: Vec<(&'static str, Duration)>,
    /// Each request that failed or was answered other than expected.
    pub errors: Vec<String>,
}

impl Normal {
    /// A client of the registry at `addr`.
    pub fn new(addr: SocketAddr) -> Normal {
        Normal {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            latencies: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Sends one request, times it, and checks its status.
    async fn send(
        &mut self,
        what: &'static str,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        expect: u16,
    ) -> Result<Response<Bytes>, ()> {
        let mut req = Request::builder().method(method).uri(format!(
            "{}{}",
            self.base,
            location_path(target)
        ));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            self.errors.push(format!("{what} {target}: {e}"));
        })?;
        let started = Instant::now();
        let answer = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>(Response::from_parts(parts, body))
        }
        .await;
        self.latencies.push((what, started.elapsed()));
        match answer {
            Ok(resp) if resp.status().as_u16() == expect => Ok(resp),
            Ok(resp) => {
                self.errors.push(format!(
                    "{what} {target}: {} {}",
                    resp.status(),
                    String::from_utf8_lossy(resp.body())
                ));
                Err(())
            }
            Err(e) => {
                self.errors.push(format!("{what} {target}: {e}"));
                Err(())
            }
        }
    }

    fn location(&mut self, what: &str, resp: &Response<Bytes>) -> Result<String, ()> {
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(l) => Ok(location_path(l).to_owned()),
            None => {
                self.errors.push(format!("{what}: no Location"));
                Err(())
            }
        }
    }

    /// Pushes `blob` to `repo`: a POST opening an upload, then one PUT
    /// with the whole blob and its digest (what every registry supports);
    /// false (and an error noted) if it was not stored.
    pub async fn push_blob(&mut self, repo: &str, blob: Bytes) -> bool {
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let Ok(started) = self
            .send(
                "POST upload",
                Method::POST,
                &uploads,
                &[],
                Bytes::new(),
                202,
            )
            .await
        else {
            return false;
        };
        let Ok(location) = self.location("POST upload", &started) else {
            return false;
        };
        let target = with_query(&location, "digest", &Digest::sha256(&blob).to_string());
        let octets = [("content-type", "application/octet-stream")];
        self.send("PUT monolithic", Method::PUT, &target, &octets, blob, 201)
            .await
            .is_ok()
    }

    /// One round: a blob pushed in two chunks, a config pushed whole, an
    /// image manifest naming both, then the manifest, blob and tags read
    /// back and compared. Ten requests when all goes well.
    pub async fn round(&mut self, round: usize) {
        let _ = self.try_round(round).await;
    }

    async fn try_round(&mut self, round: usize) -> Result<(), ()> {
        let repo = format!("soak/app{}", round % 4);
        let layer = Bytes::from(format!("layer {round} ").repeat(4096));
        let digest = Digest::sha256(&layer);
        let octets = [("content-type", "application/octet-stream")];
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let started = self
            .send(
                "POST upload",
                Method::POST,
                &uploads,
                &[],
                Bytes::new(),
                202,
            )
            .await?;
        let location = self.location("POST upload", &started)?;
        let half = layer.len() / 2;
        let patched = self
            .send(
                "PATCH chunk",
                Method::PATCH,
                &location,
                &octets,
                layer.slice(..half),
                202,
            )
            .await?;
        let location = self.location("PATCH chunk", &patched)?;
        let commit = with_query(&location, "digest", &digest.to_string());
        self.send(
            "PUT commit",
            Method::PUT,
            &commit,
            &octets,
            layer.slice(half..),
            201,
        )
        .await?;
        let config = Bytes::from(format!("{{\"round\":{round}}}"));
        let config_digest = Digest::sha256(&config);
        if !self.push_blob(&repo, config.clone()).await {
            return Err(());
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{digest}","size":{}}}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            config.len(),
            media::OCI_LAYER,
            layer.len()
        );
        let manifest_path = format!("/v2/{repo}/manifests/r{round}");
        self.send(
            "PUT manifest",
            Method::PUT,
            &manifest_path,
            &[("content-type", media::OCI_MANIFEST)],
            Bytes::from(manifest.clone()),
            201,
        )
        .await?;
        let got = self
            .send(
                "GET manifest",
                Method::GET,
                &manifest_path,
                &[("accept", media::OCI_MANIFEST)],
                Bytes::new(),
                200,
            )
            .await?;
        if got.body() != manifest.as_bytes() {
            self.errors
                .push(format!("GET {manifest_path}: other bytes than pushed"));
        }
        let blob_path = format!("/v2/{repo}/blobs/{digest}");
        self.send(
            "HEAD blob",
            Method::HEAD,
            &blob_path,
            &[],
            Bytes::new(),
            200,
        )
        .await?;
        let got = self
            .send("GET blob", Method::GET, &blob_path, &[], Bytes::new(), 200)
            .await?;
        if got.body() != &layer {
            self.errors
                .push(format!("GET {blob_path}: other bytes than pushed"));
        }
        let tags = format!("/v2/{repo}/tags/list");
        self.send("GET tags", Method::GET, &tags, &[], Bytes::new(), 200)
            .await?;
        Ok(())
    }

    /// The figures of every request together.
    pub fn summary(&self) -> Latencies {
        Latencies::of(self.latencies.iter().map(|(_, t)| *t).collect())
    }

    /// The figures of each kind of request, then of all, one a line.
    pub fn report(&self) -> String {
        let mut kinds: Vec<&str> = self.latencies.iter().map(|(k, _)| *k).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut out = String::new();
        for kind in kinds {
            let times = self
                .latencies
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, t)| *t)
                .collect();
            out.push_str(&format!("{kind:>16}: {}\n", Latencies::of(times)));
        }
        out.push_str(&format!("{:>16}: {}\n", "all", self.summary()));
        out
    }
}
