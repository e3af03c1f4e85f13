//! The shared behavioural suite: one `async fn` per behaviour of a
//! [`Registry`], each panicking with a clear message when the registry
//! under test misbehaves. Every implementation and wrapper stack in the
//! workspace runs it from its own tests.
//!
//! Each behaviour works in its own fresh repositories
//! (`testkit/<behaviour>-<random hex>`), so behaviours can run at the same
//! time against one shared registry, including a real one reached over
//! HTTP, and be re-run without cleaning up. A registry that cannot do
//! everything (no tag deletion, no catalog) runs the behaviours it
//! supports; one that can runs [`run_all`].
//!
//! Expectations on errors are exact, with one allowance: something looked
//! up in a repository that does not exist may be answered `NAME_UNKNOWN`
//! or the resource's own code (`BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`).
//!
//! ```no_run
//! # async fn demo(registry: &dyn oci_core::Registry) {
//! use oci_core::testkit;
//!
//! testkit::push_pull_blob(registry).await;
//! testkit::referrers(registry).await;
//! // Or everything, for a registry that supports every operation:
//! testkit::run_all(registry).await;
//! # }
//! ```
//!
//! # CNCF distribution 2.8 (Debian's `docker-registry`)
//!
//! Probed over plain HTTP, it cannot pass these behaviours, so a suite
//! against it leaves them out: `tag_pagination` (tags come unsorted, `n`
//! and `last` are ignored), `manifest_sha512` (a sha512 manifest digest is
//! refused), `delete_tag` (a tag cannot be deleted alone), and the
//! referrers behaviours (no referrers API; a client may fall back to the
//! tag schema). Two answers need mapping by an HTTP client for the rest to
//! pass: an unknown upload id is `BLOB_UPLOAD_INVALID` with status 404
//! (meaning `BLOB_UPLOAD_UNKNOWN`), and a mount of a blob the source lacks
//! starts an upload (202) instead of failing (meaning `BLOB_UNKNOWN`).
//!
//! The fixtures ([`push_image`], [`push_index`], [`build_artifact`], …)
//! are public so that other tests can build content the same way.

mod blobs;
mod fixtures;
pub mod forwarding;
mod lists;
mod manifests;
pub mod mutate;
mod uploads;

pub use blobs::{
    blob_body_error, blob_digest_mismatch, blob_range, blob_size_mismatch, delete_blob, mount_blob,
    push_pull_blob,
};
pub use fixtures::{
    ARTIFACT_ANNOTATION, Artifact, Image, ImageConfigExtra, ImageOptions, Index, PushedImage,
    PushedIndex, build_artifact, build_image, build_index, image_config, image_of, index_of,
    platforms, push_bytes, push_docker_image, push_image, push_index, random_bytes,
};
pub use lists::{catalog, delete_referrer, referrers, referrers_subject_missing, tag_pagination};
pub use manifests::{
    delete_manifest, delete_tag, index_children, manifest_digest_mismatch, manifest_invalid,
    manifest_missing_blobs, manifest_multi_tag, manifest_push_pull, manifest_sha512, retag,
    unknown_things,
};
pub use uploads::{
    chunked_commit_wrong_digest, chunked_upload, chunked_upload_cancel, chunked_upload_large,
    chunked_upload_resume, upload_unknown_id,
};

use crate::error::{ErrorCode, Result};
use crate::reference::{RepoName, Tag};
use crate::registry::Registry;

