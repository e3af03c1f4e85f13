//! `ocidist serve --mirror` in front of a real upstream, Debian's
//! `docker-registry`, reached through a counting TCP proxy in this
//! harness (which can also cut the upstream off): `ocidist pull --ns`,
//! `skopeo copy` and `podman pull` with a `registries.conf` mirror get
//! the upstream's exact images; what reaches the upstream is counted.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use oci_core::testkit::Image;
use oci_core::{Platform, Registry, RepoName, Tag};
use oci_testbed::distribution::{Distribution, Setup};
use support::{ocidist, ok, raw_request, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to an upstream that records the request line of every
/// HTTP/1 request passing (the mirror only sends GETs and HEADs, which
/// have no body), and that can be switched off: then it closes every
/// connection and refuses new ones, as a stopped upstream would.
struct CountingProxy {
    host: String,
    requests: Arc<Mutex<Vec<String>>>,
    down: watch::Sender<bool>,
}

impl CountingProxy {
    async fn start(upstream: &str) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (down, _) = watch::channel(false);
        let (seen, down_rx, upstream) = (requests.clone(), down.subscribe(), upstream.to_owned());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *down_rx.borrow() {
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (seen, mut down) = (seen.clone(), down_rx.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = pump(inbound, outbound, seen) => {}
                        _ = down.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        CountingProxy {
            host,
            requests,
            down,
        }
    }

    /// The request lines seen since the last call, e.g. `GET /v2/a/blobs/sha256:…`.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

/// Moves bytes both ways, recording the request lines going upstream.
async fn pump(inbound: TcpStream, outbound: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let requests = async move {
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match in_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                let line = head.lines().next().unwrap_or_default();
                let line = line.trim_end_matches(" HTTP/1.1").to_owned();
                seen.lock().unwrap().push(line);
                pending.drain(..end + 4);
            }
            if out_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let answers = async move {
        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
    };
    tokio::join!(requests, answers);
}

/// The requests among `lines` that fetch a blob.
fn blob_gets(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/blobs/sha256:"))
        .collect()
}

fn name(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn tag(s: &str) -> Tag {
    s.parse().unwrap()
}

/// An image of two real tar layers of `layer_size` bytes, pushed to
/// `registry` as `repo:v1`.
async fn push(registry: &dyn Registry, repo: &str, layer_size: usize) -> Image {
    let image = support::tar_image(&Platform::host(), 2, layer_size, false);
    image.push(registry, &name(repo), &[tag("v1")]).await;
    image
}

fn plain_client(host: &str) -> oci_client::Client {
    oci_client::Client::new(host, oci_client::ClientOptions::new()).unwrap()
}

/// `ocidist pull --ns UPSTREAM MIRROR/REPO:TAG` into `out` (an OCI
/// directory); returns the manifest digest it printed.
async fn pull_ns(
    mirror: &str,
    upstream: &str,
    reference: &str,
    out: &Path,
) -> std::process::Output {
    let image = format!("{mirror}/{reference}");
    ocidist(&[
        "pull",
        "--ns",
        upstream,
        &image,
        "--format",
        "oci-dir",
        "-o",
        out.to_str().unwrap(),
    ])
    .await
}

/// The blob digests an OCI directory holds.
fn blobs_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

fn expected_blobs(image: &Image) -> Vec<String> {
    let mut all: Vec<String> = std::iter::once(&image.config)
        .chain(&image.layers)
        .map(|d| d.digest.hex().to_owned())
        .chain([image.digest().hex().to_owned()])
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn clients_get_the_upstreams_images_and_a_second_pull_costs_the_upstream_nothing() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let image = push(&plain_client(upstream.host()), "team/app", 1 << 20).await;
    let proxy = CountingProxy::start(upstream.host()).await;
    let mirror = serve(&["--mirror", &proxy.host, "--mirror-tag-freshness", "3600"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = proxy.host.replace(':', "_");

    // ocidist, naming the upstream with ?ns=.
    let out = pull_ns(
        &mirror.host,
        &proxy.host,
        "team/app:v1",
        &dir.path().join("a"),
    )
    .await;
    assert_eq!(ok(&out).trim(), image.digest().to_string());
    assert_eq!(blobs_in(&dir.path().join("a")), expected_blobs(&image));
    let first = proxy.take();
    assert_eq!(blob_gets(&first).len(), 3, "{first:#?}");

    let out = pull_ns(
        &mirror.host,
        &proxy.host,
        "team/app:v1",
        &dir.path().join("b"),
    )
    .await;
    assert_eq!(ok(&out).trim(), image.digest().to_string());
    assert_eq!(
        proxy.take(),
        Vec::<String>::new(),
        "a second pull reaches the upstream"
    );

    // skopeo, naming it as the first path component.
    let oci = dir.path().join("skopeo");
    support::run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-oci-accept-uncompressed-layers",
        "--src-tls-verify=false",
        &format!("docker://{}/{key}/team/app:v1", mirror.host),
        &format!("oci:{}:v1", oci.display()),
    ]));
    assert_eq!(blobs_in(&oci), expected_blobs(&image));

    // podman, with the mirror in registries.conf in front of the upstream.
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"{up}\"\nlocation = \"{up}\"\ninsecure = true\n\n\
             [[registry.mirror]]\nlocation = \"{m}/{key}\"\ninsecure = true\n",
            up = proxy.host,
            m = mirror.host
        ),
    )
    .unwrap();
    let podman = Command::new("podman")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("run"))
        .args(["--storage-driver", "vfs", "pull", "-q"])
        .arg(format!("{}/team/app:v1", proxy.host))
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .output()
        .expect("podman runs (run .ci/install-deps)");
    let stderr = String::from_utf8_lossy(&podman.stderr);
    assert!(podman.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&podman.stdout).trim(),
        image.config.digest.hex()
    );
    assert_eq!(
        proxy.take(),
        Vec::<String>::new(),
        "skopeo and podman were served from the cache"
    );
}

