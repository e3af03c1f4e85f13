//! A fixture running Debian's `docker-registry` (CNCF distribution 2.8) on a
//! free loopback port with filesystem storage in a temporary directory.

use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::client::Client;
use crate::config::Config;
use crate::routes;
use crate::target::Target;

/// Where Debian installs distribution's registry binary.
pub const BINARY: &str = "/usr/bin/docker-registry";

/// How many times to try starting the registry on a fresh port.
const START_ATTEMPTS: u32 = 3;

/// How many times to poll `/v2/` while the registry starts (25 ms apart).
const START_POLLS: u32 = 400;

/// A running `docker-registry`; killed when dropped.
#[derive(Debug)]
pub struct Distribution {
    child: Child,
    url: String,
    /// Whether `/v2/` answers 401 until credentials are given.
    auth: bool,
    _dir: TempDir,
}

impl Distribution {
    /// Starts the registry and waits until `/v2/` answers. Fails with a
    /// message naming `.ci/install-deps` when the binary is missing.
    pub async fn start() -> io::Result<Distribution> {
        Distribution::start_binary(Path::new(BINARY)).await
    }

    /// Starts the registry binary at `binary` (see [`Distribution::start`]).
    pub async fn start_binary(binary: &Path) -> io::Result<Distribution> {
        Distribution::start_binary_with(binary, None).await
    }

    /// Starts the registry with basic auth: one user from an htpasswd file
    /// (bcrypt, made with `htpasswd -Bbn`).
    pub async fn start_with_htpasswd(user: &str, password: &str) -> io::Result<Distribution> {
        Distribution::start_binary_with(Path::new(BINARY), Some((user, password))).await
    }

    async fn start_binary_with(
        binary: &Path,
        htpasswd: Option<(&str, &str)>,
    ) -> io::Result<Distribution> {
        if !binary.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is missing: run .ci/install-deps to install docker-registry",
                    binary.display()
                ),
            ));
        }
        // The free port is only free when probed: another process may take
        // it before the registry binds, so a failed start is retried.
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Distribution::start_once(binary, htpasswd).await {
                Ok(registry) => return Ok(registry),
                Err(e) => {
                    tracing::warn!(error = %e, "docker-registry failed to start");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("docker-registry was not started")))
    }

    async fn start_once(binary: &Path, htpasswd: Option<(&str, &str)>) -> io::Result<Distribution> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        let mut yaml = config_yaml(&dir.path().join("data"), port);
        if let Some((user, password)) = htpasswd {
            let file = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("htpasswd: {e} (run .ci/install-deps for apache2-utils)"),
                    )
                })?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            std::fs::write(&file, &out.stdout)?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ocidist-tests\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, yaml)?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut registry = Distribution {
            child,
            url: format!("http://127.0.0.1:{port}"),
            auth: htpasswd.is_some(),
            _dir: dir,
        };
        registry.wait_ready().await?;
        Ok(registry)
    }

    /// The registry's root URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A target for the checks; the fixture lives as long as the target.
    pub async fn target(config: Config) -> io::Result<Target> {
        let registry = Distribution::start().await?;
        let url = registry.url.clone();
        Ok(Target::new(&url, config, Some(Box::new(registry))))
    }

    /// The process id (for measuring it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self) -> io::Result<()> {
        let name = "docker-registry";
        let client = Client::new(&self.url);
        for _ in 0..START_POLLS {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{name} exited during start-up: {status}"
                )));
            }
            if tokio::net::TcpStream::connect(self.url.trim_start_matches("http://"))
                .await
                .is_ok()
            {
                let resp = client.get(routes::API_ROOT).send().await;
                let ready = if self.auth { 401 } else { 200 };
                if resp.status.as_u16() == ready {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{name} did not answer on {}", self.url),
        ))
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The registry's YAML configuration: filesystem storage, deletes enabled,
/// quiet logs.
fn config_yaml(data: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        data.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_binary_fails_naming_the_install_script() {
        let err = Distribution::start_binary(Path::new("/nonexistent/docker-registry"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(".ci/install-deps"), "{err}");
    }

    #[test]
    fn config_enables_deletes_on_the_port() {
        let yaml = config_yaml(Path::new("/tmp/data"), 4321);
        assert!(yaml.contains("addr: 127.0.0.1:4321"));
        assert!(yaml.contains("delete:\n    enabled: true"));
        assert!(yaml.contains("rootdirectory: /tmp/data"));
    }
}
