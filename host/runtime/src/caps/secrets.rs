//! `allow.secrets`: headers the host adds to outgoing HTTP requests for one host, with values the guest never
//! sees: they are read from the host's environment when the instance starts, injected in `send_request` after
//! the policy check, and never logged or audited.
//!
//! ```toml
//! allow.http = ["https://api.example.com"]
//! allow.secrets = [{ host = "api.example.com", header = "Authorization", from_env = "EXAMPLE_TOKEN", prefix = "Bearer " }]
//! ```
//!
//! A secret goes only to its exact host (and port, when one is given), and only over HTTPS, or to a loopback
//! IP literal (for local services and tests). The guest's own header of that name is replaced. `allow.http`
//! must allow the host: a secret for a host the component cannot reach is refused when the policy is read.

use super::{PrepareError, Provide};
use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::common::is_loopback_literal;
use are_policy::grants::secrets::SecretsGrant;
use std::sync::Arc;
use wasmtime::component::Linker;

/// A secret resolved for one instance. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret {
    /// Lowercase host, optionally `:port`.
    pub host: String,
    /// The header.
    pub header: http::HeaderName,
    /// The full header value.
    pub value: http::HeaderValue,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret({} for {}, value redacted)",
            self.header, self.host
        )
    }
}

impl Secret {
    /// Whether a request to `host:port` (lowercase host; `https` tells the scheme) gets this secret.
    pub fn applies_to(&self, host: &str, port: u16, https: bool) -> bool {
        let matches = match self.host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                h == host && p.parse::<u16>().ok() == Some(port)
            }
            _ => self.host == host,
        };
        matches && (https || is_loopback_literal(host))
    }
}

impl Provide for SecretsGrant {
    fn link(&self, _linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Secrets ride on wasi:http (linked by `allow.http`); nothing of their own to link.
        Ok(&[])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        let mut secrets = Vec::with_capacity(self.0.len());
        for entry in &self.0 {
            let value = std::env::var(&entry.from_env).map_err(|_| PrepareError::SecretUnset {
                host: entry.host.get_ref().clone(),
                var: entry.from_env.clone(),
            })?;
            let mut value = http::HeaderValue::from_str(&format!("{}{value}", entry.prefix))
                .map_err(|_| PrepareError::SecretValue {
                    var: entry.from_env.clone(),
                })?;
            value.set_sensitive(true);
            let host = match entry.host_and_port() {
                (host, Some(port)) => format!("{host}:{port}"),
                (host, None) => host,
            };
            secrets.push(Secret {
                host,
                header: http::HeaderName::from_bytes(entry.header.get_ref().as_bytes()).map_err(
                    |_| PrepareError::SecretHeader {
                        header: entry.header.get_ref().clone(),
                    },
                )?,
                value,
            });
        }
        builder.http.secrets = Arc::new(secrets);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(host: &str) -> Secret {
        Secret {
            host: host.into(),
            header: http::header::AUTHORIZATION,
            value: http::HeaderValue::from_static("Bearer s3cret"),
        }
    }

    #[test]
    fn secrets_go_to_their_host_over_https_or_loopback_only() {
        assert!(secret("api.example.com").applies_to("api.example.com", 443, true));
        assert!(
            !secret("api.example.com").applies_to("api.example.com", 80, false),
            "never over plain http"
        );
        assert!(!secret("api.example.com").applies_to("evil.example.com", 443, true));
        assert!(secret("127.0.0.1:8080").applies_to("127.0.0.1", 8080, false));
        assert!(!secret("127.0.0.1:8080").applies_to("127.0.0.1", 8081, false));
        assert!(!format!("{:?}", secret("a")).contains("s3cret"));
    }
}
