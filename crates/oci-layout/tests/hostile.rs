//! Hostile and unlucky clients against the store: requests of one upload
//! racing each other, downloads that stop reading, sessions left behind.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use oci_core::registry::bytes_stream;
use oci_core::testkit::{push_image, random_bytes, tag};
use oci_core::{Digest, ErrorCode, Registry, RepoName};
use oci_layout::LayoutRegistry;
use oci_testbed::load::with_query;
use oci_testbed::raw_http::{RawClient, Response, full};

fn repo(name: &str) -> RepoName {
    name.parse().expect("repository name")
}

/// How many times each race is run.
const RACES: usize = 1_000;

/// Whether the store's copy of `digest` (the file itself, not a read
/// through the registry) holds exactly `data`.
fn stored_intact(root: &std::path::Path, digest: &Digest, data: &[u8]) -> bool {
    let path = root.join(".blobs/sha256").join(digest.hex());
    match std::fs::read(&path) {
        Ok(bytes) => bytes == data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// A PATCH (a write through a second handle of the same upload) racing
/// the commit: whatever the interleaving, a committed digest names
/// exactly its bytes, in the store and in every read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_racing_the_commit_never_corrupts_a_blob() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(LayoutRegistry::open(dir.path()).await.unwrap());
    let app = repo("race/patch-commit");
    let (mut committed, mut refused, mut corrupted) = (0, 0, 0);
    let mut unexpected = Vec::new();
    for round in 0..RACES {
        let data = random_bytes(1_000 + round % 7);
        let digest = Digest::sha256(&data);
        let mut writer = reg.push_blob_chunked(&app).await.unwrap();
        writer.write(data.clone()).await.unwrap();
        let id = writer.id().to_owned();
        writer.close().await.unwrap();

        let patch = {
            let (reg, app, id) = (reg.clone(), app.clone(), id.clone());
            tokio::spawn(async move {
                let mut writer = reg.push_blob_chunked_resume(&app, &id).await?;
                tokio::task::yield_now().await;
                writer.write(random_bytes(64 * 1024)).await?;
                writer.close().await
            })
        };
        let commit = {
            let (reg, app, id, digest) = (reg.clone(), app.clone(), id.clone(), digest.clone());
            tokio::spawn(async move {
                let writer = reg.push_blob_chunked_resume(&app, &id).await?;
                writer.commit(&digest).await
            })
        };
        let _ = patch.await.unwrap();
        match commit.await.unwrap() {
            Ok(desc) => {
                committed += 1;
                assert_eq!(desc.size, data.len() as u64);
                let read = reg.get_blob(&app, &digest).await.unwrap().bytes().await;
                if read.as_ref().ok() != Some(&data) || !stored_intact(dir.path(), &digest, &data) {
                    corrupted += 1;
                }
            }
            Err(err) => {
                if !(err.is(ErrorCode::DigestInvalid) || err.is(ErrorCode::BlobUploadUnknown)) {
                    unexpected.push(format!("round {round}: {err}"));
                }
                refused += 1;
                if let Ok(writer) = reg.push_blob_chunked_resume(&app, &id).await {
                    writer.cancel().await.unwrap();
                }
            }
        }
    }
    assert_eq!(
        corrupted, 0,
        "{corrupted} of {committed} acknowledged blobs were corrupt ({refused} refused)"
    );
    assert!(
        unexpected.is_empty(),
        "commits failed other than as refused: {unexpected:?}"
    );
    assert!(committed > 0, "no commit won a race ({refused} refused)");
}

/// Two commits of one upload: one stores the blob, the other is told the
/// upload is no longer in progress (or succeeds too); never an internal
/// error, never a server path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_commits_of_one_upload_answer_success_or_upload_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let reg = Arc::new(LayoutRegistry::open(dir.path()).await.unwrap());
    let app = repo("race/commit-commit");
    for round in 0..200 {
        let data = random_bytes(2_000);
        let digest = Digest::sha256(&data);
        let mut writer = reg.push_blob_chunked(&app).await.unwrap();
        writer.write(data.clone()).await.unwrap();
        let id = writer.id().to_owned();
        writer.close().await.unwrap();
        let commits: Vec<_> = (0..2)
            .map(|_| {
                let (reg, app, id, digest) = (reg.clone(), app.clone(), id.clone(), digest.clone());
                tokio::spawn(async move {
                    let writer = reg.push_blob_chunked_resume(&app, &id).await?;
                    writer.commit(&digest).await
                })
            })
            .collect();
        let mut ok = 0;
        for commit in commits {
            match commit.await.unwrap() {
                Ok(_) => ok += 1,
                Err(err) => {
                    assert!(
                        err.is(ErrorCode::BlobUploadUnknown),
                        "round {round}: a racing commit failed with {err}"
                    );
                    assert!(!err.message().contains(&root), "{err}");
                }
            }
        }
        assert!(ok >= 1, "round {round}: neither commit succeeded");
        let read = reg.get_blob(&app, &digest).await.unwrap().bytes().await;
        assert_eq!(read.unwrap(), data);
    }
}

