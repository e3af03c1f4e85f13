//! The whole shared behavioural suite through the client against this
//! workspace's own server (over an in-memory registry).

mod support;

oci_core::testkit_tests!(support::ours_client().await);
