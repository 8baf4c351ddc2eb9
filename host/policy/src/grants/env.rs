//! `allow.env`: the environment variables a guest sees, given as explicit key/value pairs.
//!
//! The host's own environment is never inherited, and there is no pattern syntax: a variable exists in the guest
//! only when the policy spells out its value.
//!
//! ```toml
//! allow.env = { API_BASE = "https://api.example.com", LOG = "info" }
//! ```

use super::Grant;
use crate::capability::CapabilityKind;
use crate::{PolicyError, SourceText};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// Environment variables granted to a component: name = value. A name is not empty and has no `=` (or NUL).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(extend("propertyNames" = { "minLength": 1, "pattern": r"^[^=\u0000]*$" }))]
pub struct EnvGrant(
    #[schemars(with = "BTreeMap<String, String>")] pub BTreeMap<Spanned<String>, String>,
);

impl Grant for EnvGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Env
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
}
