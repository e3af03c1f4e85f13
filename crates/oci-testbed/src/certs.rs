//! Certificates for TLS tests, made with the `openssl` CLI: EC P-256 keys,
//! valid for two days.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run;

const HINT: &str = "the openssl CLI; run .ci/install-deps";

/// A CA, a server certificate for `127.0.0.1` and `localhost`, and a
/// client certificate (for mutual TLS), all signed by the CA. The files
/// live in the directory given to [`TestCerts::make`].
#[derive(Debug, Clone)]
pub struct TestCerts {
    dir: PathBuf,
    /// The CA certificate (PEM).
    pub ca: Vec<u8>,
    /// The server certificate (PEM).
    pub server_cert: Vec<u8>,
    /// The server's private key (PEM, PKCS#8).
    pub server_key: Vec<u8>,
    /// The client certificate (PEM).
    pub client_cert: Vec<u8>,
    /// The client's private key (PEM, PKCS#8).
    pub client_key: Vec<u8>,
}

impl TestCerts {
    /// Makes the certificates in `dir` (`ca.pem`, `server.pem`,
    /// `server.key`, `client.pem`, `client.key` and their by-products).
    pub fn make(dir: &Path) -> io::Result<TestCerts> {
        let openssl =
            |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir), HINT);
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                name,
            ])
        };
        key("ca.key")?;
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ocidist test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
        let leaf = |name: &str, subject: &str, extensions: &str| -> io::Result<()> {
            key(&format!("{name}.key"))?;
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ])?;
            std::fs::write(dir.join(format!("{name}.ext")), extensions)?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ])?;
            Ok(())
        };
        leaf(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        leaf(
            "client",
            "/CN=ocidist test client",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )?;
        let read = |name: &str| std::fs::read(dir.join(name));
        Ok(TestCerts {
            dir: dir.to_path_buf(),
            ca: read("ca.pem")?,
            server_cert: read("server.pem")?,
            server_key: read("server.key")?,
            client_cert: read("client.pem")?,
            client_key: read("client.key")?,
        })
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate's file.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server key's file.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The client certificate's file.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client key's file.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_pem_files_signed_by_the_ca() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let certs = TestCerts::make(dir.path())?;
        assert!(certs.ca.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert!(certs.server_key.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        for leaf in [certs.server_cert_path(), certs.client_cert_path()] {
            let ca = certs.ca_path();
            let verified = run(
                Command::new("openssl")
                    .args(["verify", "-CAfile"])
                    .arg(&ca)
                    .arg(&leaf),
                HINT,
            )?;
            assert!(String::from_utf8_lossy(&verified).contains("OK"));
        }
        assert_eq!(std::fs::read(certs.client_key_path())?, certs.client_key);
        Ok(())
    }
}
