//! The shared behavioural suite through `Traced`, with tracing off and
//! with every event on.

use std::sync::Arc;

use oci_core::testkit;
use oci_debug::Traced;
use oci_mem::MemRegistry;

fn traced() -> Traced {
    Traced::new(Arc::new(MemRegistry::new()))
}

oci_core::testkit_tests!(traced());

#[tokio::test]
async fn run_all_with_every_event_on() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    testkit::run_all(&traced()).await;
}
