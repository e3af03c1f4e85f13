//! The stores the conformance server can run over, named by a `--store`
//! spec, so the suite can run through any stack of wrappers over HTTP:
//!
//! | spec | registry |
//! | --- | --- |
//! | `mem` | in memory |
//! | `layout:DIR` | on disk, OCI image layout under `DIR` |
//! | `objstore:URL` | an object store: `s3://BUCKET/PREFIX` (settings from `AWS_*` variables), `file:///PATH`, `memory://` |
//! | `proxy:URL` | an HTTP client to the upstream registry at `URL` |
//! | `debug:SPEC` | `SPEC`, every call traced (`RUST_LOG=oci_debug=debug`) |
//! | `readonly:SPEC` | `SPEC`, writes and deletes `DENIED` |
//! | `immutable:SPEC` | `SPEC`, tags never move, no deletes |
//! | `unify:SPEC,SPEC` | two registries as one, read sequentially |
//! | `unify-concurrent:SPEC,SPEC` | the same, reading both at once |
//!
//! In `unify…:A,B` the first comma splits, so only `B` may itself hold a
//! comma (`unify:mem,unify:mem,mem` nests on the right).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use oci_core::Registry;

/// A boxed future of an opened store.
type Opening<'a> = Pin<Box<dyn Future<Output = Result<Arc<dyn Registry>, String>> + Send + 'a>>;

/// Opens the registry a `--store` spec names.
pub fn open_store(spec: &str) -> Opening<'_> {
    Box::pin(async move {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let store: Arc<dyn Registry> = match (kind, rest) {
            ("mem", "") => Arc::new(oci_mem::MemRegistry::new()),
            ("layout", dir) if !dir.is_empty() => Arc::new(
                oci_layout::LayoutRegistry::open(dir)
                    .await
                    .map_err(|e| format!("cannot open layout store {dir}: {e}"))?,
            ),
            ("objstore", url) if !url.is_empty() => Arc::new(
                oci_objstore::ObjRegistry::open(url)
                    .await
                    .map_err(|e| format!("cannot open object store {url}: {e}"))?,
            ),
            ("proxy", url) if !url.is_empty() => Arc::new(proxy(url)?),
            ("debug", inner) => Arc::new(oci_debug::Traced::new(open_store(inner).await?)),
            ("readonly", inner) => Arc::new(oci_filter::ReadOnly::new(open_store(inner).await?)),
            ("immutable", inner) => Arc::new(oci_filter::Immutable::new(open_store(inner).await?)),
            ("unify" | "unify-concurrent", pair) => {
                let (a, b) = pair
                    .split_once(',')
                    .ok_or_else(|| format!("{kind} needs two stores: {kind}:A,B"))?;
                let policy = if kind == "unify" {
                    oci_unify::ReadPolicy::Sequential
                } else {
                    oci_unify::ReadPolicy::Concurrent
                };
                Arc::new(oci_unify::Unify::new(
                    open_store(a).await?,
                    open_store(b).await?,
                    policy,
                ))
            }
            _ => {
                return Err(format!(
                    "unknown store {spec:?} (supported: mem, layout:DIR, objstore:URL, proxy:URL, debug:S, readonly:S, \
                     immutable:S, unify:S,S, unify-concurrent:S,S)"
                ));
            }
        };
        Ok(store)
    })
}

/// An HTTP client to `url` (`http://host:port` or `https://host:port`).
fn proxy(url: &str) -> Result<oci_client::Client, String> {
    let (scheme, host) = match url.split_once("://") {
        Some(("http", host)) => (oci_client::Scheme::Http, host),
        Some(("https", host)) => (oci_client::Scheme::Https, host),
        _ => {
            return Err(format!(
                "proxy:{url}: give the upstream as http://HOST:PORT or https://HOST:PORT"
            ));
        }
    };
    let host = host.trim_end_matches('/');
    let options = oci_client::ClientOptions {
        scheme: Some(scheme),
        auth: oci_client::AuthOptions::Anonymous,
        ..oci_client::ClientOptions::default()
    };
    oci_client::Client::new(host, options).map_err(|e| format!("proxy:{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn specs_open_or_say_why_not() {
        for ok in [
            "mem",
            "debug:mem",
            "readonly:mem",
            "immutable:mem",
            "unify:mem,mem",
            "unify-concurrent:mem,unify:mem,mem",
            "proxy:http://127.0.0.1:1",
            "objstore:memory://",
        ] {
            assert!(open_store(ok).await.is_ok(), "{ok}");
        }
        for bad in [
            "",
            "disk",
            "unify:mem",
            "proxy:127.0.0.1:5000",
            "layout:",
            "objstore:",
            "objstore:ftp://x",
            "debug:nope",
        ] {
            let err = open_store(bad).await.err().unwrap();
            assert!(!err.is_empty(), "{bad}");
        }
    }
}
