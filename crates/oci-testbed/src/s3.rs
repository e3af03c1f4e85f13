//! A real S3-compatible server on a free loopback port: `s3s-fs` (from
//! crates.io, installed by `scripts/install-s3s`, which `.ci/install-deps`
//! calls), storing a bucket in a temporary directory. It can be stopped
//! and started again on the same port and data, for fault tests.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long one start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The bucket every server is started with.
pub const BUCKET: &str = "ocidist";

/// The test credentials.
const ACCESS_KEY: &str = "ocidist-test";
const SECRET_KEY: &str = "ocidist-test-secret";

/// Where `scripts/install-s3s` puts the binary.
pub fn binary() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    home.join("bin").join("s3s-fs")
}

/// A running `s3s-fs`; stopped when dropped, and also when the test
/// process dies without dropping it.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    binary: PathBuf,
}

impl S3Server {
    /// Starts the server with an empty bucket [`BUCKET`] and waits until it
    /// accepts connections. Fails with a message naming the install script
    /// when the binary is missing.
    pub fn start() -> io::Result<S3Server> {
        let binary = binary();
        if !binary.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is missing: run scripts/install-s3s (called by .ci/install-deps)",
                    binary.display()
                ),
            ));
        }
        let mut last = None;
        for _ in 0..3 {
            let mut server = S3Server {
                child: None,
                port: crate::free_port()?,
                dir: tempfile::tempdir()?,
                binary: binary.clone(),
            };
            std::fs::create_dir_all(server.data().join(BUCKET))?;
            match server.run() {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("s3s-fs was not started")))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process on this server's port and data.
    fn run(&mut self) -> io::Result<()> {
        let port = self.port.to_string();
        let data = self.data();
        let args = [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            &data.to_string_lossy(),
        ];
        let child = crate::spawn_guarded(
            &self.binary,
            &args,
            &self.dir.path().join("s3s.log"),
            &self.dir.path().join("s3s.pid"),
        )?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log =
                    std::fs::read_to_string(self.dir.path().join("s3s.log")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "s3s-fs on port {} exited during start-up ({status}): {}",
                    self.port,
                    log.trim()
                )));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("s3s-fs did not listen on port {}", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server, keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.run()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The storage URL of a prefix in the bucket: `s3://ocidist/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The environment an S3 client needs (as `object_store` reads it).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Where the bucket's objects are on disk.
    pub fn bucket_dir(&self) -> PathBuf {
        self.data().join(BUCKET)
    }

    /// The server's data directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_listens_stops_and_restarts_on_its_port() -> io::Result<()> {
        let mut server = S3Server::start()?;
        let port = server.port;
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.stop();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart()?;
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        Ok(())
    }
}
