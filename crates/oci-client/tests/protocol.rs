//! Protocol details against scripted registries: redirects and where
//! credentials go, `Link` pagination, mounts that open a session, the
//! referrers filter, the mirror namespace, chunk sizes and upload ids.

mod support;

use bytes::Bytes;
use oci_client::{AuthOptions, Client, ClientOptions, RetryConfig};
use oci_core::media::OCI_INDEX;
use oci_core::registry::collect_list;
use oci_core::{Digest, ErrorCode, ListOptions, Registry, RepoName};
use support::http::respond;
use support::script::Script;

fn repo() -> RepoName {
    "r".parse().expect("repository name")
}

fn options() -> ClientOptions {
    ClientOptions::default()
        .anonymous()
        .retry(RetryConfig::none())
}

fn client(script: &Script, options: ClientOptions) -> Client {
    Client::new(&script.host(), options).expect("client")
}

#[tokio::test]
async fn blob_redirects_drop_credentials_for_other_hosts() {
    let data = Bytes::from_static(b"redirected blob");
    let digest = Digest::sha256(&data);
    let cdn_data = data.clone();
    let cdn = Script::start(move |_| respond(200, &[], cdn_data.clone())).await;
    // Same port, other name: a different host as far as credentials go.
    let target = format!("http://localhost:{}/cdn/blob?sig=1", cdn.addr.port());
    let origin = Script::start(move |seen| {
        if seen.path.starts_with("/v2/r/blobs/") {
            respond(307, &[("location", "/moved/blob")], "")
        } else {
            respond(302, &[("location", &target)], "")
        }
    })
    .await;
    let options = options().auth(AuthOptions::BearerToken("secret".into()));
    let got = client(&origin, options)
        .get_blob(&repo(), &digest)
        .await
        .expect("read through redirects")
        .bytes()
        .await
        .expect("verified bytes");
    assert_eq!(got, data);
    let at_origin = origin.seen();
    assert_eq!(
        at_origin.len(),
        2,
        "the blob path, then the relative redirect"
    );
    assert!(
        at_origin
            .iter()
            .all(|s| s.header("authorization") == Some("Bearer secret")),
        "credentials go to the registry's own host"
    );
    let at_cdn = cdn.seen();
    assert_eq!(at_cdn.len(), 1);
    assert_eq!(at_cdn[0].path, "/cdn/blob");
    assert_eq!(at_cdn[0].query, "sig=1");
    assert_eq!(
        at_cdn[0].header("authorization"),
        None,
        "no credentials to another host"
    );
}

#[tokio::test]
async fn catalog_follows_relative_and_absolute_links() {
    let script = Script::start(|seen| {
        let host = seen.header("host").unwrap_or("").to_owned();
        match seen.query.as_str() {
            "" => respond(
                200,
                &[("link", "</v2/_catalog?last=b&n=2>; rel=\"next\"")],
                r#"{"repositories":["a","b"]}"#,
            ),
            "last=b&n=2" => respond(
                200,
                &[(
                    "link",
                    &format!("<http://{host}/v2/_catalog?last=d&n=2>; rel=\"next\""),
                )],
                r#"{"repositories":["c","d"]}"#,
            ),
            _ => respond(200, &[], r#"{"repositories":["e"]}"#),
        }
    })
    .await;
    let c = client(&script, options());
    let all = collect_list(c.repositories(&ListOptions::all()))
        .await
        .expect("catalog");
    let names: Vec<_> = all.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn catalog_pages_are_cut_when_the_registry_ignores_n() {
    let script =
        Script::start(|_| respond(200, &[], r#"{"repositories":["a","b","c","d"]}"#)).await;
    let c = client(&script, options());
    let page = ListOptions {
        last: Some("a".into()),
        n: Some(2),
    };
    let got = collect_list(c.repositories(&page))
        .await
        .expect("catalog page");
    let names: Vec<_> = got.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(script.seen()[0].query, "n=2&last=a");
}

#[tokio::test]
async fn tags_are_sorted_and_paged_by_the_client() {
    let script = Script::start(|seen| {
        if seen.query.is_empty() {
            respond(
                200,
                &[("link", "</v2/r/tags/list?last=b>; rel=\"next\"")],
                r#"{"name":"r","tags":["v2","b"]}"#,
            )
        } else {
            respond(200, &[], r#"{"name":"r","tags":["a","v1"]}"#)
        }
    })
    .await;
    let c = client(&script, options());
    let page = ListOptions {
        last: Some("a".into()),
        n: Some(2),
    };
    let tags = collect_list(c.tags(&repo(), &page)).await.expect("tags");
    let names: Vec<_> = tags.iter().map(|t| t.as_str()).collect();
    assert_eq!(names, ["b", "v1"]);
}

#[tokio::test]
async fn a_mount_that_opens_a_session_is_cancelled_and_reported_unknown() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "POST" => respond(
            202,
            &[("location", "/v2/r/blobs/uploads/opened?_state=x")],
            "",
        ),
        "DELETE" => respond(204, &[], ""),
        _ => respond(500, &[], ""),
    })
    .await;
    let from: RepoName = "other".parse().expect("repository name");
    let digest = Digest::sha256(b"blob");
    let err = client(&script, options())
        .mount_blob(&repo(), &from, &digest)
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::BlobUnknown), "{err}");
    let seen = script.seen();
    assert_eq!(
        seen[0].query,
        format!(
            "mount={}&from=other",
            digest.to_string().replace(':', "%3A")
        )
    );
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(seen[1].path, "/v2/r/blobs/uploads/opened");
    assert_eq!(seen[1].query, "_state=x");
}

