//! `Unify` across HTTP: with a remote side reached through `oci-client`
//! (whose upload ids are URLs), and served itself by `oci-server` (whose
//! routes carry the combined upload ids).

use std::sync::Arc;

use oci_client::{Client, ClientOptions};
use oci_core::{Registry, testkit};
use oci_mem::MemRegistry;
use oci_server::TestServer;
use oci_unify::{ReadPolicy, Unify};

fn client(server: &TestServer) -> Arc<dyn Registry> {
    let client = Client::new(&server.addr().to_string(), ClientOptions::default())
        .unwrap_or_else(|e| panic!("client for {}: {e}", server.url()));
    Arc::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_side_runs_the_testkit() {
    let remote = TestServer::start(Arc::new(MemRegistry::new())).await;
    for policy in [ReadPolicy::Sequential, ReadPolicy::Concurrent] {
        let unify = Unify::new(Arc::new(MemRegistry::new()), client(&remote), policy);
        testkit::run_all(&unify).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_unify_runs_the_testkit() {
    // Both sides in memory: a served Unify over a client side would also
    // resume the client's empty uploads, which the `0-0` upload Range
    // cannot tell from one-byte uploads (the same holds for a server over
    // a bare client).
    let unify = Unify::new(
        Arc::new(MemRegistry::new()),
        Arc::new(MemRegistry::new()),
        ReadPolicy::Concurrent,
    );
    let served = TestServer::start(Arc::new(unify)).await;
    testkit::run_all(client(&served).as_ref()).await;
}
