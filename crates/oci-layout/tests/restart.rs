//! What survives a restart (drop and reopen), what a second process is
//! refused, and how damage done to the files by hand is reported.

use bytes::Bytes;
use futures::StreamExt;
use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::{push_image, random_bytes, tag};
use oci_core::{Digest, ErrorCode, ListOptions, Registry, RepoName};
use oci_layout::LayoutRegistry;

fn repo(name: &str) -> RepoName {
    name.parse().expect("repository name")
}

#[tokio::test]
async fn content_and_half_done_uploads_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("team/app");
    let data = random_bytes(300_000);
    let digest = Digest::sha256(&data);
    let (image, upload_id) = {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        let image = push_image(&reg, &app, Some(&tag("v1"))).await;
        let mut writer = reg.push_blob_chunked(&app).await.unwrap();
        writer.write(data.slice(..100_000)).await.unwrap();
        writer.write(data.slice(100_000..200_000)).await.unwrap();
        let id = writer.id().to_owned();
        writer.close().await.unwrap();
        // More bytes arrive but the request never completes (no close):
        // they were never acknowledged and must not be kept.
        let mut writer = reg.push_blob_chunked_resume(&app, &id).await.unwrap();
        writer
            .write(Bytes::from_static(b"unacknowledged"))
            .await
            .unwrap();
        drop(writer);
        (image, id)
    };

    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let got = reg.get_tag(&app, &tag("v1")).await.unwrap();
    assert_eq!(got.bytes, image.manifest.bytes);
    for (layer, bytes) in image.layers.iter().zip(&image.layer_bytes) {
        let read = reg.get_blob(&app, &layer.digest).await.unwrap();
        assert_eq!(read.bytes().await.unwrap(), *bytes);
    }
    let tags = collect_list(reg.tags(&app, &ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(tags, [tag("v1")]);
    let repos = collect_list(reg.repositories(&ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(repos, std::slice::from_ref(&app));

    let mut writer = reg
        .push_blob_chunked_resume(&app, &upload_id)
        .await
        .unwrap();
    assert_eq!(writer.size(), 200_000, "resumes at the acknowledged offset");
    writer.write(data.slice(200_000..)).await.unwrap();
    let committed = writer.commit(&digest).await.unwrap();
    assert_eq!(committed.size, 300_000);
    let read = reg
        .get_blob(&app, &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(read, data);
}

#[tokio::test]
async fn a_second_open_of_the_same_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = LayoutRegistry::open(dir.path()).await.unwrap();
    let err = LayoutRegistry::open(dir.path()).await.unwrap_err();
    assert!(err.message().contains(".lock"), "{err}");
    drop(first);
    LayoutRegistry::open(dir.path()).await.unwrap();
}

/// Reads a blob to its end or first error: the bytes delivered, and the
/// error the stream ended with, if any.
async fn drain(
    reg: &LayoutRegistry,
    repo: &RepoName,
    digest: &Digest,
) -> (u64, Option<oci_core::Error>) {
    let mut stream = match reg.get_blob(repo, digest).await {
        Ok(reader) => reader.stream,
        Err(err) => return (0, Some(err)),
    };
    let mut delivered = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(piece) => delivered += piece.len() as u64,
            Err(err) => return (delivered, Some(err)),
        }
    }
    (delivered, None)
}

#[tokio::test]
async fn a_corrupt_blob_is_never_served_whole_and_an_honest_push_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let data = random_bytes(600_000);
    let digest = Digest::sha256(&data);
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 65_536))
        .await
        .unwrap();
    let path = dir.path().join("app/blobs/sha256").join(digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[500_000] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    let (delivered, err) = drain(&reg, &app, &digest).await;
    let err = err.expect("the read of a corrupt blob fails");
    assert!(
        delivered < data.len() as u64,
        "all {delivered} bytes of a corrupt blob were delivered before the error"
    );
    assert!(err.message().contains("corrupt"), "{err}");
    assert!(
        !err.message().contains(&dir.path().display().to_string()),
        "the error names a server path: {err}"
    );
    // The corrupt copy reads as absent, so clients push it again ...
    assert!(
        reg.resolve_blob(&app, &digest)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // ... and an honest push stores it again.
    reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 65_536))
        .await
        .unwrap();
    assert_eq!(
        reg.get_blob(&app, &digest)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        data
    );
}

