//! Real peers on loopback for the client's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod distribution;
pub mod faults;
pub mod gate;
pub mod http;
pub mod proxy;
pub mod script;

use oci_client::{Client, ClientOptions};

/// A client for the shared plain registry.
pub fn distribution_client() -> Client {
    let reg = distribution::shared();
    Client::new(reg.host(), ClientOptions::default().anonymous()).expect("client")
}

/// A client for a fresh in-memory registry behind our own server. The
/// server lives as long as the test's runtime.
pub async fn ours_client() -> Client {
    let server =
        oci_server::TestServer::start(std::sync::Arc::new(oci_mem::MemRegistry::new())).await;
    let host = server.addr().to_string();
    // The server task ends with the test's runtime.
    std::mem::forget(server);
    Client::new(&host, ClientOptions::default().anonymous()).expect("client")
}

/// A client with basic credentials for a fresh bearer gate (which lives
/// as long as the test's runtime).
pub async fn gate_client() -> Client {
    let config = gate::GateConfig {
        username: "bob".into(),
        password: "pw".into(),
        ..Default::default()
    };
    let gate = gate::Gate::start(config).await;
    Client::new(
        &gate.addr.to_string(),
        ClientOptions::default().basic_auth("bob", "pw"),
    )
    .expect("client")
}
