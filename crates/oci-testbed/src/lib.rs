//! Fixtures the workspace's tests share: real peers on loopback, not mocks.
//!
//! - [`certs::TestCerts`]: a CA, a server certificate for `127.0.0.1` /
//!   `localhost` and a client certificate, made with the `openssl` CLI.
//! - [`distribution::Distribution`]: Debian's `docker-registry` (CNCF
//!   distribution 2.8) on a free loopback port, plain or TLS, with client
//!   certificates required or basic auth from an htpasswd file.
//! - [`s3::S3Server`]: `s3s-fs`, a real S3-compatible server, on a free
//!   loopback port with one bucket; it can be stopped and restarted.
//! - [`load`]: soak load for any registry on loopback (slow readers, idle
//!   sockets, a normal client with every request timed, one-byte PATCHes),
//!   used by the soak tests and by `bench/soak.sh` through its `soak-load`
//!   binary.
//! - [`raw_http::RawClient`]: a raw HTTP/1 test client that sends requests
//!   exactly as built and collects the answer, with assertions on status,
//!   headers and spec error bodies (the conformance suite's and the
//!   server's API tests' one client).
//!
//! The tools come from `.ci/install-deps`; a missing one is an error that
//! names it. It is a dev-dependency only (`publish = false`): nothing in
//! a library depends on it.
//!
//! ```no_run
//! use oci_testbed::distribution::{Distribution, Setup};
//!
//! # fn main() -> std::io::Result<()> {
//! // TLS with basic auth; stopped when `registry` is dropped.
//! let setup = Setup {
//!     tls: true,
//!     ..Setup::htpasswd("alice", "secret")
//! };
//! let registry = Distribution::start(setup)?;
//! let ca = registry.certs().map(|c| c.ca_path()); // trust this CA
//! println!("{} (CA {ca:?})", registry.url());
//! # Ok(())
//! # }
//! ```

pub mod certs;
pub mod distribution;
pub mod load;
pub mod raw_http;
pub mod s3;

use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

/// A loopback port nothing listens on right now.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Spawns `binary args…` behind a shell that stops it when this process's
/// end of the shell's stdin closes (on drop, or when the test process dies
/// however it dies), so that no server outlives the tests. Its stderr goes
/// to `log`, its pid to `pid`.
pub fn spawn_guarded(binary: &Path, args: &[&str], log: &Path, pid: &Path) -> io::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(
            "exec 3<&0; log=$1; pidfile=$2; shift 2; \
             \"$@\" </dev/null 2>\"$log\" >/dev/null & pid=$!; \
             echo $pid >\"$pidfile\"; \
             { cat <&3 >/dev/null; kill $pid 2>/dev/null; } & \
             wait $pid 2>/dev/null",
        )
        .arg("sh")
        .arg(log)
        .arg(pid)
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}
