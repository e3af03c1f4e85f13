//! Interoperability with the standard layout tools: `skopeo` and `umoci`
//! read the repositories we write, and we read (and add to) the layouts
//! they write. Needs Debian's skopeo and umoci (installed by
//! `.ci/install-deps`).

use std::path::Path;
use std::process::Command;

use oci_core::registry::collect_list;
use oci_core::testkit::{push_image, tag};
use oci_core::{ListOptions, Registry, RepoName};
use oci_layout::LayoutRegistry;

/// Runs a tool and returns its standard output; panics with its standard
/// error if it fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

#[tokio::test]
async fn skopeo_and_umoci_read_what_we_write() {
    let root = tempfile::tempdir().expect("temporary directory");
    let repo: RepoName = "interop/app".parse().expect("repository name");
    let reg = LayoutRegistry::open(root.path()).await.expect("open");
    let image = push_image(&reg, &repo, Some(&tag("v1"))).await;
    push_image(&reg, &repo, Some(&tag("v2"))).await;
    push_image(&reg, &repo, None).await;
    let dir = reg.repo_dir(&repo);

    let raw = run("skopeo", &["inspect", "--raw", &oci(&dir, "v1")]);
    assert_eq!(
        raw.as_bytes(),
        &image.manifest.bytes[..],
        "skopeo's view of v1"
    );

    // A copy checks every blob's digest on the way.
    let copy = tempfile::tempdir().expect("temporary directory");
    let target = copy.path().join("copied");
    run(
        "skopeo",
        &[
            "copy",
            "--insecure-policy",
            "--preserve-digests",
            &oci(&dir, "v1"),
            &oci(&target, "v1"),
        ],
    );
    let copied = run("skopeo", &["inspect", "--raw", &oci(&target, "v1")]);
    assert_eq!(copied, raw, "the copy's manifest");

    let listed = run("umoci", &["ls", "--layout", &dir.display().to_string()]);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"], "umoci ls");
}

#[tokio::test]
async fn we_read_and_extend_layouts_skopeo_and_umoci_write() {
    // Content to start from, written by us into a scratch store.
    let scratch = tempfile::tempdir().expect("temporary directory");
    let source: RepoName = "src".parse().expect("repository name");
    let image = {
        let reg = LayoutRegistry::open(scratch.path()).await.expect("open");
        push_image(&reg, &source, Some(&tag("v1"))).await
    };

    // skopeo writes a layout into a fresh root; umoci makes one from scratch.
    let root = tempfile::tempdir().expect("temporary directory");
    let from_skopeo = root.path().join("tools/skopeo");
    std::fs::create_dir_all(root.path().join("tools")).expect("tools directory");
    run(
        "skopeo",
        &[
            "copy",
            "--insecure-policy",
            "--preserve-digests",
            &oci(&scratch.path().join("src"), "v1"),
            &oci(&from_skopeo, "copied"),
        ],
    );
    let from_umoci = root.path().join("tools/umoci");
    let umoci_dir = from_umoci.display().to_string();
    run("umoci", &["init", "--layout", &umoci_dir]);
    run("umoci", &["new", "--image", &format!("{umoci_dir}:fresh")]);

    let reg = LayoutRegistry::open(root.path()).await.expect("open");
    let repos = collect_list(reg.repositories(&ListOptions::all()))
        .await
        .expect("catalog");
    let skopeo_repo: RepoName = "tools/skopeo".parse().expect("repository name");
    let umoci_repo: RepoName = "tools/umoci".parse().expect("repository name");
    assert_eq!(repos, [skopeo_repo.clone(), umoci_repo.clone()]);

    let got = reg
        .get_tag(&skopeo_repo, &tag("copied"))
        .await
        .expect("skopeo's tag");
    assert_eq!(got.bytes, image.manifest.bytes, "the manifest skopeo wrote");
    for (layer, bytes) in image.layers.iter().zip(&image.layer_bytes) {
        let read = reg
            .get_blob(&skopeo_repo, &layer.digest)
            .await
            .expect("layer");
        assert_eq!(read.bytes().await.expect("layer bytes"), *bytes);
    }

    let fresh = reg
        .get_tag(&umoci_repo, &tag("fresh"))
        .await
        .expect("umoci's tag");
    let parsed = fresh.parse().expect("umoci's manifest parses");
    let config = &parsed.blobs()[0].digest;
    let read = reg.get_blob(&umoci_repo, config).await.expect("config");
    read.bytes().await.expect("config bytes verify");

    // We add a tag to skopeo's layout; skopeo sees it.
    reg.push_manifest(&skopeo_repo, &got, &[tag("ours")])
        .await
        .expect("tag in skopeo's layout");
    let raw = run("skopeo", &["inspect", "--raw", &oci(&from_skopeo, "ours")]);
    assert_eq!(raw.as_bytes(), &image.manifest.bytes[..]);
    let listed = run(
        "umoci",
        &["ls", "--layout", &from_skopeo.display().to_string()],
    );
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(tags, ["copied", "ours"]);
}
