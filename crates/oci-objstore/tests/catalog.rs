//! The catalog lists a repository while it holds a manifest or a blob,
//! as `oci-mem` does: deleting everything in it, or deleting its
//! manifests and collecting the blobs they left, takes it out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use oci_core::registry::collect_list;
use oci_core::testkit::{fresh_repo, push_image, tag};
use oci_core::{ListOptions, Registry, RepoName};
use oci_objstore::{GcOptions, ObjRegistry};

async fn listed(registry: &ObjRegistry, repo: &RepoName) -> bool {
    collect_list(registry.repositories(&ListOptions::all()))
        .await
        .unwrap()
        .contains(repo)
}

/// The backends: memory, and a local directory (where a "directory" is
/// a real one, removed with its last object).
async fn backends() -> Vec<(ObjRegistry, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    vec![
        (ObjRegistry::open("memory://").await.unwrap(), None),
        (ObjRegistry::open(&url).await.unwrap(), Some(dir)),
    ]
}

#[tokio::test]
async fn a_repository_whose_manifests_and_blobs_were_deleted_is_not_listed() {
    for (registry, _dir) in backends().await {
        emptied_by_deletes(&registry).await;
    }
}

#[tokio::test]
async fn a_collection_removes_a_repository_whose_manifests_were_deleted() {
    for (registry, _dir) in backends().await {
        emptied_by_collection(&registry).await;
    }
}

async fn emptied_by_deletes(registry: &ObjRegistry) {
    let repo = fresh_repo("emptied");
    let image = push_image(registry, &repo, Some(&tag("latest"))).await;
    registry
        .delete_manifest(&repo, image.digest())
        .await
        .unwrap();
    assert!(
        listed(registry, &repo).await,
        "a repository still holding blobs is listed"
    );
    registry
        .delete_blob(&repo, &image.config.digest)
        .await
        .unwrap();
    for layer in &image.layers {
        assert!(listed(registry, &repo).await);
        registry.delete_blob(&repo, &layer.digest).await.unwrap();
    }
    assert!(
        !listed(registry, &repo).await,
        "a repository holding nothing is still in the catalog"
    );
    // It comes back with its next push.
    push_image(registry, &repo, None).await;
    assert!(listed(registry, &repo).await);
}

async fn emptied_by_collection(registry: &ObjRegistry) {
    let emptied = fresh_repo("collected");
    let kept = fresh_repo("kept");
    let image = push_image(registry, &emptied, Some(&tag("latest"))).await;
    push_image(registry, &kept, Some(&tag("latest"))).await;
    registry
        .delete_manifest(&emptied, image.digest())
        .await
        .unwrap();
    let options = GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    let report = registry.gc_with(&options).await.unwrap();
    assert_eq!(report.repositories_removed, 1, "{report:?}");
    assert!(!listed(registry, &emptied).await, "{report:?}");
    assert!(listed(registry, &kept).await);
    let err = collect_list(registry.tags(&emptied, &ListOptions::all()))
        .await
        .unwrap_err();
    assert!(err.is(oci_core::ErrorCode::NameUnknown), "{err}");
}
