//! `allow.memory` (agents): a private key-value store per agent, persisted in the agent store, with a quota.
//!
//! ```toml
//! allow.memory = { quota = "1 MiB" }   # keys plus values, in bytes
//! ```
//!
//! Memory also counts against the agent type's share of the store (`[agent.TYPE] store_quota`).

use crate::AgentState as _;
use crate::bindings::are::agent::memory;
use crate::store::MemoryRefusal;
use are_runtime::sandbox::HostState;

impl memory::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let agent = self.agent()?;
        Ok(agent.runtime.store().memory_get(&agent.id, &key)?)
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        let agent = self.agent()?;
        let quota = agent.grants().memory.quota.map_or(0, |q| q.0);
        let store_quota = agent.store_quota();
        Ok(agent
            .runtime
            .store()
            .memory_set(&agent.id, &key, &value, quota, store_quota)?
            .map_err(|refusal| match refusal {
                MemoryRefusal::Quota(total) => format!(
                    "memory quota exceeded: storing `{key}` would bring this agent to {total} bytes, over its \
                     quota of {quota} bytes (allow.memory.quota); delete keys or store less"
                ),
                MemoryRefusal::Store(over) => format!(
                    "store quota exceeded: storing `{key}` would bring agent type `{}` to {} bytes of pending \
                     messages and memory, over its quota of {} bytes ([agent.{0}] store_quota); delete keys or \
                     store less",
                    agent.type_name(),
                    over.needed,
                    over.quota
                ),
            }))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        let agent = self.agent()?;
        Ok(agent.runtime.store().memory_delete(&agent.id, &key)?)
    }

    async fn list(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let agent = self.agent()?;
        Ok(agent.runtime.store().memory_keys(&agent.id, &prefix)?)
    }
}
