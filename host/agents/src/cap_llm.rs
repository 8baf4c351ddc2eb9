//! `allow.llm` (agents): calls of the model configured in `[llm]`, with a token and a turn budget per message
//! handled. The API key never reaches the agent; the tools offered to the model are the agent's granted tools.
//!
//! ```toml
//! allow.llm = { model = "default", max_tokens = 20000, max_turns = 8 }
//! ```

use super::Capability;
use crate::agent::bindings::are::agent::llm::{self, Completion, Error, Message};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};

/// The model access granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

impl Capability for LlmGrant {
    fn name(&self) -> &'static str {
        "llm"
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

    fn agent_only(&self) -> bool {
        true
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.model.is_none() {
            return Ok(&[]);
        }
        llm::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        Ok(&["are:agent/llm"])
    }

    fn prepare(&self, _builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        Ok(())
    }
}

impl llm::Host for HostState {
    async fn chat(
        &mut self,
        messages: Vec<Message>,
        use_tools: bool,
        max_tokens: Option<u32>,
    ) -> wasmtime::Result<Result<Completion, Error>> {
        Ok(self.agent()?.chat(messages, use_tools, max_tokens).await)
    }
}
