//! What a policy grants one component (`allow.*`): one module per capability holding its policy section (a serde
//! type), how a reviewer reads it ([`Grant::entries`]) and the checks the parser cannot make ([`Grant::validate`]).
//!
//! The runtime side of each (linking, per-instance state) lives in `are-runtime` (`caps/`) and, for the agent
//! capabilities, `are-agents`, chosen by the [`CapabilityKind`] of each grant.

pub mod env;
pub mod fs;
pub mod http;
pub mod llm;
pub mod memory;
pub mod messaging;
pub mod secrets;
pub mod sockets;
pub mod tools;

use crate::capability::CapabilityKind;
use crate::{PolicyError, SourceText};
use serde::Deserialize;
use std::path::Path;

/// The policy side of one capability's grant. Implemented by each grant type.
pub trait Grant {
    /// Which capability this grants.
    fn kind(&self) -> CapabilityKind;

    /// Whether the policy grants anything for this capability.
    fn is_granted(&self) -> bool;

    /// What the policy grants, one entry per item as a reviewer would read it (origins, mounts, variable names,
    /// patterns, budgets); empty when nothing is granted. Never a secret value.
    fn entries(&self) -> Vec<String> {
        Vec::new()
    }

    /// The [`entries`](Self::entries) that take effect only through this capability's imports: a component that
    /// imports none of them gets nothing from these, so they are an over-grant. All entries, except where a grant
    /// also acts without imports (topics an agent subscribes to).
    fn import_entries(&self) -> Vec<String> {
        self.entries()
    }

    /// Check what the parser cannot (for example that a mounted directory exists).
    ///
    /// # Errors
    /// A [`PolicyError`] pointing at the offending value.
    fn validate(&self, _base_dir: &Path, _source: &SourceText) -> Result<(), PolicyError> {
        Ok(())
    }
}

/// Everything a policy grants one component (`allow.*`): one field per granted [`CapabilityKind`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
// In the schema, this is an agent's `allow` (a component's is `schema::ComponentGrants`).
#[schemars(
    rename = "AgentGrants",
    description = "What an agent's instances may reach (`allow.*`), one entry per capability: those of components \
                   plus `tools`, `llm`, `memory` and `messaging`."
)]
pub struct Grants {
    /// Host directories mounted into the guest.
    #[serde(default)]
    pub fs: fs::FsGrant,
    /// Environment variables the guest sees.
    #[serde(default)]
    pub env: env::EnvGrant,
    /// Outbound HTTP origins (wasi:http).
    #[serde(default)]
    pub http: http::HttpGrant,
    /// Outbound sockets and name lookups (wasi:sockets).
    #[serde(default)]
    pub sockets: sockets::SocketsGrant,
    /// Headers injected into HTTP requests to given hosts; the guest never sees them.
    #[serde(default)]
    pub secrets: secrets::SecretsGrant,
    /// Tools an agent may call.
    #[serde(default)]
    pub tools: tools::ToolsGrant,
    /// Model access of an agent.
    #[serde(default)]
    pub llm: llm::LlmGrant,
    /// Persistent memory of an agent.
    #[serde(default)]
    pub memory: memory::MemoryGrant,
    /// Messages an agent may send, publish and receive.
    #[serde(default)]
    pub messaging: messaging::MessagingGrant,
}

impl Grants {
    /// The grant of `kind`; `None` for kinds no policy key grants (baseline, agent base, other).
    pub fn get(&self, kind: CapabilityKind) -> Option<&dyn Grant> {
        use CapabilityKind as K;
        match kind {
            K::Fs => Some(&self.fs),
            K::Env => Some(&self.env),
            K::Http => Some(&self.http),
            K::Sockets => Some(&self.sockets),
            K::Secrets => Some(&self.secrets),
            K::Tools => Some(&self.tools),
            K::Llm => Some(&self.llm),
            K::Memory => Some(&self.memory),
            K::Messaging => Some(&self.messaging),
            K::Clocks | K::Random | K::Stdio | K::Io | K::Agent | K::Other => None,
        }
    }

    /// Every grant, in the order of [`CapabilityKind::ALL`].
    pub fn all(&self) -> impl Iterator<Item = &dyn Grant> {
        CapabilityKind::ALL.into_iter().filter_map(|k| self.get(k))
    }

    /// The first granted capability that only agents can use, if any.
    pub fn agent_only(&self) -> Option<CapabilityKind> {
        self.all()
            .find(|g| g.kind().agent_only() && g.is_granted())
            .map(|g| g.kind())
    }

    /// Run every capability's validation.
    ///
    /// # Errors
    /// The first [`PolicyError`] found.
    pub fn validate(&self, base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        self.all()
            .try_for_each(|grant| grant.validate(base_dir, source))?;
        if let Some((entry, why)) = secrets::unreachable_secret(&self.secrets, &self.http) {
            return Err(source.error(
                entry.host.span(),
                format!("a secret for {} but {why}", entry.host.get_ref()),
            ));
        }
        Ok(())
    }
}

/// Deserialize a `T` from a string with its [`FromStr`](std::str::FromStr), inside the string's own deserializer,
/// so that a parse error points at the string (with toml: its line and column, not the enclosing array's).
///
/// # Errors
/// When the value is not a string, or does not parse.
pub(crate) fn parse_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    struct Parse<T>(std::marker::PhantomData<T>);
    impl<T: std::str::FromStr<Err = String>> serde::de::Visitor<'_> for Parse<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(Parse(std::marker::PhantomData))
}

/// Whether `name` matches `pattern`: equal, or, for a pattern ending in `*`, starting with what precedes it
/// (`*` alone matches everything).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches_pattern("*", "anything.at-all"));
        assert!(matches_pattern("text.*", "text.slugify"));
        assert!(!matches_pattern("text.*", "textual.x"));
        assert!(matches_pattern("writer/*", "writer/7"));
        assert!(!matches_pattern("writer/*", "researcher/7"));
        assert!(matches_pattern("fetch.get", "fetch.get"));
        assert!(!matches_pattern("fetch.get", "fetch.get2"));
    }

    #[test]
    fn every_granted_kind_has_its_grant() {
        let grants = Grants::default();
        for kind in CapabilityKind::ALL {
            let grant = grants.get(kind);
            assert_eq!(grant.is_some(), kind.policy_key().is_some(), "{kind}");
            if let Some(grant) = grant {
                assert_eq!(grant.kind(), kind);
                assert!(!grant.is_granted(), "{kind}: nothing is granted by default");
            }
        }
    }
}
