//! `allow.llm` (agents): calls of the model configured in `[llm]`, with a token and a turn budget per message
//! handled. The API key never reaches the agent; the tools offered to the model are the agent's granted tools.
//!
//! ```toml
//! allow.llm = { model = "default", max_tokens = 20000, max_turns = 8 }
//! ```

use crate::AgentState as _;
use crate::bindings::are::agent::llm::{self, Completion, Error, Message};
use are_runtime::sandbox::HostState;

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
