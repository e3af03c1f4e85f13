//! `login` and `logout` against Debian's docker-registry with htpasswd:
//! credentials are checked before they are saved, land where skopeo and
//! podman read them (docker's config.json, or a credential helper), and
//! go away again.

#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use oci_client::{Client, ClientOptions};
use oci_core::testkit::push_image;
use oci_testbed::distribution::{Distribution, Setup};
use support::{ocidist_with, ok, run, skopeo_raw_http};

async fn registry() -> (Distribution, String) {
    let registry =
        tokio::task::spawn_blocking(|| Distribution::start(Setup::htpasswd("tester", "s3cret")))
            .await
            .unwrap()
            .expect("docker-registry (run .ci/install-deps)");
    let host = registry.url().trim_start_matches("http://").to_owned();
    let client = Client::new(
        &host,
        ClientOptions::default().basic_auth("tester", "s3cret"),
    )
    .unwrap();
    push_image(
        &client,
        &"auth/app".parse().unwrap(),
        Some(&"v1".parse().unwrap()),
    )
    .await;
    (registry, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn login_writes_docker_config_that_skopeo_and_podman_read_and_logout_removes_it() {
    let (_registry, host) = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = dir.path().to_str().unwrap();
    let config = dir.path().join("config.json");
    let env = [("DOCKER_CONFIG", cfg_dir)];
    let login = |password: &'static [u8]| {
        let host = host.clone();
        async move {
            ocidist_with(
                &["login", "-u", "tester", "--password-stdin", &host],
                &env,
                Some(password),
            )
            .await
        }
    };

    // A wrong password is refused by the registry and nothing is saved.
    let out = login(b"wrong\n").await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected the credentials"));
    assert!(!config.exists());

    // The right one is saved as docker does.
    ok(&login(b"s3cret\n").await);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:s3cret");
    assert_eq!(v["auths"][host.as_str()]["auth"], auth.as_str());
    // skopeo and podman read it; so do we.
    let raw = skopeo_raw_http(
        &["--authfile", config.to_str().unwrap()],
        &format!("{host}/auth/app:v1"),
    );
    assert_eq!(raw["schemaVersion"], 2);
    let who = run(std::process::Command::new("podman").args([
        "login",
        "--get-login",
        "--authfile",
        config.to_str().unwrap(),
        &host,
    ]));
    assert_eq!(who.trim(), "tester");
    let repo = format!("{host}/auth/app");
    assert_eq!(
        ok(&ocidist_with(&["tags", &repo], &env, None).await).trim(),
        "v1"
    );

    // logout removes it: reads need credentials again.
    ok(&ocidist_with(&["logout", &host], &env, None).await);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v["auths"].get(host.as_str()).is_none(), "{v}");
    let out = ocidist_with(&["tags", &repo], &env, None).await;
    assert_eq!(out.status.code(), Some(4));
    let out = ocidist_with(&["logout", &host], &env, None).await;
    assert!(String::from_utf8_lossy(&ok_err(&out)).contains("not logged in"));
}

fn ok_err(out: &std::process::Output) -> Vec<u8> {
    ok(out);
    out.stderr.clone()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn login_goes_through_the_configured_credential_helper() {
    use std::os::unix::fs::PermissionsExt;
    let (_registry, host) = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let stored = dir.path().join("stored.json");
    // A helper keeping one credential in a file, speaking docker's protocol.
    let helper = bin.join("docker-credential-ocitest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nf={}\ncase \"$1\" in\n\
             store) cat > \"$f\" ;;\n\
             get) read host; if [ -f \"$f\" ]; then cat \"$f\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
             erase) read host; if [ -f \"$f\" ]; then rm \"$f\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
             esac\n",
            stored.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, br#"{"credsStore":"ocitest"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let env = [
        ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
        ("PATH", path.as_str()),
    ];

    let out = ocidist_with(
        &["login", "-u", "tester", "--password-stdin", &host],
        &env,
        Some(b"s3cret\n"),
    )
    .await;
    assert!(String::from_utf8_lossy(&ok_err(&out)).contains("docker-credential-ocitest"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(saved["ServerURL"], host.as_str());
    assert_eq!(saved["Username"], "tester");
    assert_eq!(saved["Secret"], "s3cret");
    // The config file itself holds no password.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v.get("auths").is_none(), "{v}");
    // Reads find the credentials through the helper.
    let repo = format!("{host}/auth/app");
    assert_eq!(
        ok(&ocidist_with(&["tags", &repo], &env, None).await).trim(),
        "v1"
    );
    ok(&ocidist_with(&["logout", &host], &env, None).await);
    assert!(!stored.exists());
}
