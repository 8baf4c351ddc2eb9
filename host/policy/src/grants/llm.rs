//! `allow.llm` (agents): calls of the model configured in `[llm]`, with a token and a turn budget per message
//! handled.
//!
//! ```toml
//! allow.llm = { model = "default", max_tokens = 20000, max_turns = 8 }
//! ```

use super::Grant;
use crate::capability::CapabilityKind;
use serde::Deserialize;

/// The model access granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmGrant {
    /// The model to use: `default` (the one in `[llm]`) or a model name. No model access when absent.
    pub model: Option<String>,
    /// Tokens (prompt plus completion) one message's handling may spend (default 20 000).
    pub max_tokens: Option<u32>,
    /// Model calls one message's handling may make (default 8).
    pub max_turns: Option<u32>,
}

impl LlmGrant {
    /// The token budget per message.
    pub fn token_budget(&self) -> u32 {
        self.max_tokens.unwrap_or(20_000)
    }

    /// The turn budget per message.
    pub fn turn_budget(&self) -> u32 {
        self.max_turns.unwrap_or(8)
    }
}

/// The JSON Schema of an `LlmGrant` that grants nothing ([`Grant::is_granted`] is false): no `model`.
pub(crate) fn nothing_granted() -> serde_json::Value {
    serde_json::json!({ "not": { "required": ["model"] } })
}

impl Grant for LlmGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Llm
    }

    fn is_granted(&self) -> bool {
        self.model.is_some()
    }

    fn entries(&self) -> Vec<String> {
        self.model
            .iter()
            .map(|model| {
                format!(
                    "model {model}, {} tokens and {} turns per message",
                    self.token_budget(),
                    self.turn_budget()
                )
            })
            .collect()
    }
}
