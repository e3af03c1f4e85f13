//! The whole suite against this project's server over an in-memory
//! registry, started in-process for every check.

async fn target() -> oci_conformance::Target {
    let mut config = oci_conformance::Config::from_env();
    // This file always tests the in-process server; `external.rs` honours
    // OCI_ROOT_URL.
    config.root_url = None;
    oci_conformance::in_process_target(config).await
}

oci_conformance::all_conformance_tests!(target);
