//! The rustls client configuration (ring provider): OS trust store with
//! webpki roots as fallback, extra CAs, client certificates, insecure mode.

use std::sync::{Arc, Mutex, PoisonError};

use oci_core::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::ClientError;
use crate::options::TlsOptions;

fn tls_error(what: &str, err: impl std::fmt::Display) -> Error {
    ClientError::Tls {
        what: what.to_owned(),
        message: err.to_string(),
    }
    .into()
}

/// The client's TLS configuration, built when the first TLS connection
/// needs it: reading the OS trust store (a hundred files or more) is work a
/// client of a plain-http registry never needs. What the caller supplied
/// (CA bundle, client certificate and key) is checked at once.
pub(crate) struct TlsSetup {
    options: TlsOptions,
    /// Built once, by the first connection that needs it (others wait).
    config: Mutex<Option<Arc<ClientConfig>>>,
}

impl TlsSetup {
    /// Checks `options`; fails on an unreadable CA bundle, certificate or key.
    pub(crate) fn new(options: &TlsOptions) -> Result<TlsSetup> {
        let checked = build(options, false)?;
        // Insecure mode has no trust store to load: the check is the config.
        let config = options.insecure.then_some(checked);
        Ok(TlsSetup {
            options: options.clone(),
            config: Mutex::new(config),
        })
    }

    /// The configuration, with the OS trust store loaded on first use.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>> {
        let mut config = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = &*config {
            return Ok(config.clone());
        }
        let built = build(&self.options, true)?;
        *config = Some(built.clone());
        Ok(built)
    }

    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// Builds the client TLS configuration for `options`, with the OS trust
/// store unless `native_roots` is false.
fn build(options: &TlsOptions, native_roots: bool) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?;
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(root_store(options.ca_pem.as_deref(), native_roots)?)
    };
    let mut config = match (&options.client_cert_pem, &options.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = parse_certs(cert, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_error("client key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error("client certificate", e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(tls_error(
                "client certificate",
                "a certificate and a key must be given together",
            ));
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(what, e))?;
    if certs.is_empty() {
        return Err(tls_error(what, "no PEM certificate found"));
    }
    Ok(certs)
}

/// The OS trust store (webpki roots when it is empty) plus `extra_pem`;
/// only `extra_pem` without `native`.
fn root_store(extra_pem: Option<&[u8]>, native: bool) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if native {
        add_native_roots(&mut roots);
    }
    if let Some(pem) = extra_pem {
        for cert in parse_certs(pem, "CA bundle")? {
            roots.add(cert).map_err(|e| tls_error("CA bundle", e))?;
        }
    }
    Ok(roots)
}

fn add_native_roots(roots: &mut RootCertStore) {
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::debug!(error = %err, "skipping part of the OS trust store");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::debug!("OS trust store is empty; using the bundled webpki roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
}

/// Accepts any server certificate, still checking handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_a_clear_error() {
        let opts = TlsOptions {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..TlsOptions::default()
        };
        let err = TlsSetup::new(&opts).err().unwrap();
        assert!(err.message().contains("CA bundle"), "{err}");
        let opts = TlsOptions {
            client_cert_pem: Some(Vec::new()),
            ..TlsOptions::default()
        };
        assert!(TlsSetup::new(&opts).is_err());
    }

    #[test]
    fn default_and_insecure_configs_build() {
        let setup = TlsSetup::new(&TlsOptions::default()).unwrap();
        assert!(!setup.is_built(), "the trust store loads lazily");
        let config = setup.config().unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
        assert!(Arc::ptr_eq(&config, &setup.config().unwrap()));
        let opts = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        assert!(TlsSetup::new(&opts).unwrap().is_built());
    }
}
