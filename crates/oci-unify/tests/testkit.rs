//! The shared behavioural suite through `Unify` over two in-memory
//! registries, in both read policies.

use std::sync::Arc;

use oci_core::testkit;
use oci_mem::MemRegistry;
use oci_unify::{ReadPolicy, Unify};

fn unify(policy: ReadPolicy) -> Unify {
    Unify::new(
        Arc::new(MemRegistry::new()),
        Arc::new(MemRegistry::new()),
        policy,
    )
}

mod sequential {
    use super::*;
    oci_core::testkit_tests!(unify(ReadPolicy::Sequential));
}

mod concurrent {
    use super::*;
    oci_core::testkit_tests!(unify(ReadPolicy::Concurrent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_in_both_policies() {
    testkit::run_all(&unify(ReadPolicy::Sequential)).await;
    testkit::run_all(&unify(ReadPolicy::Concurrent)).await;
}
