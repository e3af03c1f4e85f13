//! The project's black-box conformance suite for the OCI distribution spec
//! v1.1, and the pieces the bundled `oci-conformance-server` binary uses.
//!
//! The suite speaks raw HTTP to a registry and checks status codes,
//! headers and bodies of the spec's four workflows: [`pull`], [`push`],
//! [`discovery`] (content discovery) and [`management`] (content
//! management). Each check is a `pub async fn(&Target)` that panics with a
//! message naming what the registry got wrong; [`conformance_tests!`] turns
//! a list of checks into one `#[tokio::test]` each.
//!
//! Configuration comes from the environment like the official suite:
//! `OCI_ROOT_URL`, `OCI_NAMESPACE`, `OCI_CROSSMOUNT_NAMESPACE`,
//! `OCI_USERNAME`/`OCI_PASSWORD`, `OCI_TEST_PULL`, `OCI_TEST_PUSH`,
//! `OCI_TEST_CONTENT_DISCOVERY`, `OCI_TEST_CONTENT_MANAGEMENT` and
//! `OCI_DELETE_MANIFEST_BEFORE_BLOBS`, and `OCI_DECODE_LOCATION` (`0`
//! follows `Location`s exactly as sent instead of percent-decoding their
//! path as Go clients do; see [`UrlMode`] and [`Config`]).
//!
//! ```no_run
//! # async fn run() {
//! // Run one check against the in-process server (or OCI_ROOT_URL if set).
//! let target = oci_conformance::target_from_env().await;
//! oci_conformance::pull::pull_manifest_get_by_tag(&target).await;
//! # }
//! ```

pub mod client;
pub mod config;
pub mod discovery;
pub mod distribution;
pub mod fixtures;
pub mod management;
pub mod pull;
pub mod push;
pub mod routes;
pub mod seed;
pub mod store;
pub mod target;

use std::sync::Arc;

pub use client::{Client, Response, UrlMode};
pub use config::{Config, Workflow};
pub use distribution::Distribution;
pub use target::Target;

/// A target running this project's server over an in-memory registry,
/// in the current tokio runtime; it stops when the target is dropped.
pub async fn in_process_target(config: Config) -> Target {
    let server = oci_server::TestServer::start(Arc::new(oci_mem::MemRegistry::new())).await;
    let url = server.url();
    Target::new(&url, config, Some(Box::new(server)))
}

/// A target running this project's server over the store a `--store`
/// spec names (see [`store`]), in the current tokio runtime.
pub async fn store_target(spec: &str, config: Config) -> Target {
    let registry = store::open_store(spec)
        .await
        .unwrap_or_else(|e| panic!("cannot open store {spec}: {e}"));
    let server = oci_server::TestServer::start(registry).await;
    let url = server.url();
    Target::new(&url, config, Some(Box::new(server)))
}

/// The target the environment names: `OCI_ROOT_URL` if set, else an
/// in-process server.
pub async fn target_from_env() -> Target {
    let config = Config::from_env();
    match config.root_url.clone() {
        Some(url) => Target::new(&url, config, None),
        None => in_process_target(config).await,
    }
}

/// Generates one `#[tokio::test]` per listed check, each on a fresh target
/// from `$setup` (an async fn returning a [`Target`]). A check whose
/// workflow is switched off by its `OCI_TEST_*` variable says so on stderr
/// and returns.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let target = $setup().await;
                let workflow = $crate::Workflow::of_module(stringify!($module))
                    .expect("checks live in a workflow module");
                if !target.config().enabled(workflow) {
                    eprintln!(
                        "{}: switched off by {}",
                        stringify!($check),
                        workflow.env_var()
                    );
                    return;
                }
                $crate::$module::$check(&target).await;
            }
        )*
    };
}

/// Generates a test for every check of the suite (see [`conformance_tests!`]):
/// the four workflows' macros together.
#[macro_export]
macro_rules! all_conformance_tests {
    ($setup:path) => {
        $crate::pull_conformance_tests!($setup);
        $crate::push_conformance_tests!($setup);
        $crate::discovery_conformance_tests!($setup);
        $crate::management_conformance_tests!($setup);
    };
}

/// Generates a test for every check of the pull workflow (see
/// [`conformance_tests!`]).
#[macro_export]
macro_rules! pull_conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!($setup;
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
            pull::pull_manifest_unknown_tag,
            pull::pull_manifest_unknown_digest,
            pull::pull_blob_unknown,
            pull::pull_unknown_repository,
            pull::pull_manifest_invalid_reference,
            pull::pull_errors_are_spec_json,
        );
    };
}

/// Generates a test for every check of the push workflow (see
/// [`conformance_tests!`]).
#[macro_export]
macro_rules! push_conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!($setup;
            push::push_blob_monolithic,
            push::push_blob_single_post,
            push::push_blob_chunked,
            push::push_blob_chunked_last_in_put,
            push::push_blob_chunk_out_of_order,
            push::push_blob_chunk_out_of_order_first,
            push::push_blob_chunk_repeated,
            push::push_blob_upload_status,
            push::push_blob_upload_resume,
            push::push_blob_upload_id_unreserved,
            push::push_blob_digest_mismatch,
            push::push_blob_sha512,
            push::push_blob_empty,
            push::push_blob_upload_cancel,
            push::push_blob_mount,
            push::push_blob_mount_unknown,
            push::push_blob_mount_without_from,
            push::push_errors_are_spec_json,
            push::push_manifest_by_tag,
            push::push_manifest_by_digest,
            push::push_manifest_sha512,
            push::push_manifest_several_tags,
            push::push_manifest_invalid,
            push::push_manifest_blob_unknown,
            push::push_manifest_digest_mismatch,
            push::push_manifest_with_subject,
            push::push_manifest_with_missing_subject,
            push::push_index,
        );
    };
}

/// Generates a test for every check of the content discovery workflow (see
/// [`conformance_tests!`]).
#[macro_export]
macro_rules! discovery_conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!($setup;
            discovery::discovery_tags_list,
            discovery::discovery_tags_paginated,
            discovery::discovery_tags_last,
            discovery::discovery_tags_n_zero,
            discovery::discovery_tags_last_past_end,
            discovery::discovery_tags_last_not_a_tag,
            discovery::discovery_tags_unknown_repository,
            discovery::discovery_referrers,
            discovery::discovery_referrers_filtered,
            discovery::discovery_referrers_index_artifact,
            discovery::discovery_referrers_unknown_subject,
            discovery::discovery_referrers_unknown_subject_filtered,
            discovery::discovery_referrers_filter_matches_none,
        );
    };
}

/// Generates a test for every check of the content management workflow (see
/// [`conformance_tests!`]).
#[macro_export]
macro_rules! management_conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!($setup;
            management::management_delete_manifest,
            management::management_delete_manifest_untags,
            management::management_delete_tag,
            management::management_delete_unknown_manifest,
            management::management_delete_blobs,
            management::management_delete_unknown_blob,
            management::management_delete_referrer,
            management::management_delete_invalid_reference,
        );
    };
}
