//! The project's conformance suite (distribution spec v1.1, over HTTP)
//! against `oci-server` serving a `LayoutRegistry`, one fresh store and
//! server per check.

use std::sync::Arc;

use oci_layout::LayoutRegistry;

async fn target() -> oci_conformance::Target {
    let dir = tempfile::tempdir().expect("temporary directory");
    let registry = LayoutRegistry::open(dir.path()).await.expect("open");
    let server = oci_server::TestServer::start(Arc::new(registry)).await;
    let mut config = oci_conformance::Config::from_env();
    // Always this server, whatever OCI_ROOT_URL says.
    config.root_url = None;
    // The server stops, then the directory goes, when the target is dropped.
    oci_conformance::Target::new(&server.url(), config, Some(Box::new((server, dir))))
}

oci_conformance::all_conformance_tests!(target);
