//! The runtime side of each capability: what it links into a component's linker and what it gives each instance,
//! chosen by an exhaustive `match` on [`CapabilityKind`] (the policy side, grant types and their checks, is in
//! `are_policy::grants`). A new kind does not compile until it has a line in [`link`] and [`prepare`].
//!
//! The agent capabilities (`agent`, `tools`, `llm`, `memory`, `messaging`) are linked by the agent runtime
//! (`are-agents`) through [`AgentLinker`]; a component loaded without one never gets them.
//!
//! Interfaces a component imports but that no grant provides are still linked, to functions that fail with
//! `capability not granted: <import>` (see [`denied`]), so a component loads and fails only at the call that
//! reaches past its grant.

pub mod baseline;
pub mod denied;
pub mod env;
pub mod fs;
pub mod http;
pub mod secrets;
pub mod sockets;
pub mod stdio;

use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::{CapabilityKind, Grants};
use std::collections::BTreeSet;
use wasmtime::component::Linker;

/// Why a grant could not be applied to a new instance on this host.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A mounted directory cannot be opened.
    #[error("cannot mount {} at {guest}: {reason}", host.display())]
    Mount {
        /// The host directory.
        host: std::path::PathBuf,
        /// Where the guest sees it.
        guest: String,
        /// What wasmtime-wasi said.
        reason: String,
    },
    /// A mount's quota cannot be set up.
    #[error(transparent)]
    Quota(#[from] fs::quota::QuotaError),
    /// A secret's variable is not set in the host's environment.
    #[error(
        "the secret for {host} is read from ${var}, which is not set in the host's environment"
    )]
    SecretUnset {
        /// The host the secret is for.
        host: String,
        /// The environment variable.
        var: String,
    },
    /// A secret's variable holds something that cannot be a header value.
    #[error("${var} is not a valid header value")]
    SecretValue {
        /// The environment variable.
        var: String,
    },
    /// A secret's header name is not a valid HTTP header name.
    #[error("`{header}` is not a valid header name")]
    SecretHeader {
        /// The header name.
        header: String,
    },
}

/// The runtime side of one granted capability. Implemented for each grant type of `are_policy::grants` whose
/// kind the runtime itself provides.
pub trait Provide {
    /// Add this capability's interfaces to `linker`, and return the WIT interface names (`ns:pkg/iface`, without
    /// version) now provided. Interfaces not returned here are linked to denials.
    ///
    /// # Errors
    /// When the linker rejects a definition (a bug, not a user error).
    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]>;

    /// Configure one instance from the grant.
    ///
    /// # Errors
    /// When the grant cannot be applied on this host, e.g. a mounted directory was removed.
    fn prepare(&self, _builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        Ok(())
    }
}

/// Links the agent capabilities into an agent's linker; the agent runtime (`are-agents`) implements it.
pub trait AgentLinker: Send + Sync {
    /// Link `kind` (one of the [agent-only](CapabilityKind::agent_only) kinds) as `grants` grants it, and return
    /// the interfaces now provided.
    ///
    /// # Errors
    /// When the linker rejects a definition (a bug).
    fn link(
        &self,
        kind: CapabilityKind,
        grants: &Grants,
        linker: &mut Linker<HostState>,
    ) -> wasmtime::Result<&'static [&'static str]>;
}

/// The [`AgentLinker`] a component is loaded with: it is an agent.
#[derive(Clone, Copy)]
pub struct AgentLinking(pub &'static dyn AgentLinker);

impl std::fmt::Debug for AgentLinking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentLinking")
    }
}

impl PartialEq for AgentLinking {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(self.0, other.0)
    }
}

/// Link every capability: the baseline, each grant, and for an agent (`agent` given) the agent capabilities.
/// Returns the interfaces (without version) now provided.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link(
    linker: &mut Linker<HostState>,
    grants: &Grants,
    agent: Option<AgentLinking>,
) -> wasmtime::Result<BTreeSet<&'static str>> {
    let mut provided = BTreeSet::new();
    for kind in CapabilityKind::ALL {
        provided.extend(link_kind(kind, linker, grants, agent)?);
    }
    Ok(provided)
}

/// Link one kind (see [`link`]); returns the interfaces it provides.
fn link_kind(
    kind: CapabilityKind,
    linker: &mut Linker<HostState>,
    grants: &Grants,
    agent: Option<AgentLinking>,
) -> wasmtime::Result<&'static [&'static str]> {
    use CapabilityKind as K;
    Ok(match kind {
        K::Fs => grants.fs.link(linker)?,
        K::Env => grants.env.link(linker)?,
        K::Http => grants.http.link(linker)?,
        K::Sockets => grants.sockets.link(linker)?,
        K::Secrets => grants.secrets.link(linker)?,
        K::Clocks => baseline::link_clocks(linker)?,
        K::Random => baseline::link_random(linker)?,
        K::Io => baseline::link_io(linker)?,
        K::Stdio => stdio::link(linker)?,
        K::Agent | K::Tools | K::Llm | K::Memory | K::Messaging => match agent {
            Some(AgentLinking(agent)) => agent.link(kind, grants, linker)?,
            None => &[],
        },
        K::Other => &[],
    })
}

/// Configure one instance from every grant, in [`CapabilityKind::ALL`] order.
///
/// # Errors
/// When a grant cannot be applied on this host (e.g. a mounted directory disappeared).
pub fn prepare(grants: &Grants, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
    use CapabilityKind as K;
    for kind in CapabilityKind::ALL {
        match kind {
            K::Fs => grants.fs.prepare(builder)?,
            K::Env => grants.env.prepare(builder)?,
            K::Http => grants.http.prepare(builder)?,
            K::Sockets => grants.sockets.prepare(builder)?,
            K::Secrets => grants.secrets.prepare(builder)?,
            // Nothing per instance: the baseline needs no grant, the agent capabilities reach the agent's own
            // state (see `HostState::extension_mut`), and nothing provides the rest.
            K::Clocks
            | K::Random
            | K::Io
            | K::Stdio
            | K::Agent
            | K::Tools
            | K::Llm
            | K::Memory
            | K::Messaging
            | K::Other => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use are_policy::{Provision, classify_import};

    #[test]
    fn every_interface_linked_belongs_to_the_kind_that_links_it() {
        let grants: Grants = toml::from_str(
            r#"
            fs = []
            http = ["http://127.0.0.1:1"]
            sockets = ["tcp://127.0.0.1:1"]
            env = { A = "1" }
            secrets = [{ host = "127.0.0.1:1", header = "Authorization", from_env = "T" }]
            "#,
        )
        .expect("grants");
        let engine = wasmtime::Engine::default();
        for kind in CapabilityKind::ALL {
            let mut linker = Linker::<HostState>::new(&engine);
            let provided = link_kind(kind, &mut linker, &grants, None).expect("links");
            let runtime_side = !kind.agent_only() && !matches!(kind, CapabilityKind::Other);
            let own_interfaces = kind.descriptor().extends.is_none();
            assert_eq!(
                !provided.is_empty(),
                runtime_side && own_interfaces,
                "{kind}: links interfaces exactly when the runtime provides it and it has interfaces of its own"
            );
            for interface in provided {
                assert_eq!(classify_import(interface), kind, "{interface}");
            }
            if kind.provision() == Provision::Baseline {
                assert!(!provided.is_empty(), "{kind} is linked without a grant");
            }
        }
    }
}
