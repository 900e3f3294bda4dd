//! The node's TLS client: rustls (ring) trusting the system's roots and the
//! certificates of `enforce.tls_ca_path`, for an `https://` `report_url` and
//! MCP upstream URLs.

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// The client configuration; `extra_ca_pem` is the PEM text of `tls_ca_path`.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::debug!("no system CA certificates found; only enforce.tls_ca_path is trusted");
    }
    if let Some(pem) = extra_ca_pem {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.context("enforce.tls_ca_path: not a PEM certificate")?;
            roots
                .add(cert)
                .context("enforce.tls_ca_path: a certificate is not a usable CA")?;
            found += 1;
        }
        anyhow::ensure!(found > 0, "enforce.tls_ca_path holds no certificate");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