#[tokio::test]
async fn referrers_are_filtered_when_the_registry_did_not() {
    let subject = Digest::sha256(b"subject");
    let (sig, sbom) = (Digest::sha256(b"sig"), Digest::sha256(b"sbom"));
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{sig}","size":1,"artifactType":"application/x-sig"}},
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{sbom}","size":1,"artifactType":"application/x-sbom"}}]}}"#
    );
    let script =
        Script::start(move |_| respond(200, &[("content-type", OCI_INDEX)], index.clone())).await;
    let c = client(&script, options());
    let got = collect_list(c.referrers(&repo(), &subject, Some("application/x-sbom")))
        .await
        .expect("referrers");
    let digests: Vec<_> = got.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [&sbom]);
    assert_eq!(script.seen()[0].query, "artifactType=application%2Fx-sbom");
}

#[tokio::test]
async fn the_mirror_namespace_is_on_every_request() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "POST" => respond(202, &[("location", "/v2/r/blobs/uploads/u1?_state=s")], ""),
        "PUT" => respond(201, &[], ""),
        _ => respond(404, &[], ""),
    })
    .await;
    let c = client(&script, options().namespace("docker.io"));
    let _ = c.ping().await;
    let _ = c.resolve_tag(&repo(), &"v1".parse().expect("tag")).await;
    let data = Bytes::from_static(b"x");
    c.push_blob(
        &repo(),
        &Digest::sha256(&data),
        Some(1),
        oci_core::registry::bytes_stream(data, 1),
    )
    .await
    .expect("push");
    let seen = script.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        let count = s.query.matches("ns=docker.io").count();
        assert_eq!(count, 1, "{} {}?{}", s.method, s.path, s.query);
    }
    assert!(seen[3].query.starts_with("_state=s&"), "{}", seen[3].query);
}

#[tokio::test]
async fn chunked_uploads_honour_the_minimum_chunk_length() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "POST" => respond(
            202,
            &[
                ("location", "/v2/r/blobs/uploads/u1"),
                ("oci-chunk-min-length", "10"),
                ("range", "0-0"),
            ],
            "",
        ),
        "PATCH" => {
            let (start, end) = oci_core::wire::parse_upload_content_range(
                seen.header("content-range").unwrap_or(""),
            )
            .expect("content-range");
            assert_eq!(end - start + 1, seen.body.len() as u64);
            respond(
                202,
                &[
                    ("location", "/v2/r/blobs/uploads/u1"),
                    ("range", &format!("0-{end}")),
                ],
                "",
            )
        }
        "PUT" => respond(201, &[], ""),
        _ => respond(500, &[], ""),
    })
    .await;
    let c = client(&script, options());
    let mut w = c.push_blob_chunked(&repo()).await.expect("start");
    assert_eq!(w.chunk_min(), Some(10));
    let data: Vec<u8> = (0..35u8).collect();
    for part in data.chunks(3) {
        w.write(Bytes::copy_from_slice(part)).await.expect("write");
    }
    assert_eq!(w.size(), 35);
    w.commit(&Digest::sha256(&data)).await.expect("commit");
    let seen = script.seen();
    let patches: Vec<usize> = seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.body.len())
        .collect();
    assert!(
        patches.iter().all(|n| (10..13).contains(n)),
        "chunk sizes {patches:?}"
    );
    let put = seen.iter().find(|s| s.method == "PUT").expect("a PUT");
    assert!(put.body.len() < 10);
    assert_eq!(patches.iter().sum::<usize>() + put.body.len(), 35);
}

