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

use super::Capability;
use crate::policy::{PolicyError, SourceText};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;
use wasmtime::component::Linker;

/// The secrets granted to a component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretsGrant(pub Vec<SecretEntry>);

/// One injected header.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// The host (`api.example.com`, or `host:port`) whose requests get the header.
    pub host: Spanned<String>,
    /// The header name, e.g. `Authorization`.
    pub header: Spanned<String>,
    /// The host environment variable holding the value.
    pub from_env: String,
    /// Text put before the value, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
}

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

/// Whether `host` is a loopback IP literal (IPv6 with or without brackets).
fn is_loopback_literal(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl SecretEntry {
    /// The lowercase host, and the port when the entry names one.
    fn host_and_port(&self) -> (String, Option<u16>) {
        let host = self.host.get_ref().to_ascii_lowercase();
        match host.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((h, Ok(port))) => (h.to_string(), Some(port)),
            _ => (host, None),
        }
    }
}

impl Capability for SecretsGrant {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn extends(&self) -> Option<&'static str> {
        Some("http")
    }

    fn entries(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|e| {
                format!(
                    "{} header for {} from ${}",
                    e.header.get_ref(),
                    e.host.get_ref(),
                    e.from_env
                )
            })
            .collect()
    }

    fn validate(&self, _base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        for entry in &self.0 {
            let (host, _) = entry.host_and_port();
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if literal.parse::<std::net::IpAddr>().is_err() {
                super::http::check_dns_name(&host).map_err(|why| {
                    source.error(
                        entry.host.span(),
                        format!(
                            "invalid secret host {:?}: a secret goes to one exact host (a DNS name or an IP \
                             address, optionally with `:port`; no wildcards), and {why}",
                            entry.host.get_ref()
                        ),
                    )
                })?;
            }
            if http::HeaderName::from_bytes(entry.header.get_ref().as_bytes()).is_err() {
                return Err(source.error(
                    entry.header.span(),
                    format!("invalid header name {:?}", entry.header.get_ref()),
                ));
            }
            if entry.from_env.is_empty() {
                return Err(source.error(
                    entry.host.span(),
                    "secret without `from_env`: name the variable holding it",
                ));
            }
        }
        Ok(())
    }

    fn link(&self, _linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Secrets ride on wasi:http (linked by `allow.http`); nothing of their own to link.
        Ok(&[])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        let mut secrets = Vec::with_capacity(self.0.len());
        for entry in &self.0 {
            let value = std::env::var(&entry.from_env).map_err(|_| {
                anyhow::anyhow!(
                    "the secret for {} is read from ${}, which is not set in the host's environment",
                    entry.host.get_ref(),
                    entry.from_env
                )
            })?;
            let mut value = http::HeaderValue::from_str(&format!("{}{value}", entry.prefix))
                .map_err(|_| anyhow::anyhow!("${} is not a valid header value", entry.from_env))?;
            value.set_sensitive(true);
            let host = match entry.host_and_port() {
                (host, Some(port)) => format!("{host}:{port}"),
                (host, None) => host,
            };
            secrets.push(Secret {
                host,
                header: http::HeaderName::from_bytes(entry.header.get_ref().as_bytes())?,
                value,
            });
        }
        builder.secrets = Arc::new(secrets);
        Ok(())
    }
}

/// The first secret that can never be sent under `allow.http`, with why: no entry allows its host (and port,
/// when it names one), or the entries that do allow it only over plain `http` to a host that is not a loopback
/// IP literal (secrets go only over HTTPS, or to loopback literals).
pub fn unreachable_secret<'a>(
    secrets: &'a SecretsGrant,
    http: &super::http::HttpGrant,
) -> Option<(&'a SecretEntry, &'static str)> {
    secrets.0.iter().find_map(|entry| {
        let (host, port) = entry.host_and_port();
        let mut reaching = http
            .0
            .iter()
            .filter(|origin| origin.host.matches(&host) && port.is_none_or(|p| origin.port == p))
            .peekable();
        if reaching.peek().is_none() {
            return Some((
                entry,
                "`allow.http` does not allow that host: add its origin to allow.http",
            ));
        }
        let over_https = reaching.any(|origin| origin.scheme == super::http::Scheme::Https);
        if !over_https && !is_loopback_literal(&host) {
            return Some((
                entry,
                "`allow.http` allows that host only over plain http, and secrets are sent only over https \
                 (or to a loopback IP literal): allow its https origin",
            ));
        }
        None
    })
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

    #[test]
    fn a_secret_that_could_never_be_sent_is_refused() {
        let grant = |http: &str, secret_host: &str| {
            let grants: crate::caps::Grants = toml::from_str(&format!(
                "http = [{http:?}]\nsecrets = [{{ host = {secret_host:?}, header = \"Authorization\", from_env = \"T\" }}]"
            ))
            .unwrap();
            super::unreachable_secret(&grants.secrets, &grants.http).map(|(_, why)| why)
        };
        assert_eq!(grant("https://api.example.com", "api.example.com"), None);
        assert_eq!(grant("https://*.example.com", "api.example.com"), None);
        assert_eq!(grant("http://127.0.0.1:8080", "127.0.0.1:8080"), None);
        assert_eq!(grant("http://127.0.0.1:8080", "127.0.0.1"), None);
        assert_eq!(grant("http://[::1]:8080", "[::1]:8080"), None);
        for (http, host) in [
            ("https://api.example.com", "other.example.com"),
            ("http://127.0.0.1:8080", "127.0.0.1:9090"),
            ("https://api.example.com", "api.example.com:8443"),
        ] {
            assert!(
                grant(http, host).is_some_and(|why| why.contains("does not allow that host")),
                "{http} {host}"
            );
        }
        assert!(
            grant("http://api.example.com", "api.example.com")
                .is_some_and(|why| why.contains("only over plain http")),
        );
        assert!(
            grant("http://10.0.0.1:8080", "10.0.0.1:8080")
                .is_some_and(|why| why.contains("only over plain http")),
        );
    }
}