/// Downloads whose readers stop after the first piece hold no blocking
/// thread: with eight blocking threads and 600 stalled downloads, tag
/// resolution, manifest pushes and blob lookups still complete.
#[test]
fn stalled_downloads_do_not_stop_other_requests() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        let app = repo("slow/readers");
        let image = push_image(&reg, &app, Some(&tag("v1"))).await;
        let data = random_bytes(6 * 1024 * 1024);
        let digest = Digest::sha256(&data);
        reg.push_blob(&app, &digest, None, bytes_stream(data, 1 << 20))
            .await
            .unwrap();

        // A deadlock shows as this timeout; it is not a speed limit.
        let generous = Duration::from_secs(120);
        let work = async {
            let mut stalled = Vec::new();
            for _ in 0..600 {
                let mut stream = reg.get_blob(&app, &digest).await.unwrap().stream;
                let first = stream.next().await.unwrap().unwrap();
                assert!(!first.is_empty());
                stalled.push(stream);
            }
            reg.resolve_tag(&app, &tag("v1")).await.unwrap();
            let other = push_image(&reg, &repo("slow/other"), Some(&tag("v2"))).await;
            reg.resolve_blob(&app, &image.layers[0].digest)
                .await
                .unwrap();
            reg.resolve_tag(&repo("slow/other"), &tag("v2"))
                .await
                .unwrap();
            // The stalled downloads still finish once read.
            let mut last = stalled.pop().unwrap();
            while let Some(piece) = last.next().await {
                piece.unwrap();
            }
            drop(stalled);
            other
        };
        tokio::time::timeout(generous, work)
            .await
            .expect("requests stalled behind downloads nobody reads");
    });
}

/// Sets the modification time of an upload's data file.
fn age_upload(root: &std::path::Path, id: &str, age: Duration) {
    let data = root.join(".uploads").join(id).join("data");
    let file = std::fs::File::options()
        .write(true)
        .open(&data)
        .expect("open an upload's data file");
    file.set_modified(SystemTime::now() - age)
        .expect("set the data file's modification time");
}

#[tokio::test]
async fn idle_uploads_expire_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("expire/app");
    let hour = Duration::from_secs(3_600);
    let (old, fresh) = {
        let reg = LayoutRegistry::open(dir.path()).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let mut writer = reg.push_blob_chunked(&app).await.unwrap();
            writer.write(Bytes::from_static(b"part")).await.unwrap();
            ids.push(writer.id().to_owned());
            writer.close().await.unwrap();
        }
        age_upload(dir.path(), &ids[0], 2 * hour);
        assert_eq!(reg.expire_uploads(hour).await.unwrap(), 1);
        let err = reg.push_blob_chunked_resume(&app, &ids[0]).await.err();
        assert!(err.is_some_and(|e| e.is(ErrorCode::BlobUploadUnknown)));
        let fresh = ids.remove(1);
        (ids.remove(0), fresh)
    };
    assert!(!dir.path().join(".uploads").join(&old).exists());

    // After a restart the age still counts (it is on disk, not in memory).
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    assert_eq!(reg.expire_uploads(hour).await.unwrap(), 0);
    age_upload(dir.path(), &fresh, 25 * hour);
    assert_eq!(reg.expire_uploads(24 * hour).await.unwrap(), 1);
    let err = reg.push_blob_chunked_resume(&app, &fresh).await.err();
    assert!(err.is_some_and(|e| e.is(ErrorCode::BlobUploadUnknown)));
    assert_eq!(
        std::fs::read_dir(dir.path().join(".uploads"))
            .unwrap()
            .count(),
        0
    );
}

/// An upload some request is writing to is not idle: a writer that
/// resumed an old session keeps it, and its next write lands.
#[tokio::test]
async fn an_upload_in_use_is_not_expired_under_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let app = repo("expire/busy");
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let mut writer = reg.push_blob_chunked(&app).await.unwrap();
    writer
        .write(Bytes::from_static(b"part one,"))
        .await
        .unwrap();
    let id = writer.id().to_owned();
    writer.close().await.unwrap();
    age_upload(dir.path(), &id, Duration::from_secs(7_200));
    let mut writer = reg.push_blob_chunked_resume(&app, &id).await.unwrap();
    writer
        .write(Bytes::from_static(b" part two"))
        .await
        .unwrap();
    // Written just now: no longer idle.
    assert_eq!(
        reg.expire_uploads(Duration::from_secs(3_600))
            .await
            .unwrap(),
        0
    );
    let data = b"part one, part two";
    let digest = Digest::sha256(data);
    writer.commit(&digest).await.unwrap();
    let read = reg.get_blob(&app, &digest).await.unwrap().bytes().await;
    assert_eq!(read.unwrap(), Bytes::from_static(data));
}

