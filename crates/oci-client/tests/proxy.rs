//! An explicit HTTP proxy: absolute-form requests for plain http, CONNECT
//! tunnels for https (to distribution with TLS), and `no_proxy`.

mod support;

use oci_client::{Client, ClientOptions, ProxyOptions, Scheme};
use oci_core::testkit;
use support::distribution::{Distribution, Setup};
use support::proxy::Proxy;

fn via(proxy: &Proxy, no_proxy: Option<&str>) -> ProxyOptions {
    ProxyOptions::Url {
        url: format!("http://user:pass@{}", proxy.addr),
        no_proxy: no_proxy.map(str::to_owned),
    }
}

#[tokio::test]
async fn plain_http_goes_through_the_proxy() {
    let proxy = Proxy::start().await;
    let server = support::ours_client().await;
    let host = server.host().to_owned();
    let client = Client::new(
        &host,
        ClientOptions::default()
            .anonymous()
            .proxy(via(&proxy, None)),
    )
    .unwrap();
    testkit::push_pull_blob(&client).await;
    let requests = proxy.requests.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the proxy saw no request");
    let (first, auth) = &requests[0];
    assert!(
        first.contains(&format!(" http://{host}/v2/")),
        "absolute-form request: {first}"
    );
    assert_eq!(
        auth.as_deref(),
        Some("basic dxnlcjpwyxnz"),
        "lower-cased Basic user:pass"
    );
}

#[tokio::test]
async fn https_is_tunnelled_with_connect() {
    let reg = Distribution::start(Setup {
        tls: true,
        ..Setup::default()
    });
    let proxy = Proxy::start().await;
    let options = ClientOptions::default()
        .anonymous()
        .scheme(Scheme::Https)
        .ca_pem(reg.certs().unwrap().ca.clone())
        .proxy(via(&proxy, None));
    let client = Client::new(reg.host(), options).unwrap();
    client.ping().await.unwrap();
    testkit::manifest_push_pull(&client).await;
    let requests = proxy.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|(line, _)| line.starts_with(&format!("CONNECT {} ", reg.host()))),
        "{requests:?}"
    );
    assert!(!requests.is_empty());
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let proxy = Proxy::start().await;
    let server = support::ours_client().await;
    let options = ClientOptions::default()
        .anonymous()
        .proxy(via(&proxy, Some("127.0.0.1")));
    let client = Client::new(server.host(), options).unwrap();
    client.ping().await.unwrap();
    assert!(proxy.requests.lock().unwrap().is_empty());
}