#[tokio::test]
async fn twenty_concurrent_cold_pulls_fetch_each_blob_once() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let image = push(&plain_client(upstream.host()), "team/big", 12 << 20).await;
    let proxy = CountingProxy::start(upstream.host()).await;
    let mirror = serve(&["--mirror", &proxy.host]).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let pulls = (0..20).map(|i| {
        let out = dir.path().join(format!("p{i}"));
        let (mirror, proxy) = (mirror.host.clone(), proxy.host.clone());
        async move { pull_ns(&mirror, &proxy, "team/big:v1", &out).await }
    });
    for out in futures::future::join_all(pulls).await {
        assert_eq!(ok(&out).trim(), image.digest().to_string());
    }
    let seen = proxy.take();
    let mut gets: Vec<&String> = blob_gets(&seen);
    gets.sort();
    let mut expected: Vec<String> = std::iter::once(&image.config)
        .chain(&image.layers)
        .map(|d| format!("GET /v2/team/big/blobs/{}", d.digest))
        .collect();
    expected.sort();
    assert_eq!(gets, expected.iter().collect::<Vec<_>>(), "{seen:#?}");
    let tag_gets = seen.iter().filter(|l| l.contains("/manifests/v1")).count();
    assert_eq!(tag_gets, 1, "{seen:#?}");
}

#[tokio::test]
async fn a_stale_tag_costs_one_head_and_a_stopped_upstream_leaves_the_cache_served() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let client = plain_client(upstream.host());
    let image = push(&client, "team/app", 4096).await;
    let other = push(&client, "team/other", 4096).await;
    let proxy = CountingProxy::start(upstream.host()).await;
    let mirror = serve(&["--mirror", &proxy.host, "--mirror-tag-freshness", "0"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n);

    ok(&pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("a")).await);
    proxy.take();
    let again = pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("b")).await;
    assert_eq!(ok(&again).trim(), image.digest().to_string());
    assert_eq!(proxy.take(), ["HEAD /v2/team/app/manifests/v1"]);

    proxy.set_down(true);
    let cached = pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("c")).await;
    assert_eq!(ok(&cached).trim(), image.digest().to_string());
    let uncached = pull_ns(&mirror.host, &proxy.host, "team/other:v1", &out("d")).await;
    assert!(!uncached.status.success());
    let err = String::from_utf8_lossy(&uncached.stderr);
    assert!(
        err.contains(&proxy.host) && err.contains("is not cached"),
        "names the unreachable upstream and what is missing: {err}"
    );
    assert!(!out("d").exists());

    proxy.set_down(false);
    let back = pull_ns(&mirror.host, &proxy.host, "team/other:v1", &out("e")).await;
    assert_eq!(ok(&back).trim(), other.digest().to_string());
}

