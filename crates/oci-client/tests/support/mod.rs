//! Real peers on loopback for the client's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod distribution;

use oci_client::{Client, ClientOptions};

/// A client for the shared plain registry.
pub fn distribution_client() -> Client {
    let reg = distribution::shared();
    Client::new(&reg.host, ClientOptions::default().anonymous()).expect("client")
}