/// Sends one request on a fresh connection and collects the answer (a
/// body the server cuts short is noted in `body_error`, the body empty).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Response {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{target}"))
        .header("content-length", body.len());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let req = req
        .body(full(Bytes::copy_from_slice(body)))
        .expect("a well-formed request");
    RawClient::new()
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("no answer: {e}"))
}

/// The path (and query) of an upload's `Location`, absolute or not.
fn location_path(answer: &Response) -> String {
    oci_testbed::load::location_path(answer.location()).to_owned()
}

/// The PATCH/commit race and the commit/commit race over HTTP, against
/// `oci-server` serving the store: no 5xx, no server path in an answer,
/// and a digest answered 201 serves exactly its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_of_one_upload_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let server = oci_server::TestServer::start(Arc::new(reg)).await;
    let addr = server.addr();
    let octets = || vec![("Content-Type", "application/octet-stream".to_owned())];
    let (mut corrupted, mut committed) = (0, 0);
    for round in 0..200 {
        let data = random_bytes(4_000);
        let digest = Digest::sha256(&data);
        let started = http(addr, "POST", "/v2/race/http/blobs/uploads/", &[], b"").await;
        assert_eq!(started.status, 202, "round {round}: start an upload");
        let mut headers = octets();
        headers.push(("Content-Range", format!("0-{}", data.len() - 1)));
        let patched = http(addr, "PATCH", &location_path(&started), &headers, &data).await;
        assert_eq!(patched.status, 202, "round {round}: first PATCH");
        let upload = location_path(&patched);
        let commit_target = with_query(&upload, "digest", &digest.to_string());
        let second = if round % 2 == 0 {
            // Another PATCH racing the commit.
            let extra = random_bytes(64 * 1024);
            let mut headers = octets();
            headers.push((
                "Content-Range",
                format!("{}-{}", data.len(), data.len() + extra.len() - 1),
            ));
            let upload = upload.clone();
            tokio::spawn(async move { http(addr, "PATCH", &upload, &headers, &extra).await })
        } else {
            // Another commit racing the commit.
            let target = commit_target.clone();
            tokio::spawn(async move { http(addr, "PUT", &target, &[], b"").await })
        };
        let first = http(addr, "PUT", &commit_target, &[], b"").await;
        let second = second.await.unwrap();
        for answer in [&first, &second] {
            let text = String::from_utf8_lossy(&answer.body);
            assert!(
                answer.status.as_u16() < 500,
                "round {round}: answered {}: {text}",
                answer.status
            );
            assert!(
                !text.contains(&root),
                "round {round}: a server path: {text}"
            );
        }
        if first.status == 201 || second.status == 201 {
            committed += 1;
            let got = http(
                addr,
                "GET",
                &format!("/v2/race/http/blobs/{digest}"),
                &[],
                b"",
            )
            .await;
            if got.status != 200 || got.body != data {
                corrupted += 1;
            }
        }
    }
    assert_eq!(
        corrupted, 0,
        "{corrupted} of {committed} committed blobs were served wrong"
    );
    assert!(committed > 0);
}

/// Over HTTP, a corrupt blob is never a clean, complete 200: the body
/// stops short of its announced length. Pushed again, it is served whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_blob_is_cut_short_over_http_and_a_push_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LayoutRegistry::open(dir.path()).await.unwrap();
    let app = repo("corrupt/http");
    let data = random_bytes(1_000_000);
    let digest = Digest::sha256(&data);
    reg.push_blob(&app, &digest, None, bytes_stream(data.clone(), 65_536))
        .await
        .unwrap();
    let path = dir
        .path()
        .join("corrupt/http/blobs/sha256")
        .join(digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[999_999] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let server = oci_server::TestServer::start(Arc::new(reg.clone())).await;
    let addr = server.addr();

    let target = format!("/v2/corrupt/http/blobs/{digest}");
    let got = http(addr, "GET", &target, &[], b"").await;
    let announced: Option<usize> = got.header("Content-Length").and_then(|v| v.parse().ok());
    assert!(
        got.status != 200 || announced.is_none_or(|n| got.body.len() < n),
        "a corrupt blob was served whole: {} with {} of {announced:?} bytes",
        got.status,
        got.body.len()
    );
    assert_ne!(got.body, data.as_ref());

    let pushed = http(
        addr,
        "POST",
        &format!("/v2/corrupt/http/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream".to_owned())],
        &data,
    )
    .await;
    assert_eq!(
        pushed.status,
        201,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    let got = http(addr, "GET", &target, &[], b"").await;
    assert_eq!(got.status, 200);
    assert!(
        got.body == data.as_ref(),
        "the re-pushed blob is served wrong"
    );
}
