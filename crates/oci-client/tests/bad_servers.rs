//! Registries that misbehave: wrong or short content, oversized
//! manifests, error bodies that are not JSON, broken challenges, transient
//! failures and dropped connections. Each must end in a clear error (or,
//! where the client can recover, in the right result).

mod support;

use std::time::Duration;

use bytes::Bytes;
use oci_client::{Client, ClientOptions, RetryConfig};
use oci_core::media::OCI_MANIFEST;
use oci_core::registry::bytes_stream;
use oci_core::{Digest, ErrorCode, Registry, RepoName, Tag};
use support::http::respond;
use support::script::{Script, broken_body, stalled_body};

fn repo() -> RepoName {
    "r".parse().expect("repository name")
}

fn fast_retries(max_retries: u32) -> RetryConfig {
    RetryConfig {
        max_retries,
        max_elapsed: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        base: 2.0,
    }
}

fn client(script: &Script) -> Client {
    let options = ClientOptions::default().anonymous().retry(fast_retries(3));
    Client::new(&script.host(), options).expect("client")
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

#[tokio::test]
async fn manifest_bytes_must_match_what_was_asked_for() {
    let other = Digest::sha256(b"something else");
    let script = Script::start(move |_| {
        respond(
            200,
            &[("content-type", OCI_MANIFEST)],
            Bytes::from_static(MANIFEST),
        )
    })
    .await;
    let c = client(&script);
    let err = c.get_manifest(&repo(), &other).await.unwrap_err();
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    let ok = c
        .get_manifest(&repo(), &Digest::sha256(MANIFEST))
        .await
        .unwrap();
    assert_eq!(ok.media_type(), OCI_MANIFEST);
    assert_eq!(&ok.bytes[..], MANIFEST);
}

#[tokio::test]
async fn manifest_by_tag_is_checked_against_docker_content_digest() {
    let wrong = Digest::sha256(b"x").to_string();
    let script = Script::start(move |seen| {
        if seen.path.ends_with("/lying") {
            respond(
                200,
                &[
                    ("content-type", OCI_MANIFEST),
                    ("docker-content-digest", &wrong),
                ],
                Bytes::from_static(MANIFEST),
            )
        } else {
            // No Content-Type and no digest: both are worked out from the bytes.
            respond(200, &[], Bytes::from_static(MANIFEST))
        }
    })
    .await;
    let c = client(&script);
    let err = c
        .get_tag(&repo(), &"lying".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
    let m = c.get_tag(&repo(), &"plain".parse().unwrap()).await.unwrap();
    assert_eq!(*m.digest(), Digest::sha256(MANIFEST));
    assert_eq!(m.media_type(), OCI_MANIFEST);
}

#[tokio::test]
async fn oversized_manifests_are_refused() {
    let big = Bytes::from(vec![b' '; oci_core::manifest::MAX_MANIFEST_SIZE + 1]);
    let script =
        Script::start(move |_| respond(200, &[("content-type", OCI_MANIFEST)], big.clone())).await;
    let err = client(&script)
        .get_tag(&repo(), &"big".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::SizeInvalid), "{err}");
}

#[tokio::test]
async fn blob_with_wrong_content_fails_at_the_end_of_the_stream() {
    let data = Bytes::from_static(b"hello world");
    let digest = Digest::sha256(b"hello there");
    let script = Script::start(move |_| respond(200, &[], data.clone())).await;
    let reader = client(&script).get_blob(&repo(), &digest).await.unwrap();
    let err = reader.bytes().await.unwrap_err();
    assert!(err.is(ErrorCode::DigestInvalid), "{err}");
}

#[tokio::test]
async fn dropped_blob_read_resumes_from_the_offset_reached() {
    let data = Bytes::from((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let digest = Digest::sha256(&data);
    let half = 70_000usize;
    let served = data.clone();
    let script = Script::start(move |seen| match seen.header("range") {
        None => {
            let mut res = respond(200, &[("content-length", &served.len().to_string())], "");
            *res.body_mut() = broken_body(served.slice(..half));
            res
        }
        Some(range) => {
            let start: usize = range
                .trim_start_matches("bytes=")
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let end = served.len() - 1;
            respond(
                206,
                &[(
                    "content-range",
                    &format!("bytes {start}-{end}/{}", served.len()),
                )],
                served.slice(start..),
            )
        }
    })
    .await;
    let got = client(&script)
        .get_blob(&repo(), &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got, data);
    let ranges: Vec<String> = script
        .seen()
        .iter()
        .filter_map(|s| s.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, [format!("bytes={half}-{}", data.len() - 1)]);
}

#[tokio::test]
async fn a_stalled_blob_read_resumes_after_the_read_timeout() {
    let data = Bytes::from(vec![3u8; 30_000]);
    let digest = Digest::sha256(&data);
    let served = data.clone();
    let script = Script::start(move |seen| match seen.header("range") {
        None => {
            let mut res = respond(200, &[("content-length", &served.len().to_string())], "");
            *res.body_mut() = stalled_body(served.slice(..1000));
            res
        }
        Some(_) => respond(
            206,
            &[(
                "content-range",
                &format!("bytes 1000-29999/{}", served.len()),
            )],
            served.slice(1000..),
        ),
    })
    .await;
    let options = ClientOptions::default()
        .anonymous()
        .retry(fast_retries(3))
        .read_timeout(Some(Duration::from_millis(200)));
    let client = Client::new(&script.host(), options).expect("client");
    let got = client
        .get_blob(&repo(), &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(
        script.seen().len(),
        2,
        "the stalled read and its resumption"
    );
}

#[tokio::test]
async fn a_read_that_keeps_dropping_gives_up() {
    let data = Bytes::from(vec![7u8; 50_000]);
    let digest = Digest::sha256(&data);
    let served = data.clone();
    let script = Script::start(move |_| {
        let mut res = respond(200, &[("content-length", &served.len().to_string())], "");
        *res.body_mut() = broken_body(served.slice(..10));
        res
    })
    .await;
    let err = client(&script)
        .get_blob(&repo(), &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(err.message().contains("resum"), "{err}");
}

#[tokio::test]
async fn error_bodies_that_are_not_json_map_by_status() {
    let script = Script::start(|seen| {
        if seen.path.contains("/manifests/") {
            respond(
                400,
                &[("content-type", "text/html")],
                "<html>bad things</html>",
            )
        } else {
            respond(404, &[("content-type", "text/plain")], "404 page not found")
        }
    })
    .await;
    let c = client(&script);
    let err = c.get_tag(&repo(), &"x".parse().unwrap()).await.unwrap_err();
    assert!(err.is(ErrorCode::Unknown), "{err}");
    assert_eq!(err.status(), 400);
    assert!(err.message().contains("bad things"), "{err}");
    let err = c.get_blob(&repo(), &Digest::sha256(b"")).await.unwrap_err();
    assert!(err.is(ErrorCode::BlobUnknown), "{err}");
    let err = c
        .resolve_blob(&repo(), &Digest::sha256(b""))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::BlobUnknown), "{err}");
}

#[tokio::test]
async fn spec_error_bodies_keep_their_code() {
    let script = Script::start(|_| {
        respond(
            400,
            &[("content-type", "application/json")],
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:00"}]}"#,
        )
    })
    .await;
    let m = oci_core::Manifest::new(OCI_MANIFEST, Bytes::from_static(MANIFEST));
    let err = client(&script)
        .push_manifest(&repo(), &m, &[])
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::ManifestBlobUnknown), "{err}");
    assert_eq!(err.detail(), Some(&serde_json::json!("sha256:00")));
}

#[tokio::test]
async fn malformed_challenges_leave_the_request_unauthorized() {
    let script = Script::start(|_| {
        respond(
            401,
            &[("www-authenticate", "Bearer service=\"no realm\", ,,=\"")],
            "",
        )
    })
    .await;
    let err = client(&script).ping().await.unwrap_err();
    assert!(err.is(ErrorCode::Unauthorized), "{err}");
    assert_eq!(script.seen().len(), 1, "nothing to retry with");
}

#[tokio::test]
async fn transient_failures_are_retried_honouring_retry_after() {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = count.clone();
    let script =
        Script::start(
            move |_| match n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => respond(503, &[("retry-after", "0")], ""),
                1 => respond(502, &[], ""),
                _ => respond(200, &[("content-length", "5")], ""),
            },
        )
        .await;
    let d = client(&script)
        .resolve_blob(&repo(), &Digest::sha256(b"hello"))
        .await
        .unwrap();
    assert_eq!(d.size, 5);
    assert_eq!(script.seen().len(), 3);
}

