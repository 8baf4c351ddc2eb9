//! Denials for everything a component imports that no grant provides.
//!
//! Each such function is linked to one that fails with [`CapabilityNotGranted`], and each resource type to an
//! inert host type, so the component instantiates and only the call that reaches past its grant fails, with a
//! message naming the import and the policy key that would grant it.

use crate::sandbox::HostState;
use are_policy::classify_import;
use std::collections::BTreeSet;
use std::fmt;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

/// The error a guest gets when it calls an import its policy does not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityNotGranted {
    /// The import, as `interface#function` (or just `function` at the top level).
    pub import: String,
    /// Why it is not available.
    pub reason: DenialReason,
}

/// Why an import is linked to a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    /// The policy grants nothing that provides it; the payload is the policy key that would.
    NotGranted(Option<&'static str>),
    /// This runtime has no implementation for it (e.g. a WASI version it does not support).
    Unsupported,
}

impl fmt::Display for CapabilityNotGranted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interface = self
            .import
            .split_once('#')
            .map_or(&*self.import, |(i, _)| i);
        let agent_only = classify_import(interface).agent_only();
        match self.reason {
            DenialReason::NotGranted(Some(key)) if agent_only => write!(
                f,
                "capability not granted: {} (grant it with `{key}` in the agent's [agent.TYPE] table; only agents \
                 can have it)",
                self.import
            ),
            DenialReason::NotGranted(Some(key)) => write!(
                f,
                "capability not granted: {} (grant it with `{key}` in the component's policy)",
                self.import
            ),
            DenialReason::NotGranted(None) if agent_only => write!(
                f,
                "capability not granted: {} (only agents have it: run this component as an [agent.TYPE])",
                self.import
            ),
            DenialReason::NotGranted(None) => write!(
                f,
                "capability not granted: {} (no policy key provides this import)",
                self.import
            ),
            DenialReason::Unsupported => {
                write!(
                    f,
                    "capability not granted: {} (this runtime does not provide it)",
                    self.import
                )
            }
        }
    }
}

impl std::error::Error for CapabilityNotGranted {}

/// Inert stand-in for resource types of interfaces that are not granted.
struct DeniedResource;

/// Link every import of `component` whose interface is not in `provided` to a denial.
///
/// `provided` holds interface names without version (`wasi:http/types`); only the 0.2 line of each is treated
/// as provided, anything else is reported as unsupported.
///
/// # Errors
/// When the component imports whole modules or components (which no tool needs), or the linker rejects a
/// definition.
pub fn link(
    linker: &mut Linker<HostState>,
    engine: &Engine,
    component: &Component,
    provided: &BTreeSet<&str>,
) -> wasmtime::Result<()> {
    // Resource types seen in earlier imports. A later interface that `use`s one of them (as `wasi:http/types`
    // uses `wasi:io/poll.pollable`) must not redefine it: wasmtime binds it to the first definition.
    let mut seen: Vec<ResourceType> = Vec::new();
    for (name, import) in component.component_type().imports(engine) {
        match import.ty {
            ComponentItem::ComponentInstance(instance) => {
                let (unversioned, version) = name.split_once('@').unwrap_or((name, ""));
                let wasi_02 = !unversioned.starts_with("wasi:") || version.starts_with("0.2.");
                if provided.contains(unversioned) && wasi_02 {
                    seen.extend(instance.exports(engine).filter_map(|(_, e)| match e.ty {
                        ComponentItem::Resource(r) => Some(r),
                        _ => None,
                    }));
                    continue;
                }
                let reason = if provided.contains(unversioned) {
                    DenialReason::Unsupported
                } else {
                    DenialReason::NotGranted(classify_import(name).policy_key())
                };
                let mut inst = linker.instance(name)?;
                for (export, item) in instance.exports(engine) {
                    if let ComponentItem::Resource(r) = &item.ty {
                        if seen.contains(r) {
                            continue;
                        }
                        seen.push(*r);
                    }
                    deny_item(
                        &mut inst,
                        &format!("{name}#{export}"),
                        export,
                        &item.ty,
                        reason,
                    )?;
                }
            }
            item => {
                let mut root = linker.root();
                deny_item(&mut root, name, name, &item, DenialReason::NotGranted(None))?;
            }
        }
    }
    Ok(())
}

fn deny_item(
    inst: &mut LinkerInstance<'_, HostState>,
    full_name: &str,
    name: &str,
    item: &ComponentItem,
    reason: DenialReason,
) -> wasmtime::Result<()> {
    match item {
        ComponentItem::ComponentFunc(_) => {
            let denial = CapabilityNotGranted {
                import: full_name.to_string(),
                reason,
            };
            inst.func_new_async(name, move |store, _ty, _params, _results| {
                if let Some(audit) = &store.data().audit {
                    audit.record(
                        "capability.denied",
                        "denied",
                        serde_json::json!({ "import": denial.import }),
                    );
                }
                let denial = denial.clone();
                Box::new(async move { Err(wasmtime::Error::new(denial)) })
            })
        }
        ComponentItem::Resource(_) => {
            inst.resource(name, ResourceType::host::<DeniedResource>(), |_, _| Ok(()))
        }
        ComponentItem::Type(_) => Ok(()),
        ComponentItem::CoreFunc(_)
        | ComponentItem::Module(_)
        | ComponentItem::Component(_)
        | ComponentItem::ComponentInstance(_) => Err(wasmtime::format_err!(
            "component imports `{full_name}`, a nested module, component or instance; only functions, \
             interfaces and resources can be imported"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_say_how_to_grant() {
        let denial = |import: &str| CapabilityNotGranted {
            import: import.into(),
            reason: DenialReason::NotGranted(
                classify_import(import.split_once('#').map_or(import, |(i, _)| i)).policy_key(),
            ),
        };
        assert!(
            denial("wasi:http/outgoing-handler@0.2.6#handle")
                .to_string()
                .ends_with("(grant it with `allow.http` in the component's policy)")
        );
        let tools = denial("are:agent/tools@0.1.0#call").to_string();
        assert!(
            tools.contains("`allow.tools` in the agent's [agent.TYPE] table"),
            "{tools}"
        );
        let identity = denial("are:agent/identity@0.1.0#self-id").to_string();
        assert!(identity.contains("only agents have it"), "{identity}");
        assert!(
            denial("example:kv/store@1.0.0#get")
                .to_string()
                .contains("no policy key provides this import")
        );
    }
}
