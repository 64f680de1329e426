//! The server's own TLS (`--tls-cert`/`--tls-key`): reads a PEM certificate chain and private
//! key once at start and builds the acceptor the accept loop wraps each connection in.
//!
//! It must never be on the plain path: without the flags nothing here runs, and the accept
//! loop serves TCP exactly as before (see `serve::serve`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the TLS certificate or key could not be used (a start-up error naming the file).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The certificate file holds no readable PEM certificate.
    #[error("--tls-cert {path}: no PEM certificate could be read ({reason})")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said (a missing file says so here).
        reason: String,
    },
    /// The key file holds no readable PEM private key.
    #[error("--tls-key {path}: no PEM private key could be read ({reason})")]
    Key {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said (a missing file says so here).
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key).
    #[error("--tls-cert/--tls-key: the certificate and key cannot be used together: {0}")]
    Pair(String),
}

/// Reads the PEM certificate chain at `cert` and private key at `key` and builds the TLS
/// acceptor (TLS 1.2 and 1.3, ring provider, ALPN `http/1.1`: WebSocket upgrades need HTTP/1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    let certificate_error = |reason: String| TlsSetupError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|err| certificate_error(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| certificate_error(err.to_string()))?;
    if chain.is_empty() {
        return Err(certificate_error(
            "the file has no CERTIFICATE block".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|err| TlsSetupError::Key {
        path: key.to_owned(),
        reason: err.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsSetupError::Pair(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|err| TlsSetupError::Pair(err.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
