//! `allow.sockets`: outbound TCP and UDP (`wasi:sockets`) to named `host:port` pairs, and name lookup for
//! exactly those hosts.
//!
//! Entries are `tcp://host:port`, `udp://host:port`, or `host:port` (TCP). A connect or send is allowed when the
//! address is an entry's IP literal, or an address that a lookup of an entry's host name returned during this
//! instance. Name lookup of any other name fails with `access-denied` before any DNS query is made, so a guest
//! cannot leak data through lookups. Listening and accepting are never allowed; binding is allowed only to the
//! wildcard address that an outbound connect uses implicitly.
//!
//! With an audit trail, every TCP connect and the first UDP send to each address are recorded as
//! `socket.connect` events, refused binds and listens as `socket.bind` and `socket.listen`, and every name
//! lookup as `dns.lookup`, allowed or denied (see `are_runtime::audit`).
//!
//! ```toml
//! allow.sockets = ["tcp://db.internal:5432", "udp://10.0.0.53:53"]
//! ```

use super::Grant;
use crate::capability::CapabilityKind;
use crate::common::{check_dns_name, ip_literal};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The hosts and ports a component may open sockets to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SocketsGrant(pub Vec<SocketEntry>);

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// A host name (lowercase) or an IP literal.
    pub host: String,
    /// The destination port.
    pub port: u16,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `tcp://`, the default.
    Tcp,
    /// `udp://`.
    Udp,
}

impl FromStr for SocketEntry {
    type Err = String;

    fn from_str(entry: &str) -> Result<SocketEntry, String> {
        let bad = |why: &str| {
            format!("invalid socket entry {entry:?}: {why} (expected [tcp://|udp://]host:port)")
        };
        let (protocol, rest) = match entry.split_once("://") {
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            Some(("udp", rest)) => (Protocol::Udp, rest),
            Some((other, _)) => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
            None => (Protocol::Tcp, entry),
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("port {port:?} is not a number 1-65535")))?;
        if port == 0 {
            return Err(bad("port 0 is not a destination"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if ip_literal(&host).is_none() {
            check_dns_name(&host).map_err(|why| {
                bad(&format!(
                    "{host:?} is neither an IP address nor a DNS name (sockets take no wildcards): {why}"
                ))
            })?;
        }
        Ok(SocketEntry {
            protocol,
            host,
            port,
        })
    }
}

impl<'de> Deserialize<'de> for SocketEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::parse_str(d)
    }
}

impl schemars::JsonSchema for SocketEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SocketEntry".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A destination `[tcp://|udp://]host:port` (TCP without a prefix): a DNS name or an IP \
                            literal (`[…]` for IPv6), no wildcards, and a port 1-65535.",
            "type": "string",
            "pattern": r"^((tcp|udp)://)?.+:\+?[0-9]+$",
            "examples": ["tcp://db.internal:5432", "udp://10.0.0.53:53"],
        })
    }
}

impl fmt::Display for SocketEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        match ip_literal(&self.host) {
            Some(IpAddr::V6(ip)) => write!(f, "{proto}://[{ip}]:{}", self.port),
            _ => write!(f, "{proto}://{}:{}", self.host, self.port),
        }
    }
}

impl Grant for SocketsGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Sockets
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}
