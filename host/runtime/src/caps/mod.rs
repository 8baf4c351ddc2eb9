//! Capabilities: one module per thing a component can be granted.
//!
//! Each module holds the three parts of its capability: the policy section (a serde type read from
//! `allow.<name>`), its linker wiring (`link`), and the per-instance state it builds from the grant (`prepare`).
//! [`Grants`] is the one list that ties them together: adding a capability is a new module plus one field there.
//!
//! Interfaces a component imports but that no grant provides are still linked, to functions that fail with
//! `capability not granted: <import>` (see [`denied`]), so a component loads and fails only at the call that
//! reaches past its grant.

pub mod baseline;
pub mod denied;
pub mod env;
pub mod fs;
pub mod http;
pub mod llm;
pub mod memory;
pub mod messaging;
pub mod secrets;
pub mod sockets;
pub mod stdio;
pub mod tools;

use crate::policy::{PolicyError, SourceText};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use std::path::Path;
use wasmtime::component::Linker;

/// What one capability module provides. Implemented by each grant type.
pub trait Capability {
    /// The key under `allow.` in the policy.
    fn name(&self) -> &'static str;

    /// Whether the policy grants anything for this capability.
    fn is_granted(&self) -> bool;

    /// Whether only agents can use it (it needs the agent runtime).
    fn agent_only(&self) -> bool {
        false
    }

    /// The capability this one works through, when it links no interface of its own (`secrets` rides on
    /// `http`): it is needed exactly when that one is, and reviewed with it.
    fn extends(&self) -> Option<&'static str> {
        None
    }

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

    /// Add this capability's interfaces to `linker`, and return the WIT interface names (`ns:pkg/iface`, without
    /// version) now provided. Interfaces not returned here are linked to denials.
    ///
    /// # Errors
    /// When the linker rejects a definition (a bug, not a user error).
    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]>;

    /// Configure one instance from the grant.
    ///
    /// # Errors
    /// When the grant cannot be applied on this host, e.g. a mounted directory was removed.
    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()>;
}

/// Everything a policy grants one component (`allow.*`): one field per capability.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Every capability, in a fixed order: the one list.
    pub fn all(&self) -> [&dyn Capability; 9] {
        [
            &self.fs,
            &self.env,
            &self.http,
            &self.sockets,
            &self.secrets,
            &self.tools,
            &self.llm,
            &self.memory,
            &self.messaging,
        ]
    }

    /// The first granted capability that only agents can use, if any.
    pub fn agent_only(&self) -> Option<&'static str> {
        self.all()
            .into_iter()
            .find(|c| c.agent_only() && c.is_granted())
            .map(|c| c.name())
    }

    /// The capabilities that work through the one named `name` (see [`Capability::extends`]).
    pub fn extending(&self, name: &str) -> impl Iterator<Item = &dyn Capability> {
        self.all()
            .into_iter()
            .filter(move |c| c.extends() == Some(name))
    }

    /// Run every capability's validation.
    ///
    /// # Errors
    /// The first [`PolicyError`] found.
    pub fn validate(&self, base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        self.all()
            .iter()
            .try_for_each(|cap| cap.validate(base_dir, source))?;
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
    use super::matches_pattern;

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
}
