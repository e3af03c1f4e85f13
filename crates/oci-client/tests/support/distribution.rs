//! Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback
//! port: plain, TLS with a CA made for the test, mutual TLS, htpasswd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// How the registry is set up.
#[derive(Default, Clone)]
pub struct Setup {
    /// Serve TLS with a certificate from a CA made for the test.
    pub tls: bool,
    /// Require a client certificate signed by that CA.
    pub mtls: bool,
    /// Require basic auth with this user and password.
    pub htpasswd: Option<(String, String)>,
}

/// Certificates made for one registry.
pub struct Certs {
    /// The CA certificate (PEM).
    pub ca: Vec<u8>,
    /// A client certificate signed by the CA (PEM).
    pub client_cert: Vec<u8>,
    /// Its key (PEM).
    pub client_key: Vec<u8>,
}

/// A running registry; killed on drop.
pub struct Distribution {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The certificates, for TLS setups.
    pub certs: Option<Certs>,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        // Closing the guard shell's stdin makes it stop the registry.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate with the `openssl` CLI.
fn make_certs(dir: &Path) -> Certs {
    let p = |name: &str| dir.join(name);
    let key = |name: &str| {
        run(Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-out", p(name).to_str().unwrap()]));
    };
    key("ca.key");
    run(Command::new("openssl")
        .args(["req", "-x509", "-new", "-key"])
        .args([
            p("ca.key").to_str().unwrap(),
            "-out",
            p("ca.pem").to_str().unwrap(),
            "-days",
            "2",
            "-subj",
            "/CN=ocidist test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
    let leaf = |name: &str, cn: &str, ext: &str| {
        key(&format!("{name}.key"));
        run(Command::new("openssl").args(["req", "-new", "-key"]).args([
            p(&format!("{name}.key")).to_str().unwrap(),
            "-out",
            p(&format!("{name}.csr")).to_str().unwrap(),
            "-subj",
            &format!("/CN={cn}"),
        ]));
        std::fs::write(p(&format!("{name}.ext")), ext).unwrap();
        run(Command::new("openssl").args(["x509", "-req", "-in"]).args([
            p(&format!("{name}.csr")).to_str().unwrap(),
            "-CA",
            p("ca.pem").to_str().unwrap(),
            "-CAkey",
            p("ca.key").to_str().unwrap(),
            "-CAcreateserial",
            "-out",
            p(&format!("{name}.pem")).to_str().unwrap(),
            "-days",
            "2",
            "-extfile",
            p(&format!("{name}.ext")).to_str().unwrap(),
        ]));
    };
    leaf(
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    leaf(
        "client",
        "ocidist test client",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    );
    Certs {
        ca: std::fs::read(p("ca.pem")).unwrap(),
        client_cert: std::fs::read(p("client.pem")).unwrap(),
        client_key: std::fs::read(p("client.key")).unwrap(),
    }
}

impl Distribution {
    /// Starts a registry; panics with a hint when the binary is missing.
    pub fn start(setup: Setup) -> Distribution {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: run .ci/install-deps to install Debian's docker-registry"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let d = dir.path().display().to_string();
        // Tells this registry's answers from those of anything else that
        // may have taken the port first.
        let marker = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {d}/data\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {host}\n  secret: ocidist-test-secret\n\
             \x20 headers:\n    X-Ocidist-Test: [\"{marker}\"]\n"
        );
        let certs = setup.tls.then(|| make_certs(dir.path()));
        if setup.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n"
            ));
            if setup.mtls {
                yaml.push_str(&format!("    clientcas:\n      - {d}/ca.pem\n"));
            }
        }
        if let Some((user, pass)) = &setup.htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd is missing: run .ci/install-deps");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ocidist-test\n    path: {d}/htpasswd\n"
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let child = spawn_guarded(&config);
        let mut reg = Distribution {
            child,
            _dir: dir,
            host,
            certs,
        };
        reg.wait_ready(setup.tls, &marker);
        reg
    }

    fn wait_ready(&mut self, tls: bool, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("registry.log"));
                panic!(
                    "docker-registry on {} exited at start ({status}): {}",
                    self.host,
                    log.unwrap_or_default()
                );
            }
            if let Ok(mut s) = TcpStream::connect(&self.host) {
                if tls {
                    return;
                }
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
                let mut answer = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.contains(marker)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on {}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Spawns the registry behind a shell that kills it when this process's
/// end of its stdin closes, so that no registry outlives the tests; the
/// shell exits when the registry does.
fn spawn_guarded(config: &PathBuf) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(
            "exec 3<&0; \"$0\" serve \"$1\" </dev/null 2>\"$2\" & pid=$!; \
             { cat <&3 >/dev/null; kill $pid 2>/dev/null; } & \
             wait $pid 2>/dev/null",
        )
        .arg(BINARY)
        .arg(config)
        .arg(config.with_file_name("registry.log"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {BINARY}: {e}"))
}

/// One plain registry shared by the tests of a test binary.
pub fn shared() -> &'static Distribution {
    static SHARED: OnceLock<Distribution> = OnceLock::new();
    SHARED.get_or_init(|| Distribution::start(Setup::default()))
}
