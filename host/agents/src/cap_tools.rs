//! `allow.tools` (agents): the tools an agent may call through `are:agent/tools`, as patterns over tool names
//! (`component.function`): `fetch.get`, `text.*`, or `*`.
//!
//! ```toml
//! allow.tools = ["fetch.get", "text.*"]
//! ```
//!
//! A call of a tool outside the grant, with arguments that do not fit, or that fails, comes back as an error
//! value the agent can act on. Each tool call runs in the tool component's own sandbox with its own limits.

use super::Capability;
use crate::agent::bindings::are::agent::tools::{self, ToolInfo};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};

/// The tool patterns granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ToolsGrant(pub Vec<String>);

impl ToolsGrant {
    /// Whether the tool called `name` is granted.
    pub fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|p| super::matches_pattern(p, name))
    }
}

impl Capability for ToolsGrant {
    fn name(&self) -> &'static str {
        "tools"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.clone()
    }

    fn agent_only(&self) -> bool {
        true
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.0.is_empty() {
            return Ok(&[]);
        }
        tools::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        Ok(&["are:agent/tools"])
    }

    fn prepare(&self, _builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        Ok(())
    }
}

impl tools::Host for HostState {
    async fn list(&mut self) -> wasmtime::Result<Vec<ToolInfo>> {
        let agent = self.agent()?;
        let infos = agent
            .granted_tools()
            .into_iter()
            .map(|t| ToolInfo {
                name: t.tool.name.to_string(),
                description: t
                    .tool
                    .description
                    .as_deref()
                    .unwrap_or_default()
                    .to_string(),
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