#[tokio::test]
async fn corrupt_upstream_bytes_fail_the_pull_and_are_fetched_again_next_time() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let image = push(&plain_client(upstream.host()), "team/app", 64 << 10).await;
    let proxy = CountingProxy::start(upstream.host()).await;
    let mirror = serve(&["--mirror", &proxy.host]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layer = &image.layers[0].digest;
    let stored = upstream.data_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &layer.hex()[..2],
        layer.hex()
    ));
    let good = std::fs::read(&stored).unwrap();
    let mut bad = good.clone();
    bad[1000] ^= 0xff;
    std::fs::write(&stored, &bad).unwrap();

    let failed = pull_ns(
        &mirror.host,
        &proxy.host,
        "team/app:v1",
        &dir.path().join("a"),
    )
    .await;
    assert!(!failed.status.success(), "a corrupt layer was pulled");
    std::fs::write(&stored, &good).unwrap();
    let pulled = pull_ns(
        &mirror.host,
        &proxy.host,
        "team/app:v1",
        &dir.path().join("b"),
    )
    .await;
    assert_eq!(ok(&pulled).trim(), image.digest().to_string());
    let gets = proxy.take();
    let layer_gets = gets
        .iter()
        .filter(|l| l.ends_with(&layer.to_string()))
        .count();
    assert!(
        layer_gets >= 2,
        "the corrupt layer was not fetched again: {gets:#?}"
    );
}

