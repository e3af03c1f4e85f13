//! The filters on the shared testkit, with the behaviours they change
//! asserted as changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::forwarding::{Recorder, lost_calls};
use oci_core::testkit::{self, expect_code, fresh_repo, must, push_image};
use oci_core::{Error, ErrorCode, ListOptions, Manifest, Registry, RepoName, Tag};
use oci_filter::{Access, AccessChecker, Immutable, Prefix, ReadOnly, Select};
use oci_mem::MemRegistry;

fn mem() -> Arc<dyn Registry> {
    Arc::new(MemRegistry::new())
}

#[tokio::test]
async fn prefix_passes_the_testkit() {
    let prefix = Prefix::new(mem(), "tenants/acme".parse().unwrap());
    testkit::run_all(&prefix).await;
}

#[tokio::test]
async fn prefix_rewrites_names_and_strips_the_catalog() {
    let inner = mem();
    let prefix = Prefix::new(Arc::clone(&inner), "tenants/acme".parse().unwrap());
    let app: RepoName = "app".parse().unwrap();
    let pushed = push_image(&prefix, &app, Some(&testkit::tag("v1"))).await;
    // The inner registry holds it under the prefix.
    let inner_name: RepoName = "tenants/acme/app".parse().unwrap();
    let got = must(
        inner.get_tag(&inner_name, &testkit::tag("v1")).await,
        "inner get_tag",
    );
    assert_eq!(got.bytes, pushed.manifest.bytes);
    // Repositories outside the prefix (before and after it in order) stay hidden.
    push_image(inner.as_ref(), &"tenants/a".parse().unwrap(), None).await;
    push_image(inner.as_ref(), &"tenants/acmf/x".parse().unwrap(), None).await;
    push_image(&prefix, &"zed".parse().unwrap(), None).await;
    let names = must(
        collect_list(prefix.repositories(&ListOptions::all())).await,
        "catalog",
    );
    let names: Vec<&str> = names.iter().map(RepoName::as_str).collect();
    assert_eq!(names, vec!["app", "zed"]);
    let page = must(
        collect_list(prefix.repositories(&ListOptions {
            last: Some("app".into()),
            n: Some(5),
        }))
        .await,
        "catalog page",
    );
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].as_str(), "zed");
    // Mount works within the prefix.
    let blob = &pushed.layers[0];
    must(
        prefix
            .mount_blob(&"other".parse().unwrap(), &app, &blob.digest)
            .await,
        "mount",
    );
    must(
        inner
            .resolve_blob(&"tenants/acme/other".parse().unwrap(), &blob.digest)
            .await,
        "mounted blob inside",
    );
}

#[tokio::test]
async fn read_only_reads_everything_and_denies_every_change() {
    let inner = mem();
    let repo = fresh_repo("readonly");
    let tag = testkit::tag("v1");
    let pushed = push_image(inner.as_ref(), &repo, Some(&tag)).await;
    let ro = ReadOnly::new(inner);
    let m = must(ro.get_tag(&repo, &tag).await, "get_tag");
    assert_eq!(m.bytes, pushed.manifest.bytes);
    let layer = &pushed.layers[0];
    must(ro.get_blob(&repo, &layer.digest).await, "get_blob");
    assert_eq!(
        must(
            collect_list(ro.tags(&repo, &ListOptions::all())).await,
            "tags"
        ),
        vec![tag.clone()]
    );
    assert_eq!(
        must(
            collect_list(ro.repositories(&ListOptions::all())).await,
            "catalog"
        ),
        vec![repo.clone()]
    );

    let denied = ErrorCode::Denied;
    let data = bytes::Bytes::from_static(b"x");
    let d = oci_core::Digest::sha256(&data);
    expect_code(
        ro.push_blob(&repo, &d, Some(1), bytes_stream(data, 1))
            .await,
        denied,
        "push_blob",
    );
    expect_code(
        ro.push_blob_chunked(&repo).await.map(|_| ()),
        denied,
        "push_blob_chunked",
    );
    expect_code(
        ro.push_blob_chunked_resume(&repo, "x").await.map(|_| ()),
        denied,
        "resume",
    );
    expect_code(
        ro.mount_blob(&"other".parse().unwrap(), &repo, &layer.digest)
            .await,
        denied,
        "mount",
    );
    expect_code(
        ro.push_manifest(&repo, &pushed.manifest, &[]).await,
        denied,
        "push_manifest",
    );
    expect_code(
        ro.delete_blob(&repo, &layer.digest).await,
        denied,
        "delete_blob",
    );
    expect_code(
        ro.delete_manifest(&repo, pushed.manifest.digest()).await,
        denied,
        "delete_manifest",
    );
    expect_code(ro.delete_tag(&repo, &tag).await, denied, "delete_tag");
    // Nothing changed underneath.
    must(ro.get_tag(&repo, &tag).await, "still tagged");
}

