//! The whole suite over HTTP through every stack of the `--store` grammar:
//! `mem`, `layout:DIR`, `proxy:URL` (to our server and to Debian's
//! `docker-registry`), `unify:`, `unify-concurrent:`, `debug:`, `immutable:`
//! (with its refusals) and `readonly:` (the pull workflow, with its
//! refusals). Every check follows `Location`s with their path
//! percent-decoded, as Go clients do, whatever `OCI_DECODE_LOCATION` says
//! (`tests/in_process.rs` runs both modes).

use oci_conformance::{Config, Target, store_target};

fn config() -> Config {
    let mut config = Config::from_env();
    config.root_url = None;
    config.url_mode = oci_conformance::UrlMode::Decoding;
    config
}

/// The push checks that pass through a proxy to `docker-registry`: all but
/// `push_manifest_sha512` (distribution 2.8 hashes manifests with sha256
/// only; asserted in `proxy_distribution`).
macro_rules! push_checks_docker_registry_passes {
    ($setup:path) => {
        oci_conformance::conformance_tests!($setup;
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

mod mem {
    use super::*;

    pub async fn target() -> Target {
        store_target("mem", config()).await
    }

    oci_conformance::all_conformance_tests!(target);
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

    oci_conformance::pull_conformance_tests!(target);

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

/// Our server over a client to Debian's `docker-registry` (distribution
/// 2.8): upload ids carry distribution's signed session URLs, so this is
/// where mangled ids showed first. The client makes up for most of what
/// distribution lacks (tag order and pages, referrers); what it cannot is
/// asserted below.
mod proxy_distribution {
    use oci_conformance::{pull, push, routes, seed};
    use oci_core::{Algorithm, Digest, ErrorCode};

    use super::*;

    pub async fn target() -> Target {
        let upstream = oci_conformance::distribution::start()
            .await
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let spec = format!("proxy:{}", upstream.url());
        let registry = oci_conformance::store::open_store(&spec)
            .await
            .expect("proxy store");
        let front = oci_server::TestServer::start(registry).await;
        let url = front.url();
        Target::new(&url, config(), Some(Box::new((upstream, front))))
    }

    oci_conformance::pull_conformance_tests!(target);
    oci_conformance::discovery_conformance_tests!(target);
    push_checks_docker_registry_passes!(target);
    oci_conformance::conformance_tests!(target;
        management::management_delete_manifest,
        management::management_delete_manifest_untags,
        management::management_delete_unknown_manifest,
        management::management_delete_blobs,
        management::management_delete_unknown_blob,
        management::management_delete_referrer,
        management::management_delete_invalid_reference,
    );

    /// Distribution hashes manifests with sha256 only; its DIGEST_INVALID
    /// comes through unchanged.
    #[tokio::test]
    async fn push_manifest_sha512() {
        let t = target().await;
        let image = oci_conformance::fixtures::Image::random();
        for blob in image.blobs() {
            seed::push_blob(&t, t.repo(), blob).await;
        }
        let digest = Digest::of(Algorithm::Sha512, &image.manifest.bytes).to_string();
        seed::put_manifest(&t, t.repo(), &digest, &image.manifest)
            .await
            .expect_error(400, ErrorCode::DigestInvalid);
    }

    /// Distribution cannot delete a tag alone; the client reports that as
    /// UNSUPPORTED, which the server answers 405 (one of the spec's answers
    /// for a registry that does not delete tags), and the tag stays.
    #[tokio::test]
    async fn management_delete_tag() {
        let t = target().await;
        let image = seed::seeded_image(&t, "temporary").await;
        t.client()
            .delete(&routes::manifest(t.repo(), "temporary"))
            .send()
            .await
            .expect_error(405, ErrorCode::Unsupported);
        push::expect_manifest(&t, "temporary", &image.manifest).await;
        pull::get_manifest(&t, "temporary", true)
            .await
            .expect_status(200);
    }
}

/// `immutable:mem`: reads, pushes and listings pass; every delete and a
/// push that would move a tag are refused with 403 DENIED (asserted
/// below), so of the management workflow only the checks that never reach
/// the store run.
mod immutable {
    use oci_conformance::fixtures::{Blob, Image};
    use oci_conformance::{push, routes, seed};
    use oci_core::ErrorCode;

    use super::*;

    pub async fn target() -> Target {
        store_target("immutable:mem", config()).await
    }

    oci_conformance::pull_conformance_tests!(target);
    oci_conformance::push_conformance_tests!(target);
    oci_conformance::discovery_conformance_tests!(target);
    oci_conformance::conformance_tests!(target;
        management::management_delete_invalid_reference,
    );

    /// Deletes of manifests (by digest or tag) and blobs, known or not:
    /// 403 DENIED, and the content stays.
    #[tokio::test]
    async fn deletes_are_denied() {
        let t = target().await;
        let image = seed::seeded_image(&t, "kept").await;
        let digest = image.manifest.digest().to_string();
        let unknown = Blob::random(16).digest;
        for path in [
            routes::manifest(t.repo(), &digest),
            routes::manifest(t.repo(), "kept"),
            routes::manifest(t.repo(), &unknown.to_string()),
            routes::blob(t.repo(), &image.config.digest),
            routes::blob(t.repo(), &unknown),
        ] {
            t.client()
                .delete(&path)
                .send()
                .await
                .expect_error(403, ErrorCode::Denied);
        }
        push::expect_manifest(&t, "kept", &image.manifest).await;
        push::expect_manifest(&t, &digest, &image.manifest).await;
        push::expect_blob(&t, t.repo(), &image.config).await;
    }

    /// A tag can be pushed again with the manifest it names (201), never
    /// moved to another (403 DENIED).
    #[tokio::test]
    async fn tags_do_not_move() {
        let t = target().await;
        let image = seed::seeded_image(&t, "fixed").await;
        seed::push_manifest(&t, t.repo(), "fixed", &image.manifest).await;
        let other = Image::random();
        for blob in other.blobs() {
            seed::push_blob(&t, t.repo(), blob).await;
        }
        seed::put_manifest(&t, t.repo(), "fixed", &other.manifest)
            .await
            .expect_error(403, ErrorCode::Denied);
        push::expect_manifest(&t, "fixed", &image.manifest).await;
    }
}

/// `unify:` over two proxies to `docker-registry`, push workflow: the
/// unified upload id joins two encoded distribution session URLs, the
/// longest ids any stack hands out.
mod unify_proxies_distribution {
    use super::*;

    pub async fn target() -> Target {
        let a = oci_conformance::distribution::start()
            .await
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let b = oci_conformance::distribution::start()
            .await
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let spec = format!("unify:proxy:{},proxy:{}", a.url(), b.url());
        let registry = oci_conformance::store::open_store(&spec)
            .await
            .expect("unify store");
        let front = oci_server::TestServer::start(registry).await;
        let url = front.url();
        Target::new(&url, config(), Some(Box::new((a, b, front))))
    }

    push_checks_docker_registry_passes!(target);
}
