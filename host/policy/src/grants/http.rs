//! `allow.http`: outbound HTTP (`wasi:http/outgoing-handler`) to an allowlist of origins.
//!
//! Entries are `scheme://host[:port]`. Without a port an entry allows only the scheme's default port. A host may
//! start with `*.` to allow every subdomain (not the bare domain); what follows `*.` must be a DNS name whose last
//! label is not all digits, so `*.1` or `*.0.0.1` (which a resolver may read as IP addresses) are refused when the
//! policy is read, with the entry's line and column. A request to anything else gets the WASI HTTP
//! error code `HTTP-request-denied` back in the guest: a denial is an error value, not a trap.
//!
//! The host resolves names itself and checks every address before it connects, then connects to exactly the
//! addresses it checked (so DNS rebinding cannot slip past the check). Loopback, private, link-local and other
//! non-public addresses are refused (`destination-IP-prohibited`) unless the entry names that IP literally or is
//! `localhost`.
//!
//! ```toml
//! allow.http = ["https://api.example.com", "https://*.example.org:8443", "http://127.0.0.1:8080"]
//! ```

use super::Grant;
use crate::capability::CapabilityKind;
use crate::common::{check_dns_name, ip_literal};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The origins a component may send HTTP requests to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct HttpGrant(pub Vec<Origin>);

/// One allowed origin: scheme, host (exact, `*.` wildcard, or IP literal) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Which hosts match.
    pub host: HostPattern,
    /// The port; when the entry names none, the scheme's default port.
    pub port: u16,
}

/// A URL scheme wasi:http can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The host part of an allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lowercase).
    Name(String),
    /// Any name ending in `.suffix` (the entry was `*.suffix`).
    Subdomains(String),
    /// Exactly this address; non-public addresses are allowed only this way (or as `localhost`).
    Ip(IpAddr),
}

impl HostPattern {
    /// Whether `host` (lowercase name or IP literal from a request) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Name(name) => name == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            HostPattern::Ip(ip) => ip_literal(host) == Some(*ip),
        }
    }

    /// Whether an address outside the public internet may be reached through this entry.
    pub fn allows_private(&self) -> bool {
        match self {
            HostPattern::Ip(_) => true,
            HostPattern::Name(name) => name == "localhost",
            HostPattern::Subdomains(_) => false,
        }
    }
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(entry: &str) -> Result<Origin, String> {
        let bad = |why: &str| {
            format!("invalid http origin {entry:?}: {why} (expected scheme://host[:port])")
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| bad("missing scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("scheme {other:?} is not http or https"))),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "only an origin is allowed, no path, query or credentials",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (format!("[{ip}]"), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(&format!("port {p:?} is not a number 0-65535")))?,
            None => scheme.default_port(),
        };
        let host = host.to_ascii_lowercase();
        let pattern = if let Some(ip) = ip_literal(&host) {
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_dns_name(suffix).map_err(|why| {
                bad(&format!(
                    "a wildcard must be `*.` followed by a DNS name, and in {host:?} {why}"
                ))
            })?;
            HostPattern::Subdomains(suffix.to_string())
        } else {
            check_dns_name(&host).map_err(|why| {
                bad(&format!(
                    "{host:?} is neither an IP address nor a DNS name: {why}"
                ))
            })?;
            HostPattern::Name(host)
        };
        Ok(Origin {
            scheme,
            host: pattern,
            port,
        })
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::parse_str(d)
    }
}

impl schemars::JsonSchema for Origin {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Origin".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An origin `scheme://host[:port]`: `http` or `https`; a DNS name, a `*.` wildcard over a \
                            DNS name's subdomains, or an IP literal (`[…]` for IPv6); without a port, the scheme's \
                            default port. No path, query or credentials.",
            "type": "string",
            "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#@]+/?$",
            "examples": ["https://api.example.com", "https://*.example.org:8443", "http://127.0.0.1:8080"],
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        match &self.host {
            HostPattern::Name(n) => write!(f, "{scheme}://{n}:{}", self.port),
            HostPattern::Subdomains(s) => write!(f, "{scheme}://*.{s}:{}", self.port),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            HostPattern::Ip(ip) => write!(f, "{scheme}://{ip}:{}", self.port),
        }
    }
}

impl HttpGrant {
    /// The first entry allowing a request to `scheme://host:port`.
    pub fn allowing(&self, scheme: Scheme, host: &str, port: u16) -> Option<&Origin> {
        self.0
            .iter()
            .find(|o| o.scheme == scheme && o.port == port && o.host.matches(host))
    }
}

impl Grant for HttpGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Http
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}