#[tokio::test]
async fn immutable_passes_the_testkit_that_moves_no_tag() {
    let reg = Immutable::new(mem());
    testkit::push_pull_blob(&reg).await;
    testkit::chunked_upload(&reg).await;
    testkit::chunked_upload_resume(&reg).await;
    testkit::mount_blob(&reg).await;
    testkit::manifest_push_pull(&reg).await;
    testkit::manifest_multi_tag(&reg).await;
    testkit::manifest_missing_blobs(&reg).await;
    testkit::index_children(&reg).await;
    testkit::tag_pagination(&reg).await;
    testkit::catalog(&reg).await;
}

#[tokio::test]
async fn immutable_tags_never_move_and_nothing_is_deleted() {
    let reg = Immutable::new(mem());
    let repo = fresh_repo("immutable");
    let tag = testkit::tag("v1");
    let first = push_image(&reg, &repo, Some(&tag)).await;
    // The same digest again is fine.
    must(
        reg.push_manifest(&repo, &first.manifest, std::slice::from_ref(&tag))
            .await,
        "re-push same",
    );
    // Another manifest under the same tag is not.
    let second = push_image(&reg, &repo, None).await;
    expect_code(
        reg.push_manifest(&repo, &second.manifest, std::slice::from_ref(&tag))
            .await,
        ErrorCode::Denied,
        "retag",
    );
    let now = must(reg.resolve_tag(&repo, &tag).await, "resolve");
    assert_eq!(now.digest, *first.manifest.digest());
    expect_code(
        reg.delete_tag(&repo, &tag).await,
        ErrorCode::Denied,
        "delete_tag",
    );
    expect_code(
        reg.delete_manifest(&repo, first.manifest.digest()).await,
        ErrorCode::Denied,
        "delete_manifest",
    );
    expect_code(
        reg.delete_blob(&repo, &first.layers[0].digest).await,
        ErrorCode::Denied,
        "delete_blob",
    );
}

