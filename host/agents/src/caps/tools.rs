//! `allow.tools` (agents): the tools an agent may call through `are:agent/tools`, as patterns over tool names
//! (`component.function`): `fetch.get`, `text.*`, or `*`.
//!
//! ```toml
//! allow.tools = ["fetch.get", "text.*"]
//! ```
//!
//! A call of a tool outside the grant, with arguments that do not fit, or that fails, comes back as an error
//! value the agent can act on. Each tool call runs in the tool component's own sandbox with its own limits.

use crate::AgentState as _;
use crate::bindings::are::agent::tools::{self, ToolInfo};
use are_runtime::sandbox::HostState;

impl tools::Host for HostState {
    async fn list(&mut self) -> wasmtime::Result<Vec<ToolInfo>> {
        let agent = self.agent()?;
        let infos = agent
            .granted_tools()
            .into_iter()
            .map(|t| ToolInfo {
                name: t.tool.name.to_string(),
                description: t.tool.description.clone(),
                input_schema: serde_json::Value::Object((*t.tool.input_schema).clone()).to_string(),
            })
            .collect();
        Ok(infos)
    }

    async fn call(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(self.agent()?.call_tool(&name, &arguments).await)
    }
}
