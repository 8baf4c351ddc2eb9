//! `allow.env`: the environment variables a guest sees, given as explicit key/value pairs.
//!
//! The host's own environment is never inherited, and there is no pattern syntax: a variable exists in the guest
//! only when the policy spells out its value.
//!
//! ```toml
//! allow.env = { API_BASE = "https://api.example.com", LOG = "info" }
//! ```

use super::Capability;
use crate::policy::{PolicyError, SourceText};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::p2::bindings::cli;

/// Environment variables granted to a component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct EnvGrant(pub BTreeMap<Spanned<String>, String>);

impl Capability for EnvGrant {
    fn name(&self) -> &'static str {
        "env"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        // Names only: values may be secrets.
        self.0.keys().map(|k| k.get_ref().clone()).collect()
    }

    fn validate(&self, _base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        for key in self.0.keys() {
            let k = key.get_ref();
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(source.error(
                    key.span(),
                    format!("invalid environment variable name {k:?}: must be non-empty, without `=` or NUL"),
                ));
            }
        }
        Ok(())
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Always linked: without a grant the environment is empty, and arguments come from the policy.
        cli::environment::add_to_linker::<HostState, WasiCli>(linker, |s| {
            wasmtime_wasi::cli::WasiCliView::cli(s)
        })?;
        Ok(&["wasi:cli/environment"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        for (key, value) in &self.0 {
            builder.wasi.env(key.get_ref(), value);
        }
        Ok(())
    }
}
