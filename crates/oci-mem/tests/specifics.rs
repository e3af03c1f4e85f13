//! What the shared suite leaves open and `MemRegistry` decides: uploads
//! across writer drops, repositories appearing and going, and the checks
//! on a pushed manifest.

use bytes::Bytes;
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::{ImageOptions, build_image, push_image, random_bytes};
use oci_core::{
    Descriptor, Digest, ErrorCode, ImageManifest, ListOptions, Manifest, ParsedManifest,
    RangeRequest, Registry, RepoName, media,
};
use oci_mem::MemRegistry;

fn repo(name: &str) -> RepoName {
    name.parse().expect("a valid repository name")
}

async fn catalog(registry: &MemRegistry) -> Vec<String> {
    collect_list(registry.repositories(&ListOptions::all()))
        .await
        .expect("the catalog")
        .into_iter()
        .map(|r| r.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn an_upload_resumes_after_each_writer_is_dropped() {
    let registry = MemRegistry::new();
    let r = repo("uploads/drops");
    let data = random_bytes(30_000);
    let writer = registry.push_blob_chunked(&r).await.unwrap();
    let id = writer.id().to_owned();
    drop(writer);
    for piece in data.chunks(10_000) {
        let mut writer = registry.push_blob_chunked_resume(&r, &id).await.unwrap();
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
        // Dropped without close or commit: the session stays.
    }
    let writer = registry.push_blob_chunked_resume(&r, &id).await.unwrap();
    assert_eq!(writer.size(), 30_000);
    writer.commit(&Digest::sha256(&data)).await.unwrap();
    let read = registry.get_blob(&r, &Digest::sha256(&data)).await.unwrap();
    assert_eq!(read.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn a_commit_with_the_wrong_digest_leaves_the_upload_open() {
    let registry = MemRegistry::new();
    let r = repo("uploads/retry");
    let mut writer = registry.push_blob_chunked(&r).await.unwrap();
    let id = writer.id().to_owned();
    writer.write(Bytes::from_static(b"content")).await.unwrap();
    let err = writer.commit(&Digest::sha256(b"other")).await.unwrap_err();
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    let writer = registry.push_blob_chunked_resume(&r, &id).await.unwrap();
    assert_eq!(writer.size(), 7);
    writer.commit(&Digest::sha256(b"content")).await.unwrap();
}

#[tokio::test]
async fn a_repository_exists_while_it_holds_something() {
    let registry = MemRegistry::new();
    let r = repo("life/cycle");
    assert!(catalog(&registry).await.is_empty());

    // An open upload is not a repository yet.
    let writer = registry.push_blob_chunked(&r).await.unwrap();
    assert!(catalog(&registry).await.is_empty());
    let err = collect_list(registry.tags(&r, &ListOptions::all()))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::NameUnknown), "{err}");
    writer.cancel().await.unwrap();
    assert!(catalog(&registry).await.is_empty());

    let image = push_image(&registry, &r, None).await;
    assert_eq!(catalog(&registry).await, ["life/cycle"]);
    registry.delete_manifest(&r, image.digest()).await.unwrap();
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        registry.delete_blob(&r, &blob.digest).await.unwrap();
    }
    assert!(catalog(&registry).await.is_empty());
}

#[tokio::test]
async fn clones_share_content() {
    let registry = MemRegistry::new();
    let r = repo("shared/content");
    let image = push_image(&registry, &r, None).await;
    let clone = registry.clone();
    clone.get_manifest(&r, image.digest()).await.unwrap();
    assert!(format!("{registry:?}").contains("repositories: 1"));
}

#[tokio::test]
async fn blobs_are_served_as_octet_streams_in_bounded_pieces() {
    let registry = MemRegistry::new();
    let r = repo("blobs/pieces");
    let data = random_bytes(300_000);
    let digest = Digest::sha256(&data);
    let size = Some(data.len() as u64);
    registry
        .push_blob(&r, &digest, size, bytes_stream(data.clone(), 300_000))
        .await
        .unwrap();
    let reader = registry.get_blob(&r, &digest).await.unwrap();
    assert_eq!(reader.descriptor.media_type, media::OCTET_STREAM);
    let pieces: Vec<_> = futures::StreamExt::collect(reader.stream).await;
    assert!(pieces.len() > 1, "a large blob comes in several pieces");
    let ranged = registry
        .get_blob_range(&r, &digest, RangeRequest::from(299_990))
        .await
        .unwrap();
    assert_eq!(ranged.descriptor.media_type, media::OCTET_STREAM);
    assert_eq!(ranged.bytes().await.unwrap(), data.slice(299_990..));
}

#[tokio::test]
async fn referrers_of_an_unknown_repository_are_name_unknown() {
    let registry = MemRegistry::new();
    let subject = Digest::sha256(b"subject");
    let err = collect_list(registry.referrers(&repo("no/such"), &subject, None))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::NameUnknown), "{err}");
}

