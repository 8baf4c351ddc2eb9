//! `allow.env`: the environment variables a guest sees, given as explicit key/value pairs.
//!
//! The host's own environment is never inherited, and there is no pattern syntax: a variable exists in the guest
//! only when the policy spells out its value.
//!
//! ```toml
//! allow.env = { API_BASE = "https://api.example.com", LOG = "info" }
//! ```
//!
//! With an audit trail, each time the guest reads its environment an `env.read` event records the names of the
//! variables it got, never their values (see [`crate::audit`]).

use super::{PrepareError, Provide};
use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::grants::env::EnvGrant;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::p2::bindings::cli::environment::Host as _;

/// The version of `wasi:cli/environment` defined here; 0.2.x imports resolve to it.
const ENVIRONMENT: &str = "wasi:cli/environment@0.2.12";

impl Provide for EnvGrant {
    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Always linked: without a grant the environment is empty, and arguments come from the policy. Defined
        // here rather than by wasmtime-wasi's `add_to_linker` so that reads can be audited.
        let mut inst = linker.instance(ENVIRONMENT)?;
        inst.func_wrap("get-environment", |mut store, (): ()| {
            let state = store.data_mut();
            let vars = state.cli().get_environment()?;
            if let Some(audit) = &state.audit {
                let names: Vec<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
                audit.record("env.read", "ok", serde_json::json!({ "names": names }));
            }
            Ok((vars,))
        })?;
        inst.func_wrap("get-arguments", |mut store, (): ()| {
            Ok((store.data_mut().cli().get_arguments()?,))
        })?;
        inst.func_wrap("initial-cwd", |mut store, (): ()| {
            Ok((store.data_mut().cli().initial_cwd()?,))
        })?;
        Ok(&["wasi:cli/environment"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        for (key, value) in &self.0 {
            builder.wasi.env(key.get_ref(), value);
        }
        Ok(())
    }
}
