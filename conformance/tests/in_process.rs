//! The whole suite against this project's server over an in-memory
//! registry, started in-process for every check, in both URL modes: as Go
//! clients follow `Location`s (path percent-decoded), and exactly as sent.

async fn target() -> oci_conformance::Target {
    let mut config = oci_conformance::Config::from_env();
    // This file always tests the in-process server; `external.rs` honours
    // OCI_ROOT_URL.
    config.root_url = None;
    config.url_mode = oci_conformance::UrlMode::Decoding;
    oci_conformance::in_process_target(config).await
}

oci_conformance::all_conformance_tests!(target);

/// The same checks with every URL sent exactly as the server gave it.
mod as_sent {
    async fn target() -> oci_conformance::Target {
        let mut config = oci_conformance::Config::from_env();
        config.root_url = None;
        config.url_mode = oci_conformance::UrlMode::AsSent;
        oci_conformance::in_process_target(config).await
    }

    oci_conformance::all_conformance_tests!(target);
}
