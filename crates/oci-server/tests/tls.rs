//! HTTPS serving: a certificate made with the openssl CLI (oci-testbed), a
//! rustls client.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn serves_https_with_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let certs = oci_testbed::certs::TestCerts::make(dir.path()).unwrap();
    let config = oci_server::tls_config(&certs.server_cert, &certs.server_key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registry = Arc::new(oci_mem::MemRegistry::new());
    let server = tokio::spawn(oci_server::serve_tls(listener, registry, config));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&certs.ca).unwrap())
        .unwrap();
    let connect = |alpn: &[&[u8]]| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    };
    let name = ServerName::try_from("localhost").unwrap();

    // HTTP/2 is offered.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connect(&[b"h2", b"http/1.1"])
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // And HTTP/1.1 answers the version check.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connect(&[b"http/1.1"]).connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /v2/ HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("docker-distribution-api-version: registry/2.0"),
        "{answer}"
    );
    assert!(answer.ends_with("{}"), "{answer}");
    server.abort();
}

#[test]
fn tls_config_rejects_bad_pem() {
    let err = oci_server::tls_config(b"not pem", b"not pem").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
