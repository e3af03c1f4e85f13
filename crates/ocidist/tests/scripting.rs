//! Output for scripts: `--json` results of pull, push and copy (one object
//! on stdout, the documented keys), `tags`/`catalog --json`, and shell
//! completions.

#![allow(clippy::unwrap_used)]

mod support;

use support::{ocidist, ok, serve};

fn json(out: &std::process::Output) -> serde_json::Value {
    let text = ok(out);
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_push_copy_report_json() {
    let s = serve(&["--demo"]).unwrap();
    let hello = format!("{}/demo/hello", s.host);
    let index = ok(&ocidist(&["digest", &hello]).await).trim().to_owned();
    let arm = ok(&ocidist(&["digest", "--platform", "linux/arm64", &hello]).await)
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello.oci.tar");
    let pulled = json(
        &ocidist(&[
            "pull",
            "--json",
            "--platform",
            "linux/arm64",
            "--format",
            "oci",
            "-o",
            out.to_str().unwrap(),
            &hello,
        ])
        .await,
    );
    assert_eq!(pulled["reference"], format!("{hello}:latest"));
    assert_eq!(pulled["index"], index.as_str());
    assert_eq!(pulled["manifest"], arm.as_str());
    assert_eq!(pulled["format"], "oci");
    assert_eq!(pulled["path"], out.to_str().unwrap());
    assert_eq!(pulled["layers"], 1);
    assert!(pulled["bytes"].as_u64().unwrap() > 0);

    let pushed = json(
        &ocidist(&[
            "push",
            "--json",
            out.to_str().unwrap(),
            &format!("{}/back/hello:v1", s.host),
        ])
        .await,
    );
    assert_eq!(pushed["digest"], arm.as_str());
    assert_eq!(
        pushed["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(pushed["target"], format!("{}/back/hello:v1", s.host));
    assert_eq!(
        (pushed["uploaded"].as_u64(), pushed["present"].as_u64()),
        (Some(2), Some(0))
    );

    let copied = json(
        &ocidist(&[
            "copy",
            "--json",
            &hello,
            &format!("{}/mirror/hello", s.host),
        ])
        .await,
    );
    assert_eq!(copied["digest"], index.as_str());
    assert_eq!(
        copied["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(copied["target"], format!("{}/mirror/hello:latest", s.host));
    assert_eq!(copied["mounted"], 4);

    let tags = json(&ocidist(&["tags", "--json", &format!("{}/mirror/hello", s.host)]).await);
    assert_eq!(
        tags,
        serde_json::json!({"name": "mirror/hello", "tags": ["latest"]})
    );
    let catalog = json(&ocidist(&["catalog", "--json", &s.host]).await);
    assert_eq!(catalog["repositories"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish() {
    let bash = ok(&ocidist(&["completions", "bash"]).await);
    assert!(
        bash.contains("login") && bash.contains("--dest-cacert"),
        "{bash}"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ocidist.bash");
    std::fs::write(&script, &bash).unwrap();
    support::run(std::process::Command::new("bash").arg("-n").arg(&script));
    let zsh = ok(&ocidist(&["completions", "zsh"]).await);
    assert!(
        zsh.starts_with("#compdef ocidist") && zsh.contains("push"),
        "{zsh}"
    );
    let fish = ok(&ocidist(&["completions", "fish"]).await);
    assert!(
        fish.contains("complete -c ocidist") && fish.contains("inspect"),
        "{fish}"
    );
    let out = ocidist(&["completions", "tcsh"]).await;
    assert_eq!(out.status.code(), Some(2));
}
