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