#[tokio::test]
async fn uploads_resume_by_location_or_uuid_but_not_elsewhere() {
    let script = Script::start(|seen| match seen.method.as_str() {
        "GET" if seen.path == "/v2/r/blobs/uploads/u1" => respond(
            204,
            &[
                ("location", "/v2/r/blobs/uploads/u1?_state=next"),
                ("range", "0-99"),
            ],
            "",
        ),
        _ => respond(
            404,
            &[],
            r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"no such upload"}]}"#,
        ),
    })
    .await;
    let c = client(&script, options());
    let by_uuid = c
        .push_blob_chunked_resume(&repo(), "u1")
        .await
        .expect("resume by uuid");
    assert_eq!(by_uuid.size(), 100);
    // The id carries the new Location, in characters no client mangles.
    assert!(
        oci_core::upload_id::is_valid(by_uuid.id()),
        "{}",
        by_uuid.id()
    );
    assert_ne!(by_uuid.id(), "u1");
    let by_url = c
        .push_blob_chunked_resume(&repo(), by_uuid.id())
        .await
        .expect("resume by id");
    assert_eq!(by_url.size(), 100);
    let gone = c
        .push_blob_chunked_resume(&repo(), "u2")
        .await
        .err()
        .expect("no upload u2");
    assert!(gone.is(ErrorCode::BlobUploadUnknown), "{gone}");
    let encoded = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    for foreign in [
        "http://elsewhere.example/v2/r/blobs/uploads/u1".to_owned(),
        "../../etc".to_owned(),
        "/v2/other/blobs/uploads/u1".to_owned(),
        encoded("http://elsewhere.example/v2/r/blobs/uploads/u1"),
        encoded("/v2/other/blobs/uploads/u1"),
        encoded("../../other/blobs/uploads/u1"),
    ] {
        let foreign = foreign.as_str();
        let err = c
            .push_blob_chunked_resume(&repo(), foreign)
            .await
            .err()
            .expect("refused");
        assert!(err.is(ErrorCode::BlobUploadUnknown), "{foreign}: {err}");
    }
}

#[tokio::test]
async fn an_unread_blob_stream_holds_its_concurrency_slot() {
    let data = Bytes::from(vec![1u8; 1000]);
    let digest = Digest::sha256(&data);
    let served = data.clone();
    let script = Script::start(move |seen| {
        if seen.method == "HEAD" {
            respond(200, &[("content-length", "1000")], "")
        } else {
            let mut res = respond(200, &[("content-length", "1000")], "");
            *res.body_mut() = support::script::stalled_body(served.slice(..10));
            res
        }
    })
    .await;
    let c = client(&script, options().max_concurrency(1).read_timeout(None));
    let reader = c.get_blob(&repo(), &digest).await.expect("open the blob");
    // The only slot is held by the open stream: the HEAD cannot start.
    let blocked = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        c.resolve_blob(&repo(), &digest),
    )
    .await;
    assert!(
        blocked.is_err(),
        "a second request ran beside the open stream"
    );
    assert_eq!(script.seen().len(), 1);
    drop(reader);
    let d = c
        .resolve_blob(&repo(), &digest)
        .await
        .expect("HEAD once the slot is free");
    assert_eq!(d.size, 1000);
}

#[tokio::test]
async fn referrers_pages_follow_links_and_keep_the_filter() {
    let subject = Digest::sha256(b"subject");
    let entry = |d: &Digest| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":1,"artifactType":"application/x-sig"}}"#
        )
    };
    let (a, b) = (Digest::sha256(b"a"), Digest::sha256(b"b"));
    let first = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, entry(&a));
    let second = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, entry(&b));
    let script = Script::start(move |seen| {
        let filtered = [
            ("content-type", OCI_INDEX),
            ("oci-filters-applied", "artifactType"),
        ];
        if seen.query.contains("page=2") {
            respond(200, &filtered, second.clone())
        } else {
            let link = format!(
                "<{}?artifactType=application%2Fx-sig&page=2>; rel=\"next\"",
                seen.path
            );
            let mut headers = filtered.to_vec();
            headers.push(("link", &link));
            respond(200, &headers, first.clone())
        }
    })
    .await;
    let c = client(&script, options());
    let got = collect_list(c.referrers(&repo(), &subject, Some("application/x-sig")))
        .await
        .expect("referrers");
    let digests: Vec<_> = got.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [&a, &b]);
    assert_eq!(script.seen().len(), 2);
}
