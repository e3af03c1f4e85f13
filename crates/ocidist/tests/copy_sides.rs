//! `copy` with a connection per side: from a plain-http registry to a
//! TLS one, each with its own credentials (Debian's docker-registry with
//! htpasswd), an index copied whole unless --platform picks one, and
//! platform names normalised.

#![allow(clippy::unwrap_used)]

mod support;

use oci_client::{Client, ClientOptions};
use oci_core::{Platform, RepoName, Tag};
use oci_testbed::distribution::{Distribution, Setup};
use support::{ocidist, ok, tar_image, tar_index};

#[tokio::test(flavor = "multi_thread")]
async fn copy_from_http_to_https_with_different_credentials() {
    let (src, dst) = tokio::task::spawn_blocking(|| {
        let src = Distribution::start(Setup::htpasswd("alice", "a-pass")).unwrap();
        let dst = Distribution::start(Setup {
            tls: true,
            ..Setup::htpasswd("bob", "b-pass")
        })
        .unwrap();
        (src, dst)
    })
    .await
    .unwrap();
    let src_host = src.host().to_owned();
    let dst_host = dst.host().to_owned();
    let ca = dst.certs().unwrap().ca_path();
    let ca = ca.to_str().unwrap();
    let client = Client::new(
        &src_host,
        ClientOptions::default().basic_auth("alice", "a-pass"),
    )
    .unwrap();
    let repo: RepoName = "side/app".parse().unwrap();
    let index = tar_index();
    index.push_children(&client, &repo).await;
    index.push_manifest(&client, &repo, &[Tag::latest()]).await;
    let single = tar_image(&Platform::new("linux", "arm64", None), 1, 500, false);
    single
        .push(&client, &"side/single".parse().unwrap(), &[Tag::latest()])
        .await;

    let src_flags = ["--src-username", "alice", "--src-password", "a-pass"];
    let dst_flags = [
        "--dest-username",
        "bob",
        "--dest-password",
        "b-pass",
        "--dest-scheme",
        "https",
        "--dest-cacert",
        ca,
    ];
    let copy = |extra: &[&str], from: &str, to: &str| {
        let mut args = vec!["copy"];
        args.extend_from_slice(&src_flags);
        args.extend_from_slice(&dst_flags);
        args.extend_from_slice(extra);
        let (from, to) = (from.to_owned(), to.to_owned());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
            all.push(&from);
            all.push(&to);
            ocidist(&all).await
        }
    };
    let from = format!("{src_host}/side/app");
    // No platform: the index itself, every platform.
    let out = ok(&copy(&[], &from, &format!("{dst_host}/copied/app:all")).await);
    assert_eq!(out.trim(), index.digest().to_string());
    let dst_read = |reference: String| async move {
        ocidist(&[
            "-u", "bob", "-p", "b-pass", "--scheme", "https", "--cacert", ca, "manifest", "--raw",
            &reference,
        ])
        .await
    };
    let got = dst_read(format!("{dst_host}/copied/app:all")).await;
    assert_eq!(got.stdout, index.manifest.bytes);
    for child in &index.children {
        let got = dst_read(format!("{dst_host}/copied/app@{}", child.manifest.digest())).await;
        assert_eq!(got.stdout, child.manifest.bytes);
    }
    // --platform picks one, by any common spelling.
    let out = ok(&copy(
        &["--platform", "linux/aarch64"],
        &from,
        &format!("{dst_host}/copied/app:arm64"),
    )
    .await);
    assert_eq!(out.trim(), index.children[1].manifest.digest().to_string());
    // A single image for another platform is refused when one is asked for...
    let out = copy(
        &["--platform", "linux/amd64"],
        &format!("{src_host}/side/single"),
        &format!("{dst_host}/copied/single"),
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("single-platform image for linux/arm64, not linux/amd64"),
        "{said}"
    );
    // ...and matched under an alias.
    ok(&copy(
        &["--platform", "linux/arm64/v8"],
        &format!("{src_host}/side/single"),
        &format!("{dst_host}/copied/single"),
    )
    .await);

    // Without the destination's credentials: exit 4, naming that side's flags.
    let out = ocidist(&[
        "copy",
        "--src-username",
        "alice",
        "--src-password",
        "a-pass",
        "--dest-scheme",
        "https",
        "--dest-cacert",
        ca,
        &from,
        &format!("{dst_host}/copied/denied"),
    ])
    .await;
    assert_eq!(out.status.code(), Some(4));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--dest-username") && said.contains(&dst_host),
        "{said}"
    );
    // The destination is TLS: plain http to it says which flag to use.
    let out = ocidist(&[
        "copy",
        "--src-username",
        "alice",
        "--src-password",
        "a-pass",
        &from,
        &format!("{dst_host}/copied/plain"),
    ])
    .await;
    assert_eq!(out.status.code(), Some(5));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--dest-scheme https"), "{said}");
}
