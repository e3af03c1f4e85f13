//! Which upstreams a mirror reaches, kept apart; writes refused.

use super::*;

#[tokio::test]
async fn upstreams_are_kept_apart_and_only_those_configured_are_reached() {
    let docker = Upstream::new();
    let quay = Upstream::new();
    let repo = name("library/alpine");
    let a = push_image(docker.as_ref(), &repo, Some(&tag("3.20"))).await;
    let b = push_image(quay.as_ref(), &repo, Some(&tag("3.20"))).await;
    let cache = Arc::new(MemRegistry::new());
    let mirror = Mirror::builder(cache.clone())
        .upstream("docker.io", docker.clone())
        .upstream("quay.io:8443", quay.clone())
        .default_upstream("docker.io")
        .build()
        .unwrap();

    let at_docker = repo.in_namespace("docker.io").unwrap();
    let at_quay = repo.in_namespace("quay.io:8443").unwrap();
    let from_docker = mirror.get_tag(&at_docker, &tag("3.20")).await;
    assert_eq!(from_docker.unwrap(), a.manifest);
    let from_quay = mirror.get_tag(&at_quay, &tag("3.20")).await;
    assert_eq!(from_quay.unwrap(), b.manifest);
    // The default upstream for a name without a host; its hub form.
    assert_eq!(
        mirror.get_tag(&name("alpine"), &tag("3.20")).await.unwrap(),
        a.manifest
    );
    let listed = oci_core::registry::collect_list(cache.repositories(&Default::default()));
    let listed: Vec<String> = listed
        .await
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        listed,
        ["docker.io/library/alpine", "quay.io_8443/library/alpine"]
    );

    let elsewhere = repo.in_namespace("evil.example").unwrap();
    let err = mirror.get_tag(&elsewhere, &tag("3.20")).await.unwrap_err();
    assert!(err.is(ErrorCode::Denied), "{err}");
}

/// A mirror (memory cache) allowing any upstream, each connected to
/// `up`, with the hosts connected to in order.
fn any_upstream_to(up: &Arc<Upstream>) -> (MirrorBuilder, Arc<Mutex<Vec<String>>>) {
    let opened = Arc::new(Mutex::new(Vec::<String>::new()));
    let (up, recorder) = (up.clone(), opened.clone());
    let builder =
        Mirror::builder(Arc::new(MemRegistry::new())).any_upstream(Arc::new(move |host: &str| {
            recorder.lock().unwrap().push(host.to_owned());
            Ok(up.clone() as Arc<dyn Registry>)
        }));
    (builder, opened)
}

#[tokio::test]
async fn any_upstream_connects_on_first_use() {
    let up = Upstream::new();
    let repo = name("team/app");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let (builder, opened) = any_upstream_to(&up);
    let mirror = builder.build().unwrap();
    let qualified = repo.in_namespace("registry.example:5000").unwrap();
    assert_eq!(
        pull(&mirror, &qualified, &tag("v1")).await.unwrap(),
        image.manifest
    );
    assert_eq!(*opened.lock().unwrap(), ["registry.example:5000"]);
    let err = mirror.get_tag(&repo, &tag("v1")).await.unwrap_err();
    assert!(err.is(ErrorCode::NameUnknown), "{err}");
}

#[tokio::test]
async fn the_mirror_is_read_only() {
    let up = Upstream::new();
    let (mirror, _) = mirror(&up, Duration::ZERO);
    let repo = name("library/alpine");
    let data = Bytes::from_static(b"x");
    let body = oci_core::registry::bytes_stream(data.clone(), 1);
    let err = mirror
        .push_blob(&repo, &Digest::sha256(&data), None, body)
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Denied));
    assert!(
        mirror
            .push_blob_chunked(&repo)
            .await
            .err()
            .unwrap()
            .is(ErrorCode::Denied)
    );
    let m = build_image(&ImageOptions::default()).manifest;
    assert!(
        mirror
            .push_manifest(&repo, &m, &[])
            .await
            .unwrap_err()
            .is(ErrorCode::Denied)
    );
    assert!(
        mirror
            .delete_tag(&repo, &tag("x"))
            .await
            .unwrap_err()
            .is(ErrorCode::Denied)
    );
}

/// With any upstream allowed, every host a client names would add an
/// upstream kept for ever: at most the limit are kept, the least recently
/// used let go, and one named again is connected again, its cache intact.
#[tokio::test]
async fn any_upstream_keeps_at_most_its_limit_of_upstreams() {
    let up = Upstream::new();
    let repo = name("team/app");
    let image = push_image(up.as_ref(), &repo, Some(&tag("v1"))).await;
    let (builder, opened) = any_upstream_to(&up);
    let mirror = builder
        .any_upstream_limit(3)
        .tag_freshness(Duration::from_secs(3600))
        .build()
        .unwrap();
    let host = |n: usize| format!("registry{n}.example");
    let at = |n: usize| repo.in_namespace(&host(n)).unwrap();
    let kept = || {
        (0..10)
            .filter(|&n| mirror.stats(&host(n)).is_some())
            .collect::<Vec<_>>()
    };

    for n in 0..3 {
        pull(&mirror, &at(n), &tag("v1")).await.unwrap();
    }
    // Used again, registry0 is kept; registry1 is let go.
    mirror.get_tag(&at(0), &tag("v1")).await.unwrap();
    pull(&mirror, &at(3), &tag("v1")).await.unwrap();
    assert_eq!(kept(), [0, 2, 3]);
    for n in 4..10 {
        pull(&mirror, &at(n), &tag("v1")).await.unwrap();
    }
    assert_eq!(kept(), [7, 8, 9]);

    up.reset();
    let again = pull(&mirror, &at(1), &tag("v1")).await.unwrap();
    assert_eq!(again, image.manifest);
    assert!(up.calls.lock().unwrap().is_empty(), "{:?}", up.calls);
    let opened = opened.lock().unwrap();
    assert_eq!(opened.iter().filter(|h| **h == host(1)).count(), 2);
    assert_eq!(opened.len(), 11);
}