#[tokio::test]
async fn an_upstream_with_tls_and_basic_auth_is_mirrored_with_its_ca_and_credentials() {
    let upstream = Distribution::start(Setup {
        tls: true,
        ..Setup::htpasswd("mirror", "s3cret")
    })
    .unwrap();
    let ca = upstream.certs().unwrap().ca_path();
    let mut options = oci_client::ClientOptions::new().ca_pem(std::fs::read(&ca).unwrap());
    options.auth = oci_client::AuthOptions::Basic {
        username: "mirror".into(),
        password: "s3cret".into(),
    };
    options.scheme = Some(oci_client::Scheme::Https);
    let client = oci_client::Client::new(upstream.host(), options).unwrap();
    let image = push(&client, "team/app", 64 << 10).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(&credentials, "mirror:s3cret\n").unwrap();
    let spec = format!(
        "{},scheme=https,cacert={},credentials={}",
        upstream.host(),
        ca.display(),
        credentials.display()
    );
    let mirror = serve(&["--mirror", &spec]).unwrap();

    let out = pull_ns(
        &mirror.host,
        upstream.host(),
        "team/app:v1",
        &dir.path().join("a"),
    )
    .await;
    assert_eq!(ok(&out).trim(), image.digest().to_string());
    assert_eq!(blobs_in(&dir.path().join("a")), expected_blobs(&image));
    // Another upstream is not reachable through it.
    let out = pull_ns(
        &mirror.host,
        "127.0.0.1:1",
        "team/app:v1",
        &dir.path().join("b"),
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an upstream"));
}

/// An upstream that refuses the mirror (which has no credentials for it)
/// is the mirror's own `403 DENIED` naming the upstream, from a tag
/// listing, referrers, a manifest and a blob alike: never a `401` or the
/// upstream's challenge, which would have the client log in to the mirror.
#[tokio::test]
async fn an_upstream_refusing_the_mirror_is_its_denial_not_a_login_prompt() {
    let upstream = Distribution::start(Setup::htpasswd("mirror", "s3cret")).unwrap();
    let mirror = serve(&["--mirror", upstream.host()]).unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    for path in [
        "tags/list".to_owned(),
        format!("referrers/{digest}"),
        "manifests/v1".to_owned(),
        format!("blobs/{digest}"),
    ] {
        let request = format!(
            "GET /v2/team/app/{path}?ns={} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
            upstream.host()
        );
        let answer = raw_request(&mirror.host, &request).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{path}: {answer}");
        assert!(answer.contains("DENIED"), "{path}: {answer}");
        assert!(answer.contains(upstream.host()), "{path}: {answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(!lower.contains("www-authenticate"), "{path}: {answer}");
        assert!(!lower.contains("basic realm"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn a_mirror_with_basic_auth_serves_only_those_who_log_in() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let image = push(&plain_client(upstream.host()), "team/app", 4096).await;
    let dir = tempfile::tempdir().unwrap();
    // `htpasswd -nbB alice wonderland`
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n",
    )
    .unwrap();
    let mirror = serve(&[
        "--mirror",
        upstream.host(),
        "--htpasswd",
        users.to_str().unwrap(),
    ])
    .unwrap();
    let reference = format!("{}/team/app:v1", mirror.host);
    let out = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();

    let anonymous = ocidist(&["pull", "--ns", upstream.host(), &reference, "-o", &out("a")]).await;
    assert_eq!(anonymous.status.code(), Some(4), "{anonymous:?}");
    let alice = ocidist(&[
        "pull",
        "-u",
        "alice",
        "-p",
        "wonderland",
        "--ns",
        upstream.host(),
        &reference,
        "-o",
        &out("b"),
    ])
    .await;
    assert_eq!(ok(&alice).trim(), image.digest().to_string());
}

#[tokio::test]
async fn an_ipv6_upstream_is_mirrored_by_ns_and_by_path() {
    // Fails (does not skip) where the IPv6 loopback is missing.
    let upstream = Distribution::start(Setup {
        ipv6: true,
        ..Setup::default()
    })
    .unwrap();
    assert!(upstream.host().starts_with("[::1]:"), "{}", upstream.host());
    let image = push(&plain_client(upstream.host()), "team/app", 64 << 10).await;
    let mirror = serve(&["--mirror", upstream.host()]).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let out = pull_ns(
        &mirror.host,
        upstream.host(),
        "team/app:v1",
        &dir.path().join("a"),
    )
    .await;
    assert_eq!(ok(&out).trim(), image.digest().to_string());
    assert_eq!(blobs_in(&dir.path().join("a")), expected_blobs(&image));

    // The path form names it by its namespace component.
    let key = oci_core::reference::namespace_component(upstream.host()).unwrap();
    let by_path = format!("{}/{key}/team/app:v1", mirror.host);
    let out = ocidist(&[
        "pull",
        &by_path,
        "-o",
        dir.path().join("b").to_str().unwrap(),
    ])
    .await;
    assert_eq!(ok(&out).trim(), image.digest().to_string());
}

#[tokio::test]
async fn tokens_from_the_mirrors_own_service_name_the_upstream_qualified_repository() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let image = push(&plain_client(upstream.host()), "team/app", 4096).await;
    let key = oci_core::reference::namespace_component(upstream.host()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `htpasswd -nbB alice wonderland`, `htpasswd -nbB -C 6 bob builder`.
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n\
         bob:$2y$06$w9FqOKTYALuNqHRCzliIH./fJ7LQXmqd2yGiTtt737QuFT7hmeEzq\n",
    )
    .unwrap();
    // Alice may pull the upstream's team/app; bob only names without the
    // upstream, which ?ns= requests never are.
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[rule]]\nrepositories = [\"{key}/team/**\"]\nusers = [\"alice\"]\nactions = [\"pull\"]\n\n\
             [[rule]]\nrepositories = [\"team/**\"]\nusers = [\"bob\"]\nactions = [\"pull\"]\n"
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", oci_testbed::free_port().unwrap());
    let realm = format!("http://{addr}/token");
    let mirror = serve(&[
        "--addr",
        &addr,
        "--mirror",
        upstream.host(),
        "--htpasswd",
        users.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--token-realm",
        &realm,
    ])
    .unwrap();
    let reference = format!("{}/team/app:v1", mirror.host);
    let pull_as = |user: &'static str, password: &'static str, out: &'static str| {
        let out = dir.path().join(out).to_str().unwrap().to_owned();
        let (reference, ns) = (reference.clone(), upstream.host().to_owned());
        async move {
            ocidist(&[
                "pull", "-u", user, "-p", password, "--ns", &ns, &reference, "-o", &out,
            ])
            .await
        }
    };

    let alice = pull_as("alice", "wonderland", "a").await;
    assert_eq!(ok(&alice).trim(), image.digest().to_string());
    let bob = pull_as("bob", "builder", "b").await;
    assert!(!bob.status.success(), "{bob:?}");
    let err = String::from_utf8_lossy(&bob.stderr).to_lowercase();
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
}

#[tokio::test]
async fn gc_on_a_mirrors_cache_keeps_what_it_cached() {
    let upstream = Distribution::start(Setup::default()).unwrap();
    let client = plain_client(upstream.host());
    // One platform of an index is pulled: the cache can never hold the
    // index as a store would (its other children are never fetched), yet
    // gc must keep it and the child pulled.
    let index = support::tar_index();
    index.push_children(&client, &name("team/multi")).await;
    index
        .push_manifest(&client, &name("team/multi"), &[tag("v1")])
        .await;
    let image = push(&client, "team/app", 64 << 10).await;
    let proxy = CountingProxy::start(upstream.host()).await;
    let store = tempfile::tempdir().unwrap();
    let storage = store.path().to_str().unwrap();
    let mirror_args = [
        "--storage",
        storage,
        "--mirror",
        &proxy.host,
        "--mirror-tag-freshness",
        "3600",
    ];
    let mirror = serve(&mirror_args).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n);
    let pull_multi = |o: &str| {
        let o = out(o);
        let (m, p) = (mirror.host.clone(), proxy.host.clone());
        async move {
            ocidist(&[
                "pull",
                "--ns",
                &p,
                "--platform",
                "linux/arm64",
                &format!("{m}/team/multi:v1"),
                "--format",
                "oci-dir",
                "-o",
                o.to_str().unwrap(),
            ])
            .await
        }
    };

    ok(&pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("a")).await);
    ok(&pull_multi("m1").await);
    let arm = blobs_in(&out("m1"));
    let first = proxy.take();
    assert_eq!(blob_gets(&first).len(), 6, "{first:#?}");

    // Beside the running mirror, sparing nothing for being young.
    let gc = ocidist(&["gc", "--storage", storage, "--grace", "0"]).await;
    ok(&gc);
    let again = pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("b")).await;
    assert_eq!(ok(&again).trim(), image.digest().to_string());
    assert_eq!(blobs_in(&out("b")), expected_blobs(&image));
    ok(&pull_multi("m2").await);
    assert_eq!(blobs_in(&out("m2")), arm);
    let after_gc = proxy.take();
    assert_eq!(blob_gets(&after_gc), Vec::<&String>::new(), "{after_gc:#?}");

    // With the mirror stopped, gc has the store to itself; then, the
    // upstream down, a new mirror on the same store serves both images.
    drop(mirror);
    ok(&ocidist(&["gc", "--storage", storage]).await);
    proxy.set_down(true);
    let mirror = serve(&mirror_args).unwrap();
    let offline = pull_ns(&mirror.host, &proxy.host, "team/app:v1", &out("c")).await;
    assert_eq!(ok(&offline).trim(), image.digest().to_string());
    assert_eq!(blobs_in(&out("c")), expected_blobs(&image));
    let multi = ocidist(&[
        "pull",
        "--ns",
        &proxy.host,
        "--platform",
        "linux/arm64",
        &format!("{}/team/multi:v1", mirror.host),
        "--format",
        "oci-dir",
        "-o",
        out("m3").to_str().unwrap(),
    ])
    .await;
    ok(&multi);
    assert_eq!(blobs_in(&out("m3")), arm);
}