#[tokio::test]
async fn a_manifest_whose_size_or_type_is_wrong_is_refused() {
    let registry = MemRegistry::new();
    let r = repo("manifests/lies");
    let image = build_image(&ImageOptions::default());
    image.push_blobs(&registry, &r).await;

    let mut wrong_size = image.manifest.clone();
    wrong_size.descriptor.size += 1;
    let err = registry
        .push_manifest(&r, &wrong_size, &[])
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::SizeInvalid), "{err}");

    let mut wrong_type = image.manifest.clone();
    wrong_type.descriptor.media_type = media::OCI_INDEX.to_owned();
    let err = registry
        .push_manifest(&r, &wrong_type, &[])
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::ManifestInvalid), "{err}");
}

#[tokio::test]
async fn foreign_layers_need_not_be_pushed() {
    let registry = MemRegistry::new();
    let r = repo("manifests/foreign");
    let image = build_image(&ImageOptions::default());
    image.push_blobs(&registry, &r).await;
    let ParsedManifest::Image(mut parsed) = image.manifest.parse().unwrap() else {
        panic!("an image")
    };
    let mut foreign = Descriptor::of(media::DOCKER_LAYER_FOREIGN, &random_bytes(64));
    foreign.urls = Some(vec!["https://example.invalid/layer".to_owned()]);
    parsed.layers.push(foreign);
    let with_foreign = Manifest::new(media::OCI_MANIFEST, to_json(&parsed));
    registry
        .push_manifest(&r, &with_foreign, &[])
        .await
        .unwrap();

    // A missing layer without urls is still required.
    parsed
        .layers
        .push(Descriptor::of(media::OCI_LAYER, &random_bytes(64)));
    let missing = Manifest::new(media::OCI_MANIFEST, to_json(&parsed));
    let err = registry.push_manifest(&r, &missing, &[]).await.unwrap_err();
    assert!(err.is(ErrorCode::ManifestBlobUnknown), "{err}");
    let wanted = parsed.layers.last().unwrap().digest.to_string();
    assert!(err.message().contains(&wanted), "{err}");
}

fn to_json(m: &ImageManifest) -> Vec<u8> {
    serde_json::to_vec(m).expect("a manifest serializes")
}