/// Defines one `#[tokio::test]` per behaviour, so that a failure names
/// the behaviour that failed.
///
/// The first argument is an expression evaluated afresh in each test (it
/// may `.await`) that yields a concrete [`Registry`]. Without a list, every
/// behaviour is defined; after a `;`, only those named. The calling crate
/// needs `tokio` (with `macros` and `rt`) among its dev-dependencies.
///
/// ```no_run
/// use oci_core::Registry;
///
/// // A registry that supports only what the trait's defaults give.
/// struct Bare;
/// #[oci_core::async_trait]
/// impl Registry for Bare {}
///
/// // In tests/testkit.rs: only the behaviours the registry supports.
/// oci_core::testkit_tests!(Bare; unknown_things);
/// // A complete registry takes all of them: `testkit_tests!(MemRegistry::new());`
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! testkit_tests {
    ($make:expr) => {
        // Keep in step with `run_all`.
        $crate::testkit_tests!(
            $make;
            push_pull_blob,
            blob_digest_mismatch,
            blob_size_mismatch,
            blob_body_error,
            blob_range,
            chunked_upload,
            chunked_upload_resume,
            chunked_upload_cancel,
            upload_unknown_id,
            chunked_commit_wrong_digest,
            chunked_upload_large,
            mount_blob,
            manifest_push_pull,
            manifest_multi_tag,
            manifest_missing_blobs,
            manifest_invalid,
            manifest_digest_mismatch,
            index_children,
            manifest_sha512,
            referrers,
            referrers_subject_missing,
            tag_pagination,
            catalog,
            delete_blob,
            delete_manifest,
            delete_tag,
            delete_referrer,
            retag,
            unknown_things,
        );
    };
    ($make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let registry = $make;
                $crate::testkit::$name(&registry).await;
            }
        )+
    };
}

/// Runs every behaviour, one after another.
pub async fn run_all(reg: &dyn Registry) {
    push_pull_blob(reg).await;
    blob_digest_mismatch(reg).await;
    blob_size_mismatch(reg).await;
    blob_body_error(reg).await;
    blob_range(reg).await;
    chunked_upload(reg).await;
    chunked_upload_resume(reg).await;
    chunked_upload_cancel(reg).await;
    upload_unknown_id(reg).await;
    chunked_commit_wrong_digest(reg).await;
    chunked_upload_large(reg).await;
    mount_blob(reg).await;
    manifest_push_pull(reg).await;
    manifest_multi_tag(reg).await;
    manifest_missing_blobs(reg).await;
    manifest_invalid(reg).await;
    manifest_digest_mismatch(reg).await;
    index_children(reg).await;
    manifest_sha512(reg).await;
    referrers(reg).await;
    referrers_subject_missing(reg).await;
    tag_pagination(reg).await;
    catalog(reg).await;
    delete_blob(reg).await;
    delete_manifest(reg).await;
    delete_tag(reg).await;
    delete_referrer(reg).await;
    retag(reg).await;
    unknown_things(reg).await;
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for b in random_bytes(bytes) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A repository name no one has used: `testkit/<behaviour>-<random hex>`.
pub fn fresh_repo(behaviour: &str) -> RepoName {
    let name = format!("testkit/{behaviour}-{}", random_hex(8));
    name.parse()
        .unwrap_or_else(|e| panic!("testkit: bad repository name {name:?}: {e}"))
}

/// A tag from a literal the suite knows to be valid.
pub fn tag(name: &str) -> Tag {
    name.parse()
        .unwrap_or_else(|e| panic!("testkit: bad tag {name:?}: {e}"))
}

/// The value of `result`, or a panic saying what failed.
#[track_caller]
pub fn must<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: failed with {err}"),
    }
}

/// Panics unless `result` is an error with exactly `code`.
#[track_caller]
pub fn expect_code<T>(result: Result<T>, code: ErrorCode, what: &str) {
    match result {
        Ok(_) => panic!("{what}: expected {code}, but it succeeded"),
        Err(err) if err.is(code) => {}
        Err(err) => panic!("{what}: expected {code}, got {err}"),
    }
}

/// Panics unless `result` is "not found": the resource's own code `own`,
/// or `NAME_UNKNOWN` (a registry may answer either when the repository
/// does not exist, or no longer holds anything).
#[track_caller]
pub fn expect_not_found<T>(result: Result<T>, own: ErrorCode, what: &str) {
    match result {
        Ok(_) => panic!("{what}: expected {own} or NAME_UNKNOWN, but it succeeded"),
        Err(err) if err.is(own) || err.is(ErrorCode::NameUnknown) => {}
        Err(err) => panic!("{what}: expected {own} or NAME_UNKNOWN, got {err}"),
    }
}
