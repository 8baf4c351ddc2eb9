//! The agent capabilities: `agent` (identity and log, which every agent has), `tools`, `llm`, `memory` and
//! `messaging`, each linked only for agents and only as the policy grants it (grant types in
//! `are_policy::grants`). [`AGENT_LINKING`] is what the runtime links an agent's component with.

pub mod llm;
pub mod memory;
pub mod messaging;
pub mod tools;

use crate::bindings::are::agent as wit;
use are_policy::{CapabilityKind, Grants};
use are_runtime::caps::{AgentLinker, AgentLinking};
use are_runtime::sandbox::HostState;
use wasmtime::component::{HasSelf, Linker};

/// Links the agent capabilities of one agent type.
struct AgentCapabilities;

/// The linking of agent components: pass it as `ComponentSpec::agent`.
pub const AGENT_LINKING: AgentLinking = AgentLinking(&AgentCapabilities);

impl AgentLinker for AgentCapabilities {
    fn link(
        &self,
        kind: CapabilityKind,
        grants: &Grants,
        linker: &mut Linker<HostState>,
    ) -> wasmtime::Result<&'static [&'static str]> {
        use CapabilityKind as K;
        Ok(match kind {
            K::Agent => {
                wit::identity::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                wit::log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                &["are:agent/identity", "are:agent/log"]
            }
            K::Tools if !grants.tools.0.is_empty() => {
                wit::tools::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                &["are:agent/tools"]
            }
            K::Llm if grants.llm.model.is_some() => {
                wit::llm::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                &["are:agent/llm"]
            }
            K::Memory if grants.memory.quota.is_some() => {
                wit::memory::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                &["are:agent/memory"]
            }
            K::Messaging if grants.messaging.links_interface() => {
                wit::messaging::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
                &["are:agent/messaging"]
            }
            // Not granted, or not an agent capability (the runtime links those itself).
            K::Tools | K::Llm | K::Memory | K::Messaging => &[],
            K::Fs
            | K::Env
            | K::Clocks
            | K::Random
            | K::Stdio
            | K::Io
            | K::Http
            | K::Sockets
            | K::Secrets
            | K::Other => &[],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use are_policy::classify_import;

    #[test]
    fn every_agent_interface_belongs_to_the_kind_that_links_it() {
        let grants: Grants = toml::from_str(
            r#"
            tools = ["*"]
            llm = { model = "default" }
            memory = { quota = "1 KiB" }
            messaging = { send = ["a/*"] }
            "#,
        )
        .expect("grants");
        let engine = wasmtime::Engine::default();
        for kind in CapabilityKind::ALL {
            let mut linker = Linker::<HostState>::new(&engine);
            let provided = AgentCapabilities
                .link(kind, &grants, &mut linker)
                .expect("links");
            assert_eq!(!provided.is_empty(), kind.agent_only(), "{kind}");
            for interface in provided {
                assert_eq!(classify_import(interface), kind, "{interface}");
            }
            let mut bare = Linker::<HostState>::new(&engine);
            let ungranted = AgentCapabilities
                .link(kind, &Grants::default(), &mut bare)
                .expect("links");
            assert_eq!(
                !ungranted.is_empty(),
                kind == CapabilityKind::Agent,
                "{kind}: only the base without a grant"
            );
        }
    }
}
