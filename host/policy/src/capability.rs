//! The one list of capabilities: every kind of thing a component's imports can reach, with what the host needs to
//! know about it in one [`Descriptor`].
//!
//! Imports are classified by the WIT interfaces each kind lists ([`classify_import`]); grants are keyed by
//! [`Descriptor::policy_key`]; the runtime links each kind through an exhaustive `match` on [`CapabilityKind`], so a
//! new kind does not compile until it has a runtime side.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a component's imports give it access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapabilityKind {
    /// Host directories mounted into the guest (`wasi:filesystem`).
    Fs,
    /// Environment variables, arguments and working directory (`wasi:cli/environment`).
    Env,
    /// Wall and monotonic clocks (`wasi:clocks`).
    Clocks,
    /// Random numbers (`wasi:random`).
    Random,
    /// Standard input and output, and the terminal interfaces.
    Stdio,
    /// Streams, polling and errors of the guest's own resources (`wasi:io`) and `wasi:cli/exit`.
    Io,
    /// Outbound HTTP (`wasi:http`).
    Http,
    /// Outbound sockets and name lookups (`wasi:sockets`).
    Sockets,
    /// Headers the host adds to HTTP requests to given hosts; it rides on [`CapabilityKind::Http`].
    Secrets,
    /// What every agent gets: who it is and a log (`are:agent/identity`, `are:agent/log`).
    Agent,
    /// Calling other components' tools (`are:agent/tools`).
    Tools,
    /// Calling the model (`are:agent/llm`).
    Llm,
    /// The agent's persistent key-value store (`are:agent/memory`).
    Memory,
    /// Sending and publishing messages to other agents (`are:agent/messaging`).
    Messaging,
    /// Everything else: custom interfaces and world-level functions, which nothing in the host provides.
    Other,
}

/// How the host provides a [`CapabilityKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provision {
    /// Always linked, no grant needed: it reaches nothing outside the instance (io, clocks, random, stdio).
    Baseline,
    /// Linked for every agent, never for a tool component (identity, log).
    AgentBase,
    /// Only when the policy grants it, under [`Descriptor::policy_key`].
    Grant,
    /// Never: no grant provides it, so its calls are always denied.
    Unavailable,
}

/// What the host knows about one [`CapabilityKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The name in policies, JSON and reports (`fs`, `http`, …).
    pub name: &'static str,
    /// The policy key that grants it (`allow.fs`), when a grant does.
    pub policy_key: Option<&'static str>,
    /// The WIT interfaces (without version) that belong to it; a trailing `*` matches any interface of a package
    /// (`wasi:http/*`) or any name with that prefix (`wasi:cli/terminal-*`).
    pub interfaces: &'static [&'static str],
    /// How the host provides it.
    pub provision: Provision,
    /// Whether only agents can be granted it (or get it).
    pub agent_only: bool,
    /// The kind this one works through, when it has no interface of its own (`secrets` rides on `http`): it is
    /// needed exactly when that one is, and reviewed with it.
    pub extends: Option<CapabilityKind>,
}

impl CapabilityKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [CapabilityKind; 15] = [
        CapabilityKind::Fs,
        CapabilityKind::Env,
        CapabilityKind::Clocks,
        CapabilityKind::Random,
        CapabilityKind::Stdio,
        CapabilityKind::Io,
        CapabilityKind::Http,
        CapabilityKind::Sockets,
        CapabilityKind::Secrets,
        CapabilityKind::Agent,
        CapabilityKind::Tools,
        CapabilityKind::Llm,
        CapabilityKind::Memory,
        CapabilityKind::Messaging,
        CapabilityKind::Other,
    ];

    /// The kinds a policy grants (those with a [`Descriptor::policy_key`]), in order.
    pub fn granted() -> impl Iterator<Item = CapabilityKind> {
        Self::ALL
            .into_iter()
            .filter(|k| k.descriptor().policy_key.is_some())
    }

    /// What the host knows about this kind.
    pub const fn descriptor(self) -> Descriptor {
        use CapabilityKind as K;
        const fn grant(
            name: &'static str,
            policy_key: &'static str,
            interfaces: &'static [&'static str],
            agent_only: bool,
        ) -> Descriptor {
            Descriptor {
                name,
                policy_key: Some(policy_key),
                interfaces,
                provision: Provision::Grant,
                agent_only,
                extends: None,
            }
        }
        const fn baseline(name: &'static str, interfaces: &'static [&'static str]) -> Descriptor {
            Descriptor {
                name,
                policy_key: None,
                interfaces,
                provision: Provision::Baseline,
                agent_only: false,
                extends: None,
            }
        }
        match self {
            K::Fs => grant("fs", "allow.fs", &["wasi:filesystem/*"], false),
            K::Env => grant("env", "allow.env", &["wasi:cli/environment"], false),
            K::Http => grant("http", "allow.http", &["wasi:http/*"], false),
            K::Sockets => grant("sockets", "allow.sockets", &["wasi:sockets/*"], false),
            K::Secrets => Descriptor {
                extends: Some(K::Http),
                ..grant("secrets", "allow.secrets", &[], false)
            },
            K::Clocks => baseline("clocks", &["wasi:clocks/*"]),
            K::Random => baseline("random", &["wasi:random/*"]),
            K::Stdio => baseline(
                "stdio",
                &[
                    "wasi:cli/stdin",
                    "wasi:cli/stdout",
                    "wasi:cli/stderr",
                    "wasi:cli/terminal-*",
                ],
            ),
            K::Io => baseline("io", &["wasi:io/*", "wasi:cli/exit"]),
            K::Agent => Descriptor {
                name: "agent",
                policy_key: None,
                interfaces: &["are:agent/identity", "are:agent/log"],
                provision: Provision::AgentBase,
                agent_only: true,
                extends: None,
            },
            K::Tools => grant("tools", "allow.tools", &["are:agent/tools"], true),
            K::Llm => grant("llm", "allow.llm", &["are:agent/llm"], true),
            K::Memory => grant("memory", "allow.memory", &["are:agent/memory"], true),
            K::Messaging => grant(
                "messaging",
                "allow.messaging",
                &["are:agent/messaging"],
                true,
            ),
            K::Other => Descriptor {
                name: "other",
                policy_key: None,
                interfaces: &[],
                provision: Provision::Unavailable,
                agent_only: false,
                extends: None,
            },
        }
    }

    /// The name in policies, JSON and reports.
    pub fn as_str(self) -> &'static str {
        self.descriptor().name
    }

    /// How the host provides it.
    pub fn provision(self) -> Provision {
        self.descriptor().provision
    }

    /// Whether only agents can be granted it (or get it).
    pub fn agent_only(self) -> bool {
        self.descriptor().agent_only
    }

    /// The policy key that grants it, if one does.
    pub fn policy_key(self) -> Option<&'static str> {
        self.descriptor().policy_key
    }

    /// The kinds that work through this one (see [`Descriptor::extends`]).
    pub fn extended_by(self) -> impl Iterator<Item = CapabilityKind> {
        Self::ALL
            .into_iter()
            .filter(move |k| k.descriptor().extends == Some(self))
    }
}

