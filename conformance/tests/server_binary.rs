//! Runs the `oci-conformance-server` binary on a free port, reads its
//! `listening on` line, and runs checks of every workflow against it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use oci_conformance::{Config, Target, UrlMode, discovery, management, pull, push};

/// The running binary; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oci-conformance-server"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints a line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Server(child), url)
}

#[tokio::test]
async fn serves_every_workflow() {
    let (_server, url) = start(&["--addr", "127.0.0.1:0", "--store", "mem"]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // A fresh target (with its own repository names) per check.
    let t = || Target::new(&url, Config::default(), None);
    pull::pull_api_root(&t()).await;
    pull::pull_manifest_get_by_tag(&t()).await;
    pull::pull_blob_range(&t()).await;
    push::push_blob_chunked(&t()).await;
    push::push_blob_mount(&t()).await;
    push::push_manifest_with_subject(&t()).await;
    discovery::discovery_tags_paginated(&t()).await;
    discovery::discovery_referrers_filtered(&t()).await;
    management::management_delete_manifest(&t()).await;
    management::management_delete_blobs(&t()).await;
}

/// The binary over a stack with a proxy in it (`debug:unify:mem,proxy:…`
/// to a second binary), driven by a client that percent-decodes the
/// `Location`s it follows, as Go clients do: every upload flow works.
#[tokio::test]
async fn proxy_stack_serves_decoding_clients() {
    let (_upstream, upstream_url) = start(&["--addr", "127.0.0.1:0", "--store", "mem"]);
    let store = format!("debug:unify:mem,proxy:{upstream_url}");
    let (_server, url) = start(&["--addr", "127.0.0.1:0", "--store", &store]);
    let t = || {
        let mut config = Config::default();
        config.url_mode = UrlMode::Decoding;
        Target::new(&url, config, None)
    };
    pull::pull_manifest_invalid_reference(&t()).await;
    push::push_blob_monolithic(&t()).await;
    push::push_blob_chunked(&t()).await;
    push::push_blob_upload_resume(&t()).await;
    push::push_blob_upload_id_unreserved(&t()).await;
    push::push_blob_mount_unknown(&t()).await;
    push::push_manifest_by_tag(&t()).await;
    management::management_delete_invalid_reference(&t()).await;
}

#[test]
fn unknown_store_fails_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_oci-conformance-server"))
        .args(["--addr", "127.0.0.1:0", "--store", "s3"])
        .output()
        .expect("the server binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown store \"s3\""), "{stderr}");
    assert!(out.stdout.is_empty());
}
