//! Agents: components with an identity (`type/key`) that handle messages one at a time.
//!
//! An agent type is an `[agent.TYPE]` table of the policy; its instances are created lazily by their first
//! message, handle one message at a time (different agents run concurrently), and are deactivated after an
//! idle timeout, to be activated again by the next message. Every message goes through the [`store`]: it is
//! written before it is accepted and marked done after its handler finished, so a crashed runtime resumes
//! every unfinished message when it starts again (at least once; same message id).
//!
//! Agents reach the world only through capabilities their policy grants: `tools`, `llm`, `memory` and
//! `messaging` (see [`caps`]), plus `identity` and `log`, which every agent has.

pub mod bindings;
pub mod caps;
pub mod llm;
mod runtime;
pub mod store;

pub use runtime::{
    AgentContext, AgentError, AgentRuntime, Outcome, store_path as runtime_store_path,
};

use bindings::are::agent::{identity, log};

use are_runtime::sandbox::HostState;

/// An agent id: `type/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId {
    /// The agent type (`[agent.TYPE]`).
    pub agent_type: String,
    /// The instance key.
    pub key: String,
}

impl AgentId {
    /// Parse `type/key`: the type is a policy name, the key 1 to 128 of `A-Z a-z 0-9 _ - . : @`.
    ///
    /// # Errors
    /// [`InvalidAgentId`], saying what is wrong with the id.
    pub fn parse(id: &str) -> Result<AgentId, InvalidAgentId> {
        let (agent_type, key) = id
            .split_once('/')
            .ok_or_else(|| InvalidAgentId::NotTypeAndKey(id.to_string()))?;
        let valid_type = !agent_type.is_empty()
            && agent_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let valid_key = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c));
        if !valid_type || !valid_key {
            return Err(InvalidAgentId::Characters(id.to_string()));
        }
        Ok(AgentId {
            agent_type: agent_type.to_string(),
            key: key.to_string(),
        })
    }
}

/// Text that is not an agent id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAgentId {
    /// No `/` between a type and a key.
    #[error("invalid agent id {0:?}: expected `type/key`, e.g. `writer/report-1`")]
    NotTypeAndKey(String),
    /// A type or key that is empty, too long, or has other characters.
    #[error(
        "invalid agent id {0:?}: the type is a name from the policy and the key 1 to 128 of A-Z a-z 0-9 _ - . : @"
    )]
    Characters(String),
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.agent_type, self.key)
    }
}

/// The agent context of an instance, for the host functions of the agent capabilities.
pub trait AgentState {
    /// The agent context; an error (trapping the guest) for a component that is not an agent.
    ///
    /// # Errors
    /// When this instance is not an agent (the agent interfaces are only linked for agents, so only a bug).
    fn agent(&mut self) -> wasmtime::Result<&mut AgentContext>;
}

impl AgentState for HostState {
    fn agent(&mut self) -> wasmtime::Result<&mut AgentContext> {
        self.extension_mut::<AgentContext>()
            .ok_or_else(|| wasmtime::format_err!("this instance is not an agent"))
    }
}

impl identity::Host for HostState {
    async fn self_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.agent()?.id.clone())
    }

    async fn current_message(&mut self) -> wasmtime::Result<Option<identity::MessageInfo>> {
        Ok(self.agent()?.current().map(|m| identity::MessageInfo {
            id: m.id.clone(),
            sender: m.sender.clone(),
            topic: m.topic.clone(),
            hops: m.hops,
        }))
    }
}

impl log::Host for HostState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let agent = self.agent()?.id.clone();
        // One line, control characters escaped: a newline in `message` cannot start a line of the host's own.
        let message = are_runtime::terminal::escape(&message);
        match level {
            log::Level::Debug => tracing::debug!(%agent, "{message}"),
            log::Level::Info => tracing::info!(%agent, "{message}"),
            log::Level::Warn => tracing::warn!(%agent, "{message}"),
            log::Level::Error => tracing::error!(%agent, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::AgentId;

    #[test]
    fn agent_ids() {
        let id = AgentId::parse("writer/report-7").unwrap();
        assert_eq!(
            (id.agent_type.as_str(), id.key.as_str()),
            ("writer", "report-7")
        );
        assert_eq!(id.to_string(), "writer/report-7");
        for bad in [
            "writer",
            "/x",
            "writer/",
            "wri ter/x",
            "writer/a/b",
            "writer/a b",
        ] {
            assert!(
                AgentId::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("invalid agent id"),
                "{bad}"
            );
        }
    }
}
