//! What is special to `Unify`: content on one side only, tags that
//! disagree, writes that fail on one side, merged listings, racing reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::forwarding::{Recorder, lost_calls};
use oci_core::testkit::{push_bytes, push_image, random_bytes, tag};
use oci_core::{
    BlobReader, Digest, ErrorCode, ListOptions, Registry, RepoName, Result, async_trait,
};
use oci_filter::ReadOnly;
use oci_mem::MemRegistry;
use oci_unify::{ReadPolicy, Unify};

const POLICIES: [ReadPolicy; 2] = [ReadPolicy::Sequential, ReadPolicy::Concurrent];

fn repo_name(name: &str) -> RepoName {
    name.parse()
        .unwrap_or_else(|e| panic!("bad repository name {name}: {e}"))
}

fn pair() -> (Arc<MemRegistry>, Arc<MemRegistry>) {
    (Arc::new(MemRegistry::new()), Arc::new(MemRegistry::new()))
}

#[tokio::test]
async fn content_only_in_r1_is_readable() {
    for policy in POLICIES {
        let (r0, r1) = pair();
        let repo = repo_name("app");
        let image = push_image(r1.as_ref(), &repo, Some(&tag("v1"))).await;
        let u = Unify::new(r0, r1, policy);

        let got = u.get_tag(&repo, &tag("v1")).await.unwrap();
        assert_eq!(got.digest(), image.digest(), "{policy:?}");
        let d = u.resolve_manifest(&repo, image.digest()).await.unwrap();
        assert_eq!(d.digest, *image.digest());
        let layer = &image.layer_bytes[0];
        let read = u.get_blob(&repo, &Digest::sha256(layer)).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), *layer, "{policy:?}");

        let missing = Digest::sha256(b"nowhere");
        let err = u.get_blob(&repo, &missing).await.unwrap_err();
        assert!(err.is(ErrorCode::BlobUnknown), "{policy:?}: {err}");
    }
}

#[tokio::test]
async fn a_tag_pointing_at_different_manifests_is_an_error() {
    for policy in POLICIES {
        let (r0, r1) = pair();
        let repo = repo_name("app");
        let a = push_image(r0.as_ref(), &repo, Some(&tag("latest"))).await;
        let b = push_image(r1.as_ref(), &repo, Some(&tag("latest"))).await;
        assert_ne!(a.digest(), b.digest());
        let u = Unify::new(r0, r1, policy);

        let err = u.resolve_tag(&repo, &tag("latest")).await.unwrap_err();
        assert!(err.is(ErrorCode::Unknown), "{err}");
        let message = err.message();
        assert!(message.contains(&a.digest().to_string()), "{message}");
        assert!(message.contains(&b.digest().to_string()), "{message}");
        let err = u.get_tag(&repo, &tag("latest")).await.unwrap_err();
        assert!(err.message().contains("differs"), "{err}");
        // Content addressed by digest is still readable from either side.
        assert!(u.get_manifest(&repo, b.digest()).await.is_ok());
    }
}

#[tokio::test]
async fn a_write_failing_on_one_side_names_that_side() {
    let (r0, r1) = pair();
    let repo = repo_name("app");
    let u = Unify::new(
        r0.clone(),
        Arc::new(ReadOnly::new(r1)),
        ReadPolicy::Sequential,
    );
    let data = random_bytes(50_000);
    let digest = Digest::sha256(&data);

    let err = u
        .push_blob(&repo, &digest, None, bytes_stream(data.clone(), 1000))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
    assert!(
        err.message().contains("succeeded on r0 but failed on r1"),
        "{err}"
    );
    // r0 took the whole blob even though the other side refused it.
    let kept = r0.get_blob(&repo, &digest).await.unwrap();
    assert_eq!(kept.bytes().await.unwrap(), data);

    let err = match u.push_blob_chunked(&repo).await {
        Ok(_) => panic!("a chunked upload cannot start on a read-only side"),
        Err(err) => err,
    };
    assert!(err.message().contains("failed on r1"), "{err}");

    let err = u.delete_blob(&repo, &digest).await.unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
}

