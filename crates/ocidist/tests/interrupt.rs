//! An interrupted pull (SIGINT while a layer is half downloaded) exits
//! non-zero and leaves nothing at the target path, only the hidden partial
//! output beside it that a second run resumes from.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use oci_core::{
    BlobReader, Digest, Error, Platform, RangeRequest, Registry, RepoName, Result, Tag, async_trait,
};
use oci_mem::MemRegistry;
use support::tar_image;

/// Serves a store whose blob reads stop after the first piece, forever.
/// It has no ranged reads, so every blob is read whole, through the stall.
struct Stalling(MemRegistry);

#[async_trait]
impl Registry for Stalling {
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(&self.0)
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let mut reader = self.0.get_blob(repo, digest).await?;
        let first = reader.stream.next().await;
        reader.stream = futures::stream::iter(first)
            .chain(futures::stream::pending())
            .boxed();
        Ok(reader)
    }

    async fn get_blob_range(
        &self,
        _: &RepoName,
        _: &Digest,
        _: RangeRequest,
    ) -> Result<BlobReader> {
        Err(Error::unsupported("get_blob_range"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_mid_download_leaves_only_the_partial_output() {
    let store = MemRegistry::new();
    let image = tar_image(&Platform::new("linux", "amd64", None), 2, 1 << 20, false);
    image
        .push(&store, &"slow/app".parse().unwrap(), &[Tag::latest()])
        .await;
    let server = oci_server::TestServer::start(Arc::new(Stalling(store))).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.tar");
    let reference = format!("{}/slow/app", server.url().trim_start_matches("http://"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ocidist"))
        .args([
            "pull",
            &reference,
            "--ranged-above",
            "0",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("DOCKER_CONFIG", "/nonexistent-ocidist-test")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the download has begun writing its temporary file.
    loop {
        let partial = std::fs::read_dir(dir.path()).unwrap().count();
        if partial > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was interrupted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    support::run(std::process::Command::new("kill").args(["-INT", &pid]));
    let done = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(done.status.code(), Some(130));
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(err.trim(), "ocidist: interrupted", "{err}");
    // Nothing at the target: only the hidden partial output a second run
    // resumes from.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [".app.tar.partial"], "left behind: {left:?}");
    assert!(!out.exists());
}
