//! `allow.tools` (agents): the tools an agent may call through `are:agent/tools`, as patterns over tool names
//! (`component.function`): `fetch.get`, `text.*`, or `*`.
//!
//! ```toml
//! allow.tools = ["fetch.get", "text.*"]
//! ```

use super::Grant;
use crate::capability::CapabilityKind;
use serde::Deserialize;

/// The tool patterns granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct ToolsGrant(pub Vec<String>);

impl ToolsGrant {
    /// Whether the tool called `name` is granted.
    pub fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|p| super::matches_pattern(p, name))
    }
}

/// The JSON Schema of a `ToolsGrant` that grants nothing ([`Grant::is_granted`] is false): no pattern.
pub(crate) fn nothing_granted() -> serde_json::Value {
    serde_json::json!({ "maxItems": 0 })
}

impl Grant for ToolsGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Tools
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.clone()
    }
}
