//! The whole suite over HTTP through wrapper stacks: a proxy (oci-client to
//! an upstream server), unify in both read policies, debug, immutable, and
//! the on-disk layout store.

use oci_conformance::{Config, Target, store_target};

fn config() -> Config {
    let mut config = Config::from_env();
    config.root_url = None;
    config
}

mod proxy {
    use super::*;

    /// Our server over a client to a second server of ours (in memory).
    pub async fn target() -> Target {
        let upstream =
            oci_server::TestServer::start(std::sync::Arc::new(oci_mem::MemRegistry::new())).await;
        let spec = format!("proxy:{}", upstream.url());
        let registry = oci_conformance::store::open_store(&spec)
            .await
            .expect("proxy store");
        let front = oci_server::TestServer::start(registry).await;
        let url = front.url();
        Target::new(&url, config(), Some(Box::new((upstream, front))))
    }

    oci_conformance::all_conformance_tests!(target);
}

mod unify_sequential {
    use super::*;

    pub async fn target() -> Target {
        store_target("unify:mem,mem", config()).await
    }

    oci_conformance::all_conformance_tests!(target);
}

mod unify_concurrent {
    use super::*;

    pub async fn target() -> Target {
        store_target("unify-concurrent:mem,mem", config()).await
    }

    oci_conformance::all_conformance_tests!(target);
}

mod debug {
    use super::*;

    pub async fn target() -> Target {
        store_target("debug:mem", config()).await
    }

    oci_conformance::all_conformance_tests!(target);
}

mod layout {
    use super::*;

    pub async fn target() -> Target {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = format!("layout:{}", dir.path().display());
        let registry = oci_conformance::store::open_store(&spec)
            .await
            .expect("layout store");
        let server = oci_server::TestServer::start(registry).await;
        let url = server.url();
        Target::new(&url, config(), Some(Box::new((server, dir))))
    }

    oci_conformance::all_conformance_tests!(target);
}

/// The pull workflow through `readonly:` over a store seeded behind it,
/// and every write answered 403 DENIED.
mod readonly {
    use std::sync::Arc;

    use oci_core::ErrorCode;

    use super::*;

    pub async fn target() -> Target {
        let store = oci_mem::MemRegistry::new();
        let writable = oci_server::TestServer::start(Arc::new(store.clone())).await;
        let read_only =
            oci_server::TestServer::start(Arc::new(oci_filter::ReadOnly::new(Arc::new(store))))
                .await;
        let url = read_only.url();
        let seed = writable.url();
        Target::new(&url, config(), Some(Box::new((writable, read_only)))).seeded_through(&seed)
    }

    oci_conformance::conformance_tests!(target;
        pull::pull_api_root,
        pull::pull_manifest_head_by_tag,
        pull::pull_manifest_get_by_tag,
        pull::pull_manifest_head_by_digest,
        pull::pull_manifest_get_by_digest,
        pull::pull_index_by_tag,
        pull::pull_blob_head,
        pull::pull_blob_get,
        pull::pull_blob_range,
        pull::pull_blob_range_open_ended,
        pull::pull_blob_range_unsatisfiable,
        pull::pull_blob_unknown,
        pull::pull_manifest_unknown_tag,
        pull::pull_manifest_unknown_digest,
        pull::pull_unknown_repository,
    );

    #[tokio::test]
    async fn writes_and_deletes_are_denied() {
        let t = target().await;
        let image = oci_conformance::seed::seeded_image(&t, "kept").await;
        let repo = t.repo();
        let started = t
            .client()
            .post(&oci_conformance::routes::uploads(repo))
            .send()
            .await;
        started.expect_error(403, ErrorCode::Denied);
        let put = t
            .client()
            .put(&oci_conformance::routes::manifest(repo, "other"))
            .header(http::header::CONTENT_TYPE, image.manifest.media_type())
            .body(image.manifest.bytes.clone())
            .send()
            .await;
        put.expect_error(403, ErrorCode::Denied);
        let digest = image.manifest.digest().to_string();
        let deleted = t
            .client()
            .delete(&oci_conformance::routes::manifest(repo, &digest))
            .send()
            .await;
        deleted.expect_error(403, ErrorCode::Denied);
        // Still there.
        t.client()
            .get(&oci_conformance::routes::manifest(repo, "kept"))
            .send()
            .await
            .expect_status(200);
    }
}
