//! Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback
//! port, with filesystem storage in a temporary directory: plain http, TLS
//! with a CA made for the test, mutual TLS, htpasswd basic auth.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::certs::TestCerts;
use crate::run;

/// Where Debian installs distribution's registry binary.
pub const BINARY: &str = "/usr/bin/docker-registry";

/// How many times to try starting the registry on a fresh port: a port
/// found free may be taken by another process before the registry binds.
const START_ATTEMPTS: u32 = 3;

/// How long one start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the registry is set up.
#[derive(Debug, Default, Clone)]
pub struct Setup {
    /// Serve TLS with a certificate from a CA made for the test.
    pub tls: bool,
    /// Also require a client certificate signed by that CA.
    pub mtls: bool,
    /// Require basic auth for this user and password (an htpasswd file
    /// made with `htpasswd -Bbn`).
    pub htpasswd: Option<(String, String)>,
    /// Listen on the IPv6 loopback `[::1]` instead of `127.0.0.1`.
    pub ipv6: bool,
}

impl Setup {
    /// Plain http with basic auth for one user.
    pub fn htpasswd(user: &str, password: &str) -> Setup {
        Setup {
            htpasswd: Some((user.to_owned(), password.to_owned())),
            ..Setup::default()
        }
    }
}

/// A running `docker-registry`; stopped when dropped, and also when the
/// test process dies without dropping it.
#[derive(Debug)]
pub struct Distribution {
    child: Child,
    host: String,
    tls: bool,
    certs: Option<TestCerts>,
    dir: TempDir,
}

impl Distribution {
    /// Starts the registry and waits until it answers. Fails with a
    /// message naming `.ci/install-deps` when the binary is missing.
    pub fn start(setup: Setup) -> io::Result<Distribution> {
        Distribution::start_binary(Path::new(BINARY), setup)
    }

    /// Starts the registry binary at `binary` (see [`Distribution::start`]).
    pub fn start_binary(binary: &Path, setup: Setup) -> io::Result<Distribution> {
        if !binary.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is missing: run .ci/install-deps to install docker-registry",
                    binary.display()
                ),
            ));
        }
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Distribution::start_once(binary, &setup) {
                Ok(registry) => return Ok(registry),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("docker-registry was not started")))
    }

    fn start_once(binary: &Path, setup: &Setup) -> io::Result<Distribution> {
        let dir = tempfile::tempdir()?;
        let host = if setup.ipv6 {
            let port = std::net::TcpListener::bind("[::1]:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("the IPv6 loopback [::1] is unavailable on this machine: {e}"),
                    )
                })?
                .port();
            format!("[::1]:{port}")
        } else {
            format!("127.0.0.1:{}", crate::free_port()?)
        };
        // Tells this registry's answers from those of anything else that
        // may have taken the port first.
        let marker = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut yaml = config_yaml(&dir.path().join("data"), &host, &marker);
        let certs = if setup.tls {
            let certs = TestCerts::make(dir.path())?;
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.server_cert_path().display(),
                certs.server_key_path().display()
            ));
            if setup.mtls {
                yaml.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    certs.ca_path().display()
                ));
            }
            Some(certs)
        } else {
            None
        };
        if let Some((user, password)) = &setup.htpasswd {
            let line = run(
                Command::new("htpasswd").args(["-Bbn", user, password]),
                "apache2-utils; run .ci/install-deps",
            )?;
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, line)?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ocidist-tests\n    path: {}\n",
                file.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml)?;
        let child = spawn_guarded(binary, &config)?;
        let mut registry = Distribution {
            child,
            host,
            tls: setup.tls,
            certs,
            dir,
        };
        registry.wait_ready(&marker)?;
        Ok(registry)
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The root URL, e.g. `http://127.0.0.1:41234` (`https` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The registry's storage root (`storage.filesystem.rootdirectory`);
    /// a blob's bytes are at `docker/registry/v2/blobs/sha256/AB/ABCD…/data`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The certificates of a TLS setup.
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_ref()
    }

    /// The registry process's id (for measuring it).
    pub fn pid(&self) -> u32 {
        // The guard shell execs nothing; the registry is its child. Its
        // pid was written by the shell.
        std::fs::read_to_string(self.dir.path().join("registry.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| self.child.id())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Waits until the registry answers `/v2/` with the marker header (for
    /// TLS, until it accepts connections).
    fn wait_ready(&mut self, marker: &str) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "docker-registry on {} exited during start-up ({status}): {}",
                    self.host,
                    self.log().trim()
                )));
            }
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                if self.tls {
                    return Ok(());
                }
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.contains(marker)
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("docker-registry did not answer on {}", self.host),
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        // Closing the guard shell's stdin makes it stop the registry.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Spawns the registry behind a guard shell (see [`crate::spawn_guarded`]).
fn spawn_guarded(binary: &Path, config: &Path) -> io::Result<Child> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let config = config.to_string_lossy();
    crate::spawn_guarded(
        binary,
        &["serve", &config],
        &dir.join("registry.log"),
        &dir.join("registry.pid"),
    )
}

/// The registry's configuration: filesystem storage under `data`, deletes
/// enabled, no upload purging, quiet logs, and `marker` as the value of an
/// `X-Ocidist-Test` header on every answer.
fn config_yaml(data: &Path, host: &str, marker: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: \"{host}\"\n  secret: ocidist-test-secret\n\
         \x20 headers:\n    X-Ocidist-Test: [\"{marker}\"]\n",
        data.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_fails_naming_the_install_script() {
        let err =
            Distribution::start_binary(Path::new("/nonexistent/docker-registry"), Setup::default())
                .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(".ci/install-deps"), "{err}");
    }

    #[test]
    fn config_enables_deletes_on_the_address_and_marks_answers() {
        let yaml = config_yaml(Path::new("/tmp/data"), "127.0.0.1:4321", "m1");
        assert!(yaml.contains("addr: \"127.0.0.1:4321\""));
        assert!(yaml.contains("delete:\n    enabled: true"));
        assert!(yaml.contains("rootdirectory: /tmp/data"));
        assert!(yaml.contains("X-Ocidist-Test: [\"m1\"]"));
    }

    #[test]
    fn plain_and_authenticated_registries_answer_and_stop_on_drop() -> io::Result<()> {
        let plain = Distribution::start(Setup::default())?;
        let pid = plain.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(plain.url().starts_with("http://127.0.0.1:"));
        drop(plain);
        // The guard shell kills the registry once its stdin closes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}/exe")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!Path::new(&format!("/proc/{pid}/exe")).exists());

        let auth = Distribution::start(Setup::htpasswd("u", "p"))?;
        let mut stream = TcpStream::connect(auth.host())?;
        stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        assert!(answer.starts_with("HTTP/1.0 401"), "{answer}");
        Ok(())
    }
}
