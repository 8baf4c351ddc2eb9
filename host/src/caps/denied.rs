//! Denials for everything a component imports that no grant provides.
//!
//! Each such function is linked to one that fails with [`CapabilityNotGranted`], and each resource type to an
//! inert host type, so the component instantiates and only the call that reaches past its grant fails, with a
//! message naming the import and the policy key that would grant it.

use crate::describe::{Capability as ImportKind, classify_import};
use crate::sandbox::HostState;
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
        match self.reason {
            DenialReason::NotGranted(Some(key)) => write!(
                f,
                "capability not granted: {} (grant it with `{key}` in the component's policy)",
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

/// The policy key that grants imports of this kind, if there is one.
pub fn policy_key(kind: ImportKind) -> Option<&'static str> {
    match kind {
        ImportKind::Filesystem => Some("allow.fs"),
        ImportKind::Environment => Some("allow.env"),
        ImportKind::Http => Some("allow.http"),
        ImportKind::Sockets => Some("allow.sockets"),
        ImportKind::Clocks | ImportKind::Random | ImportKind::Stdio | ImportKind::Other => None,
    }
}

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
                    DenialReason::NotGranted(policy_key(classify_import(name)))
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
            inst.func_new_async(name, move |_store, _ty, _params, _results| {
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