#[tokio::test]
async fn an_honest_push_replaces_a_corrupt_copy_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (app, other) = (repo("app"), repo("other"));
    let data = random_bytes(300_000);
    let digest = Digest::sha256(&data);
    {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        reg.push_blob(&other, &digest, None, bytes_stream(data.clone(), 65_536))
            .await
            .unwrap();
    }
    // Damaged while no server ran: the store's copy (shared by links).
    let path = dir.path().join(".blobs/sha256").join(digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[7] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();

    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    // Present but never verified by this process: a push of the same
    // digest checks it, and stores the verified bytes instead.
    reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 65_536))
        .await
        .unwrap();
    assert_eq!(
        reg.get_blob(&app, &digest)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        data
    );
    // Mounting from the repository that still links the damaged copy
    // gives the verified one.
    let third = repo("third");
    reg.mount_blob(&third, &app, &digest).await.unwrap();
    assert_eq!(
        reg.get_blob(&third, &digest)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        data
    );
    // The other repository still links the damaged file: it is refused.
    let (delivered, err) = drain(&reg, &other, &digest).await;
    assert!(err.is_some() && delivered < data.len() as u64);
}

#[tokio::test]
async fn a_hand_edited_layout_is_reported_without_its_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (app, other) = (repo("app"), repo("other"));
    let image = {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        push_image(&reg, &other, Some(&tag("v1"))).await;
        push_image(&reg, &app, Some(&tag("v1"))).await
    };
    // A manifest file removed, and another repository's index broken.
    let manifest = dir
        .path()
        .join("app/blobs/sha256")
        .join(image.digest().hex());
    std::fs::remove_file(&manifest).unwrap();
    let index = dir.path().join("other/index.json");
    std::fs::write(&index, b"{not json").unwrap();

    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    // The paths go to the log; the caller (perhaps a client across the
    // network) is told what failed without them.
    let root = dir.path().display().to_string();
    let err = reg.get_tag(&app, &tag("v1")).await.unwrap_err();
    assert!(!err.message().contains(&root), "{err}");
    assert!(err.message().contains("read manifest"), "{err}");
    let err = collect_list(reg.tags(&other, &ListOptions::all()))
        .await
        .unwrap_err();
    assert!(!err.message().contains(&root), "{err}");
    assert!(err.message().contains("index.json"), "{err}");
    // The rest of the store still works.
    assert_eq!(
        collect_list(reg.tags(&app, &ListOptions::all()))
            .await
            .unwrap(),
        [tag("v1")]
    );
}

