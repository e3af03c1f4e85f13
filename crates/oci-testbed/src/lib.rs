//! Fixtures the workspace's tests share: real peers on loopback, not mocks.
//!
//! - [`certs::TestCerts`]: a CA, a server certificate for `127.0.0.1` /
//!   `localhost` and a client certificate, made with the `openssl` CLI.
//! - [`distribution::Distribution`]: Debian's `docker-registry` (CNCF
//!   distribution 2.8) on a free loopback port, plain or TLS, with client
//!   certificates required or basic auth from an htpasswd file.
//!
//! The tools come from `.ci/install-deps`; a missing one is an error that
//! names it.

pub mod certs;
pub mod distribution;

use std::io;
use std::process::Command;

/// Runs `cmd`, failing with its stderr when it does not succeed; `hint`
/// says where the program comes from.
pub(crate) fn run(cmd: &mut Command, hint: &str) -> io::Result<Vec<u8>> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{:?}: {e} ({hint})", cmd.get_program())))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}
