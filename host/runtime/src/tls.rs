//! The one TLS client configuration of the host (webpki roots, ring), shared by source downloads and the `http`
//! capability, and by the agents' model client.

use std::sync::{Arc, OnceLock};

/// The TLS client configuration (webpki roots, ring), built once.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| unreachable!("ring supports the default TLS versions: {e}"));
            Arc::new(config)
        })
        .clone()
}