/// A buffer that counts its live owners (the `Arc`'s strong count), to see
/// what the store keeps.
struct Counted(Vec<u8>, #[allow(dead_code)] std::sync::Arc<()>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[tokio::test]
async fn tiny_chunks_do_not_keep_the_buffers_they_came_in_alive() {
    // Each chunk is a one-byte slice of a 1 MiB buffer, as a body chunk is a
    // slice of a connection's read buffer: the store must copy it out.
    let registry = MemRegistry::new();
    let r = repo("tiny/chunks");
    let live = std::sync::Arc::new(());
    let mut data = Vec::new();
    let mut writer = registry.push_blob_chunked(&r).await.unwrap();
    let id = writer.id().to_owned();
    for i in 0..200usize {
        let buffer = Bytes::from_owner(Counted(vec![(i % 251) as u8; 1 << 20], live.clone()));
        writer.write(buffer.slice(i..i + 1)).await.unwrap();
        data.push((i % 251) as u8);
    }
    writer.close().await.unwrap();
    assert_eq!(std::sync::Arc::strong_count(&live), 1, "open upload");

    let writer = registry.push_blob_chunked_resume(&r, &id).await.unwrap();
    let digest = Digest::sha256(&data);
    writer.commit(&digest).await.unwrap();
    let buffer = Bytes::from_owner(Counted(vec![1u8; 1 << 20], live.clone()));
    let small = buffer.slice(5..10);
    drop(buffer);
    registry
        .push_blob(&r, &Digest::sha256(&small), Some(5), bytes_stream(small, 5))
        .await
        .unwrap();
    assert_eq!(std::sync::Arc::strong_count(&live), 1, "stored blobs");
    let read = registry.get_blob(&r, &digest).await.unwrap();
    assert_eq!(read.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn deleted_blobs_are_freed_and_garbage_collection_unlinks_unreferenced_ones() {
    let registry = MemRegistry::new();
    let r = repo("gc/app");
    let other = repo("gc/other");
    let live = std::sync::Arc::new(());
    let big = Bytes::from_owner(Counted(random_bytes(200_000).to_vec(), live.clone()));
    let big_digest = Digest::sha256(&big);
    registry
        .push_blob(&r, &big_digest, None, bytes_stream(big, 100_000))
        .await
        .unwrap();
    registry.mount_blob(&other, &r, &big_digest).await.unwrap();
    // Linked in two repositories: deleting it from one keeps the bytes.
    registry.delete_blob(&other, &big_digest).await.unwrap();
    assert_eq!(std::sync::Arc::strong_count(&live), 2);
    // Deleted from every repository: freed.
    registry.delete_blob(&r, &big_digest).await.unwrap();
    assert_eq!(std::sync::Arc::strong_count(&live), 1);

    // A deleted manifest's blobs stay linked until collected.
    let image = push_image(&registry, &r, None).await;
    let loose = Bytes::from_static(b"pushed for a manifest still to come");
    let loose_digest = Digest::sha256(&loose);
    registry
        .push_blob(&r, &loose_digest, None, bytes_stream(loose, 8))
        .await
        .unwrap();
    registry.delete_manifest(&r, image.digest()).await.unwrap();
    registry
        .resolve_blob(&r, &image.config.digest)
        .await
        .unwrap();
    let spared = registry.collect_garbage(std::time::Duration::from_secs(3600));
    assert_eq!(
        spared,
        oci_mem::GcReport::default(),
        "within the grace period"
    );
    let report = registry.collect_garbage(std::time::Duration::ZERO);
    let blobs = 2 + image.layers.len();
    assert_eq!(report.links_removed, blobs);
    assert_eq!(report.blobs_removed, blobs);
    let err = registry
        .resolve_blob(&r, &image.config.digest)
        .await
        .unwrap_err();
    assert!(
        err.is(ErrorCode::NameUnknown) || err.is(ErrorCode::BlobUnknown),
        "{err}"
    );
    assert!(catalog(&registry).await.is_empty());
}

#[tokio::test]
async fn idle_uploads_expire() {
    let registry = MemRegistry::new();
    let r = repo("uploads/expire");
    let mut writer = registry.push_blob_chunked(&r).await.unwrap();
    let id = writer.id().to_owned();
    writer.write(Bytes::from_static(b"abc")).await.unwrap();
    writer.close().await.unwrap();
    let long = std::time::Duration::from_secs(3600);
    assert_eq!(registry.expire_uploads(long).await.unwrap(), 0);
    registry.push_blob_chunked_resume(&r, &id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let short = std::time::Duration::from_millis(10);
    assert_eq!(registry.expire_uploads(short).await.unwrap(), 1);
    let err = registry.push_blob_chunked_resume(&r, &id).await.err();
    assert!(err.is_some_and(|e| e.is(ErrorCode::BlobUploadUnknown)));
}
