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

use super::Grant;
use super::http::{HttpGrant, Scheme};
use crate::capability::CapabilityKind;
use crate::common::{check_dns_name, ip_literal, is_loopback_literal};
use crate::{PolicyError, SourceText};
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// The secrets granted to a component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SecretsGrant(pub Vec<SecretEntry>);

/// One injected header.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// The host (`api.example.com`, or `host:port`) whose requests get the header: one exact host, no wildcards.
    /// `allow.http` must allow it over `https` (or it is a loopback IP literal).
    #[schemars(with = "String", extend("pattern" = r"^[^*]+$"))]
    pub host: Spanned<String>,
    /// The header name, e.g. `Authorization`.
    #[schemars(with = "String", extend("pattern" = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))]
    pub header: Spanned<String>,
    /// The host environment variable holding the value.
    #[schemars(length(min = 1))]
    pub from_env: String,
    /// Text put before the value, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
}

impl SecretEntry {
    /// The lowercase host, and the port when the entry names one.
    pub fn host_and_port(&self) -> (String, Option<u16>) {
        let host = self.host.get_ref().to_ascii_lowercase();
        match host.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((h, Ok(port))) => (h.to_string(), Some(port)),
            _ => (host, None),
        }
    }
}

impl Grant for SecretsGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Secrets
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
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
            if ip_literal(&host).is_none() {
                check_dns_name(&host).map_err(|why| {
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
            if ::http::HeaderName::from_bytes(entry.header.get_ref().as_bytes()).is_err() {
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
}

/// The first secret that can never be sent under `allow.http`, with why: no entry allows its host (and port,
/// when it names one), or the entries that do allow it only over plain `http` to a host that is not a loopback
/// IP literal (secrets go only over HTTPS, or to loopback literals).
pub fn unreachable_secret<'a>(
    secrets: &'a SecretsGrant,
    http: &HttpGrant,
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
        let over_https = reaching.any(|origin| origin.scheme == Scheme::Https);
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
    #[test]
    fn a_secret_that_could_never_be_sent_is_refused() {
        let grant = |http: &str, secret_host: &str| {
            let grants: crate::grants::Grants = toml::from_str(&format!(
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
