//! `allow.memory` (agents): a private key-value store per agent, persisted in the agent store, with a quota.
//!
//! ```toml
//! allow.memory = { quota = "1 MiB" }   # keys plus values, in bytes
//! ```
//!
//! Memory also counts against the agent type's share of the store (`[agent.TYPE] store_quota`).

use super::Grant;
use crate::Size;
use crate::capability::CapabilityKind;
use serde::Deserialize;

/// The memory granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryGrant {
    /// Most bytes (keys plus values) the agent may keep; no memory at all when absent.
    pub quota: Option<Size>,
}

/// The JSON Schema of a `MemoryGrant` that grants nothing ([`Grant::is_granted`] is false): no `quota`.
pub(crate) fn nothing_granted() -> serde_json::Value {
    serde_json::json!({ "not": { "required": ["quota"] } })
}

impl Grant for MemoryGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Memory
    }

    fn is_granted(&self) -> bool {
        self.quota.is_some()
    }

    fn entries(&self) -> Vec<String> {
        self.quota
            .iter()
            .map(|q| format!("quota {}", crate::common::fmt_bytes(q.0)))
            .collect()
    }
}