#[tokio::test]
async fn both_sides_refusing_is_one_plain_error() {
    let (r0, r1) = pair();
    let u = Unify::new(r0, r1, ReadPolicy::Sequential);
    let data = random_bytes(1000);
    let wrong = Digest::sha256(b"something else");
    let err = u
        .push_blob(&repo_name("app"), &wrong, None, bytes_stream(data, 100))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    assert!(!err.message().contains("succeeded on"), "{err}");
}

#[tokio::test]
async fn tag_listings_merge_and_paginate_as_one() {
    let (r0, r1) = pair();
    let repo = repo_name("app");
    let image = push_image(r0.as_ref(), &repo, None).await;
    image.push(r1.as_ref(), &repo, &[]).await;
    for (side, names) in [(&r0, ["a", "c", "e"]), (&r1, ["b", "c", "d"])] {
        let tags: Vec<_> = names.iter().map(|n| tag(n)).collect();
        side.push_manifest(&repo, &image.manifest, &tags)
            .await
            .unwrap();
    }
    let only_r1 = repo_name("only-in-r1");
    push_bytes(
        r1.as_ref(),
        &only_r1,
        "application/octet-stream",
        &random_bytes(10),
    )
    .await;
    let u = Unify::new(r0, r1, ReadPolicy::Concurrent);

    let list = |last: Option<&str>, n: Option<usize>| {
        let options = ListOptions {
            last: last.map(str::to_owned),
            n,
        };
        collect_list(u.tags(&repo, &options))
    };
    let names = |tags: Vec<oci_core::Tag>| tags.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(list(None, None).await.unwrap()),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(names(list(None, Some(2)).await.unwrap()), ["a", "b"]);
    assert_eq!(names(list(Some("b"), Some(2)).await.unwrap()), ["c", "d"]);
    assert_eq!(names(list(Some("d"), Some(2)).await.unwrap()), ["e"]);

    // A repository one side lacks lists the other side's tags (none here)
    // instead of NAME_UNKNOWN; a repository neither has is NAME_UNKNOWN.
    let listed = collect_list(u.tags(&only_r1, &ListOptions::all()))
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let err = collect_list(u.tags(&repo_name("nowhere"), &ListOptions::all()))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::NameUnknown), "{err}");

    let repos = collect_list(u.repositories(&ListOptions::all()))
        .await
        .unwrap();
    let repos: Vec<_> = repos.iter().map(|r| r.to_string()).collect();
    assert_eq!(repos, ["app", "only-in-r1"]);
}

#[tokio::test]
async fn a_chunked_upload_resumes_on_both_sides() {
    let (r0, r1) = pair();
    let repo = repo_name("app");
    let u = Unify::new(r0.clone(), r1.clone(), ReadPolicy::Sequential);
    let data = random_bytes(30_000);
    let mut w = u.push_blob_chunked(&repo).await.unwrap();
    w.write(data.slice(..10_000)).await.unwrap();
    let id = w.id().to_owned();
    w.close().await.unwrap();

    let mut w = u.push_blob_chunked_resume(&repo, &id).await.unwrap();
    assert_eq!(w.size(), 10_000);
    w.write(data.slice(10_000..)).await.unwrap();
    let digest = Digest::sha256(&data);
    w.commit(&digest).await.unwrap();
    for side in [&r0, &r1] {
        let read = side.get_blob(&repo, &digest).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), data);
    }
}

#[tokio::test]
async fn a_mount_one_side_cannot_do_is_completed_by_copy() {
    let (r0, r1) = pair();
    let (from, to) = (repo_name("from"), repo_name("to"));
    let data = random_bytes(5000);
    let digest = Digest::sha256(&data);
    push_bytes(r1.as_ref(), &from, "application/octet-stream", &data).await;
    let u = Unify::new(r0.clone(), r1, ReadPolicy::Sequential);
    u.mount_blob(&to, &from, &digest).await.unwrap();
    let copied = r0.get_blob(&to, &digest).await.unwrap();
    assert_eq!(copied.bytes().await.unwrap(), data);
}

