//! TLS for the examples (feature `tls`): a server configuration from PEM
//! files, or with a self-signed certificate for "localhost" made at start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server configuration: the chain and key in `pem`, or a self-signed
/// certificate for "localhost" (clients must skip verification: `curl -k`,
/// `openssl s_client` verifies nothing by default).
pub fn server_config(pem: Option<(&Path, &Path)>) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let bad = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    };
    let (chain, key) = match pem {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(&format!("{}: {e}", cert.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| bad(&format!("{}: {e}", key.display())))?;
            (chain, key)
        }
        None => {
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()])
                .map_err(|e| bad(&e))?;
            let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
            (vec![ck.cert.der().clone()], key)
        }
    };
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
