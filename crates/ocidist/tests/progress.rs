//! Progress: on a terminal (a pty from `script`) per-blob bars and an
//! overall line with bytes, speed and time left for pull, push and copy;
//! off a terminal nothing, or one line per blob with `-v`.

#![allow(clippy::unwrap_used)]

mod support;

use support::{ocidist, ok, run, serve};

/// Runs the binary on a pseudo-terminal and returns what it showed.
fn on_terminal(args: &[&str]) -> String {
    let mut line = String::from(env!("CARGO_BIN_EXE_ocidist"));
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    run(std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", "/nonexistent-ocidist-test"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bars_on_a_terminal_lines_with_v_and_silence_otherwise() {
    let s = serve(&["--demo"]).unwrap();
    let hello = format!("{}/demo/hello", s.host);
    let arm_layer = {
        let m: serde_json::Value = serde_json::from_slice(
            &ocidist(&["manifest", "--raw", "--platform", "linux/arm64", &hello])
                .await
                .stdout,
        )
        .unwrap();
        m["layers"][0]["digest"].as_str().unwrap().to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();

    let shown = on_terminal(&[
        "pull",
        "--platform",
        "linux/arm64",
        &hello,
        "-o",
        &path("t.tar"),
    ]);
    let bar = &arm_layer["sha256:".len().."sha256:".len() + 12];
    assert!(
        shown.contains(bar) && shown.contains("total") && shown.contains("eta"),
        "{shown}"
    );
    let shown = on_terminal(&[
        "push",
        &path("t.tar"),
        &format!("{}/pushed/hello:v1", s.host),
    ]);
    assert!(shown.contains(bar) && shown.contains("total"), "{shown}");
    let shown = on_terminal(&["copy", &hello, &format!("{}/copied/hello", s.host)]);
    assert!(shown.contains("total"), "{shown}");

    // Off a terminal: nothing about blobs, or one line each with -v.
    let quiet = ocidist(&[
        "pull",
        "--platform",
        "linux/arm64",
        &hello,
        "-o",
        &path("q.tar"),
    ])
    .await;
    ok(&quiet);
    let said = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        !said.contains(&arm_layer) && !said.contains("total"),
        "{said}"
    );
    let verbose = ocidist(&[
        "-v",
        "pull",
        "--platform",
        "linux/arm64",
        &hello,
        "-o",
        &path("v.tar"),
    ])
    .await;
    ok(&verbose);
    let said = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        said.lines().any(|l| l == format!("{arm_layer} 2048 bytes")),
        "{said}"
    );
}