/// A registry whose blob reads never answer; it notes when a read it is
/// still working on is given up.
#[derive(Default)]
struct Stalled {
    given_up: Arc<AtomicBool>,
}

/// Sets its flag when dropped.
struct OnDrop(Arc<AtomicBool>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Registry for Stalled {
    async fn get_blob(&self, _: &RepoName, _: &Digest) -> Result<BlobReader> {
        let _note = OnDrop(Arc::clone(&self.given_up));
        futures::future::pending().await
    }
}

#[tokio::test]
async fn concurrent_reads_do_not_wait_for_a_stalled_side() {
    let r1 = Arc::new(MemRegistry::new());
    let repo = repo_name("app");
    let data = Bytes::from_static(b"from the live side");
    let digest = Digest::sha256(&data);
    r1.push_blob(&repo, &digest, None, bytes_stream(data.clone(), 4))
        .await
        .unwrap();
    let stalled = Stalled::default();
    let given_up = Arc::clone(&stalled.given_up);
    let u = Unify::new(Arc::new(stalled), r1, ReadPolicy::Concurrent);
    let read = u.get_blob(&repo, &digest).await.unwrap();
    assert_eq!(read.bytes().await.unwrap(), data);
    assert!(
        given_up.load(Ordering::SeqCst),
        "the losing read is cancelled"
    );
}

/// A registry that supports nothing.
struct Nothing;

#[async_trait]
impl Registry for Nothing {}

#[tokio::test]
async fn a_side_that_cannot_read_counts_as_not_having_it() {
    for policy in POLICIES {
        let r1 = Arc::new(MemRegistry::new());
        let repo = repo_name("app");
        let image = push_image(r1.as_ref(), &repo, Some(&tag("v1"))).await;
        let u = Unify::new(Arc::new(Nothing), r1, policy);
        let d = u.resolve_tag(&repo, &tag("v1")).await.unwrap();
        assert_eq!(d.digest, *image.digest(), "{policy:?}");
        let layer = Digest::sha256(&image.layer_bytes[0]);
        assert!(u.get_blob(&repo, &layer).await.is_ok(), "{policy:?}");
        let err = u
            .get_blob(&repo, &Digest::sha256(b"nowhere"))
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::BlobUnknown), "{policy:?}: {err}");
    }
}

#[tokio::test]
async fn every_call_reaches_the_sides() {
    for policy in POLICIES {
        let u = Unify::new(Arc::new(Recorder::new()), Arc::new(Recorder::new()), policy);
        assert_eq!(lost_calls(&u).await, Vec::<&str>::new(), "{policy:?}");
    }
}

/// A store that expires a fixed number of uploads.
struct Expiring(u64);

#[async_trait]
impl Registry for Expiring {
    async fn expire_uploads(&self, _: std::time::Duration) -> Result<u64> {
        Ok(self.0)
    }
}

#[tokio::test]
async fn idle_uploads_expire_on_both_sides() {
    let idle = std::time::Duration::from_secs(60);
    let both = Unify::new(
        Arc::new(Expiring(2)),
        Arc::new(Expiring(3)),
        ReadPolicy::default(),
    );
    assert_eq!(both.expire_uploads(idle).await.unwrap(), 5);
    let one = Unify::new(
        Arc::new(Nothing),
        Arc::new(Expiring(3)),
        ReadPolicy::default(),
    );
    assert_eq!(one.expire_uploads(idle).await.unwrap(), 3);
    let none = Unify::new(Arc::new(Nothing), Arc::new(Nothing), ReadPolicy::default());
    let err = none.expire_uploads(idle).await.unwrap_err();
    assert!(err.is(ErrorCode::Unsupported), "{err}");
}
