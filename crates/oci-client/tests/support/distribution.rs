//! Debian's `docker-registry` for the client's tests: oci-testbed's
//! fixture (plain, TLS, mTLS, htpasswd), and one plain registry shared by
//! the tests of a test binary.

use std::sync::OnceLock;

pub use oci_testbed::distribution::Setup;

/// A running registry; panics with the reason when it cannot start.
pub struct Distribution(oci_testbed::distribution::Distribution);

impl Distribution {
    /// Starts a registry as `setup` says.
    pub fn start(setup: Setup) -> Distribution {
        Distribution(
            oci_testbed::distribution::Distribution::start(setup)
                .unwrap_or_else(|e| panic!("starting docker-registry: {e}")),
        )
    }
}

impl std::ops::Deref for Distribution {
    type Target = oci_testbed::distribution::Distribution;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// One plain registry shared by the tests of a test binary.
pub fn shared() -> &'static Distribution {
    static SHARED: OnceLock<Distribution> = OnceLock::new();
    SHARED.get_or_init(|| Distribution::start(Setup::default()))
}