impl fmt::Display for CapabilityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind an imported interface belongs to, from its full name (`wasi:filesystem/types@0.2.6`), by the
/// [`Descriptor::interfaces`] of each kind.
///
/// The single source of truth for classifying imports: descriptions group imports with it, denials name the policy
/// key of its result, and grant reports compare it with the policy.
pub fn classify_import(interface_name: &str) -> CapabilityKind {
    let unversioned = interface_name
        .split_once('@')
        .map_or(interface_name, |(name, _)| name);
    if !unversioned.contains('/') {
        return CapabilityKind::Other;
    }
    CapabilityKind::ALL
        .into_iter()
        .find(|kind| {
            kind.descriptor()
                .interfaces
                .iter()
                .any(|pattern| interface_matches(pattern, unversioned))
        })
        .unwrap_or(CapabilityKind::Other)
}

/// Whether the unversioned interface name `name` matches `pattern` (see [`Descriptor::interfaces`]).
fn interface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// An imported interface (or world-level function) and the kind it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedInterface {
    /// Full name, e.g. `wasi:filesystem/types@0.2.6`; a world-level function import is named after the function.
    pub name: String,
    /// What the interface gives access to.
    pub capability: CapabilityKind,
    /// Names of the imported functions.
    pub functions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::{CapabilityKind as K, Provision, classify_import};

    #[test]
    fn imports_are_classified_by_the_descriptors() {
        for (name, kind) in [
            ("wasi:filesystem/types@0.2.6", K::Fs),
            ("wasi:filesystem/preopens@0.2.0", K::Fs),
            ("wasi:cli/environment@0.2.0", K::Env),
            ("wasi:cli/stdout@0.2.0", K::Stdio),
            ("wasi:cli/terminal-stdout@0.2.0", K::Stdio),
            ("wasi:cli/exit@0.2.0", K::Io),
            ("wasi:io/streams@0.2.0", K::Io),
            ("wasi:clocks/monotonic-clock@0.2.0", K::Clocks),
            ("wasi:random/random@0.2.0", K::Random),
            ("wasi:http/outgoing-handler@0.2.0", K::Http),
            ("wasi:sockets/tcp@0.2.0", K::Sockets),
            ("are:agent/identity@0.1.0", K::Agent),
            ("are:agent/log@0.1.0", K::Agent),
            ("are:agent/tools@0.1.0", K::Tools),
            ("are:agent/llm@0.1.0", K::Llm),
            ("are:agent/memory@0.1.0", K::Memory),
            ("are:agent/messaging@0.1.0", K::Messaging),
            ("are:agent/other@0.1.0", K::Other),
            ("are:agents/tools@0.1.0", K::Other),
            ("wasi:cli/run@0.2.0", K::Other),
            ("my-function", K::Other),
        ] {
            assert_eq!(classify_import(name), kind, "{name}");
        }
    }

    #[test]
    fn descriptors_are_consistent() {
        for kind in K::ALL {
            let d = kind.descriptor();
            assert_eq!(
                d.policy_key.is_some(),
                d.provision == Provision::Grant,
                "{kind}"
            );
            if let Some(key) = d.policy_key {
                assert_eq!(key, format!("allow.{}", d.name), "{kind}");
            }
            if let Some(base) = d.extends {
                assert!(
                    d.interfaces.is_empty(),
                    "{kind} extends {base}: no interfaces of its own"
                );
            }
            assert_eq!(serde_json::to_value(kind).unwrap(), d.name, "{kind}");
        }
        assert!(
            K::ALL.windows(2).all(|w| w[0] < w[1]),
            "ALL is in declaration order"
        );
        let granted: Vec<_> = K::granted().map(K::as_str).collect();
        assert_eq!(
            granted,
            [
                "fs",
                "env",
                "http",
                "sockets",
                "secrets",
                "tools",
                "llm",
                "memory",
                "messaging"
            ]
        );
        assert_eq!(K::Http.extended_by().collect::<Vec<_>>(), [K::Secrets]);
    }
}