#[tokio::test]
async fn immutable_admits_one_of_many_concurrent_first_pushes() {
    let reg = Arc::new(Immutable::new(mem()));
    let repo = fresh_repo("immutable-race");
    let tag = testkit::tag("race");
    let mut manifests: Vec<Manifest> = Vec::new();
    for _ in 0..8 {
        manifests.push(push_image(reg.as_ref(), &repo, None).await.manifest);
    }
    let tasks: Vec<_> = manifests
        .iter()
        .cloned()
        .map(|m| {
            let (reg, repo, tag) = (Arc::clone(&reg), repo.clone(), tag.clone());
            tokio::spawn(async move { reg.push_manifest(&repo, &m, &[tag]).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is(ErrorCode::Denied), "{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one push may set the tag");
}

#[tokio::test]
async fn access_checker_allowing_all_passes_the_testkit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let reg = AccessChecker::new(mem(), move |_, _| {
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    testkit::run_all(&reg).await;
    assert!(
        calls.load(Ordering::Relaxed) > 50,
        "the check was consulted"
    );
}

#[tokio::test]
async fn access_checker_decides_each_call() {
    let inner = mem();
    let open: RepoName = "open/app".parse().unwrap();
    let secret: RepoName = "secret/app".parse().unwrap();
    let pushed = push_image(inner.as_ref(), &secret, Some(&Tag::latest())).await;
    push_image(inner.as_ref(), &open, Some(&Tag::latest())).await;
    let reg = AccessChecker::new(inner, |repo, access| {
        let secret = repo.as_str().starts_with("secret/");
        match access {
            Access::Read | Access::List if secret => {
                Err(Error::new(ErrorCode::Denied, "no reading secrets"))
            }
            Access::Delete => Err(Error::new(ErrorCode::Denied, "no deletes")),
            _ => Ok(()),
        }
    });
    expect_code(
        reg.get_tag(&secret, &Tag::latest()).await,
        ErrorCode::Denied,
        "read secret",
    );
    must(reg.get_tag(&open, &Tag::latest()).await, "read open");
    expect_code(
        reg.delete_tag(&open, &Tag::latest()).await,
        ErrorCode::Denied,
        "delete",
    );
    // A mount reads the source: denied from secret, even into an open repository.
    let layer = &pushed.layers[0].digest;
    expect_code(
        reg.mount_blob(&open, &secret, layer).await,
        ErrorCode::Denied,
        "mount from secret",
    );
    let names = must(
        collect_list(reg.repositories(&ListOptions::all())).await,
        "catalog",
    );
    assert_eq!(names, vec![open]);
}

#[tokio::test]
async fn select_passes_the_testkit_for_allowed_names() {
    let reg = Select::new(mem(), |repo| repo.as_str().starts_with("testkit/"));
    testkit::run_all(&reg).await;
}

#[tokio::test]
async fn select_hides_other_repositories() {
    let inner = mem();
    let hidden: RepoName = "hidden/app".parse().unwrap();
    let pushed = push_image(inner.as_ref(), &hidden, Some(&Tag::latest())).await;
    push_image(inner.as_ref(), &"shown/app".parse().unwrap(), None).await;
    let reg = Select::new(inner, |repo| repo.as_str().starts_with("shown/"));
    expect_code(
        reg.get_tag(&hidden, &Tag::latest()).await,
        ErrorCode::NameUnknown,
        "read hidden",
    );
    expect_code(
        collect_list(reg.tags(&hidden, &ListOptions::all())).await,
        ErrorCode::NameUnknown,
        "tags hidden",
    );
    expect_code(
        reg.push_manifest(&hidden, &pushed.manifest, &[]).await,
        ErrorCode::Denied,
        "write hidden",
    );
    let names = must(
        collect_list(reg.repositories(&ListOptions::all())).await,
        "catalog",
    );
    assert_eq!(
        names.iter().map(RepoName::as_str).collect::<Vec<_>>(),
        vec!["shown/app"]
    );
}

#[tokio::test]
async fn every_filter_loses_no_call() {
    let recorder = || -> Arc<dyn Registry> { Arc::new(Recorder::new()) };
    let filters: Vec<(&str, Box<dyn Registry>)> = vec![
        ("read-only", Box::new(ReadOnly::new(recorder()))),
        ("immutable", Box::new(Immutable::new(recorder()))),
        (
            "prefix",
            Box::new(Prefix::new(recorder(), "tenants/acme".parse().unwrap())),
        ),
        (
            "access checker",
            Box::new(AccessChecker::new(recorder(), |_, _| Ok(()))),
        ),
        ("select", Box::new(Select::new(recorder(), |_| true))),
    ];
    for (name, filter) in filters {
        assert_eq!(
            lost_calls(filter.as_ref()).await,
            Vec::<&str>::new(),
            "{name}"
        );
    }
}