#[tokio::test]
async fn throttling_that_never_ends_is_toomanyrequests() {
    let script = Script::start(|_| respond(429, &[("retry-after", "0")], "")).await;
    let err = client(&script)
        .resolve_blob(&repo(), &Digest::sha256(b""))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::TooManyRequests), "{err}");
    // The registry's Retry-After stays with the error, for a mirror to pass on.
    assert_eq!(err.retry_after(), Some(std::time::Duration::ZERO));
    assert_eq!(
        script.seen().len(),
        4,
        "the first attempt and three retries"
    );
}

#[tokio::test]
async fn streamed_uploads_are_not_replayed() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "POST" => respond(202, &[("location", "/v2/r/blobs/uploads/u1")], ""),
        _ => respond(503, &[], ""),
    })
    .await;
    let data = Bytes::from_static(b"payload");
    let err = client(&script)
        .push_blob(
            &repo(),
            &Digest::sha256(&data),
            Some(7),
            bytes_stream(data, 3),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    let puts = script.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 1);
}

#[tokio::test]
async fn push_of_the_wrong_size_is_size_invalid() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "POST" => respond(202, &[("location", "/v2/r/blobs/uploads/u1")], ""),
        _ => respond(201, &[], ""),
    })
    .await;
    let data = Bytes::from_static(b"payload");
    let err = client(&script)
        .push_blob(
            &repo(),
            &Digest::sha256(&data),
            Some(6),
            bytes_stream(data, 3),
        )
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::SizeInvalid), "{err}");
}

#[tokio::test]
async fn head_without_a_digest_falls_back_to_get() {
    let script = Script::start(|seen| {
        if seen.method == "HEAD" {
            respond(200, &[("content-type", OCI_MANIFEST)], "")
        } else {
            respond(
                200,
                &[("content-type", OCI_MANIFEST)],
                Bytes::from_static(MANIFEST),
            )
        }
    })
    .await;
    let tag: Tag = "v1".parse().unwrap();
    let d = client(&script).resolve_tag(&repo(), &tag).await.unwrap();
    assert_eq!(d.digest, Digest::sha256(MANIFEST));
    assert_eq!(d.size, MANIFEST.len() as u64);
    assert_eq!(d.media_type, OCI_MANIFEST);
    let methods: Vec<_> = script.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}