#[tokio::test]
async fn gc_removes_only_what_no_manifest_references() {
    let dir = tempfile::tempdir().unwrap();
    let (app, other) = (repo("app"), repo("other"));
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let kept = push_image(&reg, &app, Some(&tag("kept"))).await;
    let gone = push_image(&reg, &app, Some(&tag("gone"))).await;
    let loose = random_bytes(1_000);
    let loose_digest = Digest::sha256(&loose);
    reg.push_blob(&other, &loose_digest, None, bytes_stream(loose, 100))
        .await
        .unwrap();
    let upload = reg.push_blob_chunked(&app).await.unwrap();
    upload.close().await.unwrap();

    reg.delete_manifest(&app, gone.digest()).await.unwrap();
    // A delete unlinks the manifest but collects nothing.
    assert!(reg.resolve_blob(&app, &gone.layers[0].digest).await.is_ok());

    let report = reg.gc().await.unwrap();
    // gone's config and two layers unlinked from app, the loose blob from
    // other; their four files leave the store (the manifest's own file went
    // with delete_manifest).
    assert_eq!(report.links_removed, 4, "{report:?}");
    assert_eq!(report.blobs_removed, 4, "{report:?}");
    assert_eq!(report.repositories_removed, 1, "{report:?}");
    assert_eq!(report.uploads_removed, 0, "a fresh upload is not stale");
    assert!(
        reg.resolve_blob(&app, &gone.layers[0].digest)
            .await
            .is_err()
    );
    let got = reg.get_tag(&app, &tag("kept")).await.unwrap();
    assert_eq!(got.bytes, kept.manifest.bytes);
    for layer in &kept.layers {
        let read = reg.get_blob(&app, &layer.digest).await.unwrap();
        read.bytes().await.unwrap();
    }
    let repos = collect_list(reg.repositories(&ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(repos, std::slice::from_ref(&app));

    let stale = oci_layout::GcOptions {
        upload_age: std::time::Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(reg.gc_with(&stale).await.unwrap().uploads_removed, 1);
}

/// The last item of a blob read: `Err` if the stream failed.
async fn read_all(reg: &LayoutRegistry, repo: &RepoName, digest: &Digest) -> oci_core::Result<()> {
    let mut stream = reg.get_blob(repo, digest).await?.stream;
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(())
}

#[tokio::test]
async fn a_blob_changed_after_a_verified_read_is_verified_again() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let data = random_bytes(50_000);
    let digest = Digest::sha256(&data);
    let path = dir.path().join("app/blobs/sha256").join(digest.hex());
    {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 8_192))
            .await
            .unwrap();
    }
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    read_all(&reg, &app, &digest).await.unwrap();
    // Flip a byte and put the modification time back: the status-change
    // time still moves, so the next read hashes the file again.
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let err = read_all(&reg, &app, &digest).await.unwrap_err();
    assert!(err.message().contains("corrupt"), "{err}");

    // With VerifyReads::Always every read hashes, and fails the same way.
    drop(reg);
    let reg = LayoutRegistry::open_with(
        dir.path(),
        oci_layout::LayoutOptions {
            verify_reads: oci_layout::VerifyReads::Always,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        assert!(read_all(&reg, &app, &digest).await.is_err());
    }
}

#[tokio::test]
async fn a_manifest_changed_or_removed_after_a_read_is_not_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let image = push_image(&reg, &app, Some(&tag("v1"))).await;
    let path = dir
        .path()
        .join("app/blobs/sha256")
        .join(image.digest().hex());
    let original = std::fs::read(&path).unwrap();
    for _ in 0..2 {
        let got = reg.get_tag(&app, &tag("v1")).await.unwrap();
        assert_eq!(got.bytes, image.manifest.bytes);
    }
    // Changed in place with its modification time put back: the
    // status-change time still moves, so the read goes to the file.
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = original.clone();
    bytes[5] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let err = reg.get_tag(&app, &tag("v1")).await.unwrap_err();
    assert!(err.message().contains("corrupt"), "{err}");
    let err = reg.get_manifest(&app, image.digest()).await.unwrap_err();
    assert!(err.message().contains("corrupt"), "{err}");
    // Repaired by hand, it is served again; removed, it is not.
    std::fs::write(&path, &original).unwrap();
    let got = reg.get_tag(&app, &tag("v1")).await.unwrap();
    assert_eq!(got.bytes, image.manifest.bytes);
    std::fs::remove_file(&path).unwrap();
    let err = reg.get_tag(&app, &tag("v1")).await.unwrap_err();
    assert!(err.message().contains("read manifest"), "{err}");
}

