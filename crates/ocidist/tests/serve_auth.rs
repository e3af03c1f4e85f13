//! `ocidist serve` with authentication, driven by real clients: skopeo
//! with and without credentials, podman login/pull/push, and `ocidist`
//! itself; and the refusal to serve a non-loopback address open.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{ocidist, serve};

/// Written by `htpasswd -nbB alice wonderland` and
/// `htpasswd -nbB -C 6 bob builder`.
const USERS: &str = "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n\
                     bob:$2y$06$w9FqOKTYALuNqHRCzliIH./fJ7LQXmqd2yGiTtt737QuFT7hmeEzq\n";

const POLICY: &str = r#"
[[rule]]
repositories = ["**"]
users = ["alice"]
actions = ["*"]

[[rule]]
repositories = ["demo/**", "team-a/**"]
users = ["bob"]
actions = ["pull"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo runs (run .ci/install-deps)")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn skopeo_pushes_and_pulls_with_credentials_and_is_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users", USERS);
    let policy = write(dir.path(), "policy.toml", POLICY);
    let server = serve(&["--htpasswd", &users, "--policy", &policy, "--demo"]).unwrap();
    let host = &server.host;
    let hello = format!("docker://{host}/demo/hello:latest");
    let copy = format!("docker://{host}/team-a/hello:v1");

    // Without credentials: refused, as unauthorized.
    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", &hello]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));

    // Alice copies within the server: pull and push with credentials.
    let out = skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "alice:wonderland",
        "--dest-creds",
        "alice:wonderland",
        &hello,
        &copy,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Bob may pull it, not push.
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:builder",
        &copy,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "bob:builder",
        "--dest-creds",
        "bob:builder",
        &hello,
        &format!("docker://{host}/team-a/mine:v1"),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("denied"),
        "{}",
        stderr(&out)
    );

    // A wrong password is no better than none.
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:wonderland",
        &copy,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));

    // ocidist's own client with -u/-p.
    let reference = format!("{host}/team-a/hello:v1");
    let out = ocidist(&[
        "tags",
        "-u",
        "bob",
        "-p",
        "builder",
        &format!("{host}/team-a/hello"),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1");
    let out = ocidist(&["delete", "-u", "bob", "-p", "builder", &reference]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("DENIED"), "{}", stderr(&out));
}

#[tokio::test]
async fn podman_logs_in_pulls_and_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users", USERS);
    let policy = write(dir.path(), "policy.toml", POLICY);
    let server = serve(&["--htpasswd", &users, "--policy", &policy, "--demo"]).unwrap();
    let host = &server.host;
    let authfile = dir.path().join("auth.json");
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", &authfile)
            .output()
            .expect("podman runs (run .ci/install-deps)")
    };
    let out = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "nope",
        host,
    ]);
    assert!(!out.status.success(), "a wrong password does not log in");
    let out = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "wonderland",
        host,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hello = format!("{host}/demo/hello:latest");
    let out = podman(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/amd64",
        &hello,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = format!("{host}/team-a/hello:podman");
    let out = podman(&["tag", &hello, &pushed]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = podman(&["push", "--tls-verify=false", &pushed]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Bob, logged in, may pull what alice pushed but not push.
    let out = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "bob",
        "-p",
        "builder",
        host,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = podman(&["push", "--tls-verify=false", &pushed]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refuses_to_serve_other_addresses_open() {
    let out = Command::new(env!("CARGO_BIN_EXE_ocidist"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("without authentication"), "{err}");
    assert!(err.contains("--insecure-no-auth"), "{err}");
}

/// A loopback port that was free a moment ago (for a server that must
/// know its own URL before it starts: the token realm).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn skopeo_and_podman_go_through_the_builtin_token_service() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users", USERS);
    let policy = write(dir.path(), "policy.toml", POLICY);
    let store = dir.path().join("store");
    let addr = format!("127.0.0.1:{}", free_port());
    let realm = format!("http://{addr}/token");
    let server = serve(&[
        "--addr",
        &addr,
        "--storage",
        store.to_str().unwrap(),
        "--htpasswd",
        &users,
        "--policy",
        &policy,
        "--token-realm",
        &realm,
        "--demo",
    ])
    .unwrap();
    assert!(
        store.join("token-signing.key").exists(),
        "the key is kept with the store"
    );
    let host = &server.host;
    let hello = format!("docker://{host}/demo/hello:latest");
    let copy = format!("docker://{host}/team-a/hello:v1");

    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", &hello]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    let out = skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "alice:wonderland",
        "--dest-creds",
        "alice:wonderland",
        &hello,
        &copy,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:builder",
        &copy,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "bob:builder",
        "--dest-creds",
        "bob:builder",
        &hello,
        &format!("docker://{host}/team-a/mine:v1"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );

    let authfile = dir.path().join("auth.json");
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", &authfile)
            .output()
            .expect("podman runs (run .ci/install-deps)")
    };
    let out = podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "wonderland",
        host,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pulled = format!("{host}/team-a/hello:v1");
    let out = podman(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &pulled,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = format!("{host}/team-a/hello:podman");
    assert!(podman(&["tag", &pulled, &pushed]).status.success());
    let out = podman(&["push", "--tls-verify=false", &pushed]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:builder",
        &format!("docker://{pushed}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
