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
    /// 80 or 443.
    pub fn default_port(self) -> u16 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::is_public;

    fn origin(s: &str) -> Origin {
        s.parse().unwrap()
    }

    #[test]
    fn parses_origins() {
        assert_eq!(
            origin("https://api.example.com"),
            Origin {
                scheme: Scheme::Https,
                host: HostPattern::Name("api.example.com".into()),
                port: 443
            }
        );
        assert_eq!(
            origin("https://*.example.org:8443").host,
            HostPattern::Subdomains("example.org".into())
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").host,
            HostPattern::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(origin("http://[::1]:8080").port, 8080);
        assert_eq!(origin("http://[::1]").port, 80);
    }

    #[test]
    fn rejects_bad_origins() {
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://a/b",
            "https://a:99999",
            "https://a*.b",
            "https://u@h",
            "https://*.1",
            "https://*.0.0.1",
            "https://*.0.0.1:8080",
            "https://*.",
            "https://*",
            "https://*.*.example.com",
            "https://a.*.example.com",
            "https://*.[::1]",
            "https://*.example.com.",
            "https://*.-a.example.com",
            "http://1.2.3",
            "http://10.1",
        ] {
            let err = bad.parse::<Origin>().unwrap_err();
            assert!(
                err.starts_with(&format!("invalid http origin {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn wildcards_cover_dns_names_only() {
        let err = "https://*.1".parse::<Origin>().unwrap_err();
        assert!(err.contains("the last label \"1\" is all digits"), "{err}");
        let err = "https://*.a.*.b".parse::<Origin>().unwrap_err();
        assert!(err.contains("only a whole leading `*.`"), "{err}");
        assert_eq!(
            origin("https://*.s3.eu-1.example2.com").host,
            HostPattern::Subdomains("s3.eu-1.example2.com".into())
        );
        assert_eq!(
            origin("https://*.1password.com").host,
            HostPattern::Subdomains("1password.com".into()),
            "a label may start with a digit; only an all-digit last label reads as an address"
        );
    }

    #[test]
    fn matching_is_exact_on_scheme_port_and_host() {
        let grant = HttpGrant(vec![
            origin("https://api.example.com"),
            origin("https://*.example.org"),
        ]);
        assert!(
            grant
                .allowing(Scheme::Https, "api.example.com", 443)
                .is_some()
        );
        assert!(
            grant
                .allowing(Scheme::Http, "api.example.com", 80)
                .is_none()
        );
        assert!(
            grant
                .allowing(Scheme::Https, "api.example.com", 8443)
                .is_none()
        );
        assert!(grant.allowing(Scheme::Https, "evil.com", 443).is_none());
        assert!(
            grant
                .allowing(Scheme::Https, "a.b.example.org", 443)
                .is_some()
        );
        assert!(grant.allowing(Scheme::Https, "example.org", 443).is_none());
        assert!(
            grant
                .allowing(Scheme::Https, "badexample.org", 443)
                .is_none()
        );
    }

    #[test]
    fn non_public_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_literal_or_localhost_entries_reach_private_addresses() {
        assert!(origin("http://10.0.0.1").host.allows_private());
        assert!(origin("http://localhost:8080").host.allows_private());
        assert!(!origin("https://internal.example.com").host.allows_private());
        assert!(!origin("https://*.example.com").host.allows_private());
    }
}
