//! Many tasks at once on one `MemRegistry`: the same blob, the same tag,
//! the same upload session.

use bytes::Bytes;
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::{ImageOptions, build_image, random_bytes};
use oci_core::{Digest, ErrorCode, ListOptions, Registry, RepoName, Tag};
use oci_mem::MemRegistry;
use tokio::task::JoinSet;

fn repo(name: &str) -> RepoName {
    name.parse().expect("a valid repository name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_blob_pushed_by_many_tasks_into_many_repositories() {
    let registry = MemRegistry::new();
    let data = random_bytes(200_000);
    let digest = Digest::sha256(&data);
    let mut tasks = JoinSet::new();
    for i in 0..32 {
        let (registry, data, digest) = (registry.clone(), data.clone(), digest.clone());
        // Two tasks per repository, so pushes also race within one.
        let repo = repo(&format!("race/blob-{}", i % 16));
        tasks.spawn(async move {
            let size = Some(data.len() as u64);
            registry
                .push_blob(&repo, &digest, size, bytes_stream(data, 999))
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap().digest, digest);
    }

    // Every repository links the blob once: deleting it from all but the
    // last leaves the last one able to read it.
    for i in 0..15 {
        let r = repo(&format!("race/blob-{i}"));
        registry.delete_blob(&r, &digest).await.unwrap();
        let err = registry.delete_blob(&r, &digest).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
    let last = repo("race/blob-15");
    let read = registry.get_blob(&last, &digest).await.unwrap();
    assert_eq!(read.bytes().await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_tag_pushed_by_many_tasks_points_at_one_of_them() {
    let registry = MemRegistry::new();
    let r = repo("race/tag");
    let tag: Tag = "race".parse().unwrap();
    let images: Vec<_> = (0..16)
        .map(|_| build_image(&ImageOptions::default()))
        .collect();
    let mut tasks = JoinSet::new();
    for image in images.clone() {
        let (registry, r, tag) = (registry.clone(), r.clone(), tag.clone());
        tasks.spawn(async move { image.push(&registry, &r, &[tag]).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let winner = registry.resolve_tag(&r, &tag).await.unwrap();
    assert!(images.iter().any(|i| *i.digest() == winner.digest));
    for image in &images {
        registry.get_manifest(&r, image.digest()).await.unwrap();
    }
    let tags = collect_list(registry.tags(&r, &ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(tags, [tag]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_chunked_uploads_at_once_in_one_repository() {
    let registry = MemRegistry::new();
    let r = repo("race/uploads");
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (registry, r) = (registry.clone(), r.clone());
        tasks.spawn(async move {
            let data = random_bytes(50_000);
            let mut writer = registry.push_blob_chunked(&r).await.unwrap();
            for piece in data.chunks(7_000) {
                writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
                tokio::task::yield_now().await;
            }
            writer.commit(&Digest::sha256(&data)).await.unwrap();
            data
        });
    }
    while let Some(done) = tasks.join_next().await {
        let data = done.unwrap();
        let read = registry.get_blob(&r, &Digest::sha256(&data)).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), data);
    }
}

#[tokio::test]
async fn a_second_writer_of_one_session_cannot_write_at_a_stale_offset() {
    let registry = MemRegistry::new();
    let r = repo("race/session");
    let mut first = registry.push_blob_chunked(&r).await.unwrap();
    let mut second = registry
        .push_blob_chunked_resume(&r, first.id())
        .await
        .unwrap();
    first.write(Bytes::from_static(b"abc")).await.unwrap();
    let err = second.write(Bytes::from_static(b"xyz")).await.unwrap_err();
    assert!(err.is(ErrorCode::RangeInvalid), "{err}");
    first.write(Bytes::from_static(b"def")).await.unwrap();
    first.commit(&Digest::sha256(b"abcdef")).await.unwrap();
    let read = registry
        .get_blob(&r, &Digest::sha256(b"abcdef"))
        .await
        .unwrap();
    assert_eq!(read.bytes().await.unwrap(), "abcdef");
}
