//! The shared behavioural suite, run against a fresh `LayoutRegistry` per
//! behaviour, and all at once against one shared store.

use oci_core::testkit;
use oci_layout::LayoutRegistry;

/// The name prefix of the directories [`kept`] leaves behind.
const PREFIX: &str = "oci-layout-testkit-";

/// A registry in a fresh temporary directory, kept for the test's life.
struct Fixture {
    registry: LayoutRegistry,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = LayoutRegistry;
    fn deref(&self) -> &LayoutRegistry {
        &self.registry
    }
}

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let registry = LayoutRegistry::open(dir.path()).await.expect("open");
    Fixture {
        registry,
        _dir: dir,
    }
}

/// A registry in a fresh directory under cargo's temporary directory for
/// integration tests, left there after the test (the macro below gives
/// each test only the registry to hold). The first call of a run removes
/// the directories an earlier run left, so they do not pile up.
async fn kept() -> LayoutRegistry {
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(|| {
        let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(PREFIX) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temporary directory")
        .keep();
    LayoutRegistry::open(dir).await.expect("open")
}

mod each {
    use super::*;
    oci_core::testkit_tests!(kept().await);
}

#[tokio::test]
async fn run_all_in_sequence() {
    let fixture = fresh().await;
    testkit::run_all(&*fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_behaviour_at_once_on_one_store() {
    let fixture = fresh().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let registry = fixture.registry.clone();
        tasks.spawn(async move { testkit::run_all(&registry).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}
