//! RTMPS: the TLS server configuration for the second listener, built once at start-up from the
//! PEM files named by `rtmp.tls_cert_file` and `rtmp.tls_key_file`; and the client configuration
//! for pushing to `rtmps://` restream targets (the system's roots plus `restream.extra_ca_file`).
//!
//! Loading fails with an error naming the file and what is wrong with it, never a panic, so a bad
//! certificate stops start-up with a message an operator can act on. The handshake itself runs in
//! the connection's task (`lib.rs`), under the connection's deadline; nothing here does I/O on a
//! socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
pub use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (expected PKCS#8, PKCS#1 RSA or SEC1 EC)", path.display())]
    NoKey { path: PathBuf },
    #[error("{} is not valid PEM", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    #[error("{} holds a certificate that cannot be trusted as an authority", path.display())]
    BadAuthority {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    #[error("TLS client configuration failed")]
    Client(#[source] tokio_rustls::rustls::Error),
    #[error("certificate {} and key {} cannot be used together", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
}

/// The acceptor for `cert_file` (the certificate chain, leaf first) and `key_file` (its private key),
/// both PEM. TLS 1.3 and 1.2 (OBS links an mbedTLS that may not speak 1.3), no client certificates.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certificates(cert_file)?;
    let key = read_key(key_file)?;
    let rejected = |source| TlsError::Rejected { cert: cert_file.to_path_buf(), key: key_file.to_path_buf(), source };
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rejected)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client configuration for `rtmps://` targets: the system's certificate authorities (those it
/// cannot load are skipped with a warning) and every certificate in `extra_ca_file`.
pub fn client_config(extra_ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(errors = ?native.errors, "some system certificate authorities could not be loaded");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca_file {
        for cert in read_certificates(path)? {
            roots.add(cert).map_err(|source| TlsError::BadAuthority { path: path.to_path_buf(), source })?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Client)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: path.to_path_buf() },
        source => TlsError::Pem { path: path.to_path_buf(), source },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrocast-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    #[test]
    fn unusable_files_are_errors_naming_the_file() {
        let missing = Path::new("/nonexistent/ferrocast/cert.pem");
        let err = acceptor(missing, missing).err().expect("missing file refused");
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ferrocast/cert.pem"), "{err}");

        let not_pem = temp_file("not-pem.pem", b"hello, this is not a certificate\n");
        let err = acceptor(&not_pem, &not_pem).err().expect("not PEM refused");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("not-pem.pem"), "{err}");

        // A certificate where the key should be: the key file is named.
        let cert_only = temp_file("cert-only.pem", b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
        let err = acceptor(&cert_only, &cert_only).err().expect("no key refused");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        assert!(err.to_string().contains("cert-only.pem"), "{err}");

        // PEM that parses but holds no usable key: rustls says why, with both files named.
        let junk_key = temp_file("junk-key.pem", b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n");
        let err = acceptor(&cert_only, &junk_key).err().expect("junk key refused");
        assert!(matches!(err, TlsError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains("junk-key.pem"), "{err}");
    }
}