#[tokio::test]
async fn tags_moved_or_deleted_through_another_handle_or_gc_are_seen_by_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let first = push_image(&reg, &app, Some(&tag("v1"))).await;
    let second = push_image(&reg, &app, None).await;
    // Read (and so kept in memory) before every change below.
    assert_eq!(
        reg.get_tag(&app, &tag("v1")).await.unwrap().bytes,
        first.manifest.bytes
    );
    let other = reg.clone();
    other
        .push_manifest(&app, &second.manifest, &[tag("v1")])
        .await
        .unwrap();
    assert_eq!(
        reg.get_tag(&app, &tag("v1")).await.unwrap().bytes,
        second.manifest.bytes
    );
    assert_eq!(
        reg.resolve_tag(&app, &tag("v1")).await.unwrap().digest,
        *second.digest()
    );
    other.delete_tag(&app, &tag("v1")).await.unwrap();
    let err = reg.get_tag(&app, &tag("v1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ManifestUnknown, "{err}");
    let err = reg.resolve_tag(&app, &tag("v1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ManifestUnknown, "{err}");
    // The untagged first image is still listed, and served, until deleted.
    assert!(reg.get_manifest(&app, first.digest()).await.is_ok());
    other.delete_manifest(&app, first.digest()).await.unwrap();
    let err = reg.get_manifest(&app, first.digest()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ManifestUnknown, "{err}");
    // A collection beside the open store (as `ocidist gc --storage` runs)
    // leaves the listed manifest readable and removes the deleted one's blobs.
    let report = LayoutRegistry::gc_at(dir.path(), &oci_layout::GcOptions::default())
        .await
        .unwrap();
    assert!(report.links_removed > 0, "{report:?}");
    assert_eq!(
        reg.get_manifest(&app, second.digest()).await.unwrap().bytes,
        second.manifest.bytes
    );
    let err = reg.get_manifest(&app, first.digest()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ManifestUnknown, "{err}");
    // What a restart reads from the files is what was served.
    drop((reg, other));
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    assert!(reg.get_tag(&app, &tag("v1")).await.is_err());
    assert!(reg.get_manifest(&app, first.digest()).await.is_err());
    assert!(reg.get_manifest(&app, second.digest()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manifest_pushes_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let mut pushed = Vec::new();
    {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let reg = reg.clone();
            let app = app.clone();
            tasks.spawn(async move {
                let t = tag(&format!("t{i}"));
                let image = push_image(&reg, &app, Some(&t)).await;
                (t, image.manifest)
            });
        }
        while let Some(done) = tasks.join_next().await {
            pushed.push(done.unwrap());
        }
    }
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let tags = collect_list(reg.tags(&app, &ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(tags.len(), 40);
    for (t, manifest) in &pushed {
        let got = reg.get_tag(&app, t).await.unwrap();
        assert_eq!(got.bytes, manifest.bytes, "{t}");
    }
}

/// The inode of a file: a new one each time it is replaced by a rename.
fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_with_many_tags_journals_its_changes_and_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("many/tags");
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let image = push_image(&reg, &app, None).await;
    let many: Vec<_> = (0..1_100).map(|i| tag(&format!("t{i}"))).collect();
    reg.push_manifest(&app, &image.manifest, &many)
        .await
        .unwrap();

    // Each tag push now costs a journal line, not an index.json rewrite.
    let index = reg.repo_dir(&app).join("index.json");
    let mut seen = inode(&index);
    let mut rewrites = 0;
    for i in 0..20 {
        reg.push_manifest(&app, &image.manifest, &[tag(&format!("new{i}"))])
            .await
            .unwrap();
        let now = inode(&index);
        if now != seen {
            rewrites += 1;
            seen = now;
        }
    }
    assert!(
        rewrites < 10,
        "index.json was rewritten by {rewrites} of 20 tag pushes"
    );
    let other = push_image(&reg, &app, Some(&tag("other"))).await;
    reg.delete_tag(&app, &tag("t7")).await.unwrap();
    reg.delete_manifest(&app, other.digest()).await.unwrap();
    drop(reg);
    // A crash in the middle of a journal append leaves a partial last
    // line (never acknowledged): it is ignored.
    let journal = dir.path().join("many/tags/.journal");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"op":"untag","ta"#).unwrap();
    drop(file);

    // Reopened at once (the journal maybe not folded yet): all there.
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let tags = collect_list(reg.tags(&app, &ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(tags.len(), 1_100 - 1 + 20, "tags after a restart");
    assert!(!tags.contains(&tag("t7")) && !tags.contains(&tag("other")));
    assert!(reg.resolve_manifest(&app, other.digest()).await.is_err());
    assert_eq!(
        reg.resolve_tag(&app, &tag("new19")).await.unwrap().digest,
        *image.digest()
    );
}

#[tokio::test]
async fn a_blob_file_emptied_on_disk_is_not_served_as_an_empty_blob() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("app");
    let data = random_bytes(1_000);
    let digest = Digest::sha256(&data);
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 256))
        .await
        .unwrap();
    let path = dir.path().join("app/blobs/sha256").join(digest.hex());
    std::fs::write(&path, b"").unwrap();
    let (delivered, err) = drain(&reg, &app, &digest).await;
    assert_eq!(delivered, 0);
    assert!(
        err.is_some(),
        "an emptied blob file was served as a complete read"
    );
    assert!(
        reg.resolve_blob(&app, &digest)
            .await
            .unwrap_err()
            .is_not_found()
    );
}
