//! TLS: a self-signed certificate generated once and kept in the data directory, or one the
//! operator provides.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServeError;

/// File name of the generated certificate (PEM) in the data directory.
pub const CERT_FILE: &str = "tls-cert.pem";
/// File name of the generated private key (PEM) in the data directory.
pub const KEY_FILE: &str = "tls-key.pem";

/// Where the server's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// Generate a self-signed certificate for `localhost` / `127.0.0.1` / `::1` on first start
    /// and reuse it afterwards.
    SelfSigned,
    /// PEM files given by the operator.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// Loads (or first generates) the certificate and builds a rustls server configuration with
/// ALPN for HTTP/2 and HTTP/1.1.
pub(crate) fn server_config(
    source: &TlsSource,
    data_dir: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let (cert_path, key_path) = match source {
        TlsSource::SelfSigned => {
            let cert = data_dir.join(CERT_FILE);
            let key = data_dir.join(KEY_FILE);
            if !cert.exists() || !key.exists() {
                generate_self_signed(&cert, &key)?;
            }
            (cert, key)
        }
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServeError::Tls(format!(
                "cannot read certificate {}: {e}",
                cert_path.display()
            ))
        })?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        ServeError::Tls(format!(
            "cannot read private key {}: {e}",
            key_path.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ServeError::Tls(format!(
                "the certificate and key do not form a valid pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), ServeError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServeError::Tls(format!("cannot generate a certificate: {e}")))?;
    let write = |path: &Path, pem: String| {
        std::fs::write(path, pem)
            .map_err(|e| ServeError::Tls(format!("cannot write {}: {e}", path.display())))
    };
    write(key_path, certified.signing_key.serialize_pem())?;
    write(cert_path, certified.cert.pem())?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}
