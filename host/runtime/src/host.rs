//! One host assembly: the engine, the compile cache and how sources are fetched, shared by every front end (the
//! CLI, the MCP server, the agent runtime), which load components and open audit trails only through it.

use crate::audit::{AuditError, AuditLog, AuditSink};
use crate::cache::CompileCache;
use crate::catalog::{ServedComponent, served_settings};
use crate::component::{self, ComponentSpec, LoadError, LoadedComponent};
use crate::engine::AreEngine;
use are_policy::Policy;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The engine, cache and source settings components are loaded with.
#[derive(Clone)]
pub struct Host {
    engine: AreEngine,
    cache: CompileCache,
    allow_unpinned: bool,
}

/// A component of a policy that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load component `{name}`: {error}")]
pub struct ComponentLoadError {
    /// The component's name in the policy.
    pub name: String,
    /// Why.
    #[source]
    pub error: LoadError,
}

impl Host {
    /// A host on `engine`, compiling through `cache`; remote sources must be pinned.
    pub fn new(engine: AreEngine, cache: CompileCache) -> Host {
        Host {
            engine,
            cache,
            allow_unpinned: false,
        }
    }

    /// Accept remote sources without a pin (`--allow-unpinned`).
    #[must_use]
    pub fn allow_unpinned(mut self, allow: bool) -> Host {
        self.allow_unpinned = allow;
        self
    }

    /// The engine calls run on.
    pub fn engine(&self) -> &AreEngine {
        &self.engine
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Whether remote sources without a pin are accepted.
    pub fn allows_unpinned(&self) -> bool {
        self.allow_unpinned
    }

    /// Load `spec` through the cache, with this host's source settings.
    ///
    /// # Errors
    /// Any [`LoadError`].
    pub fn load(&self, mut spec: ComponentSpec) -> Result<LoadedComponent, LoadError> {
        spec.allow_unpinned |= self.allow_unpinned;
        component::load(&self.engine, Some(&self.cache), spec)
    }

    /// The audit trail of `policy` (`[audit]`), recording calls as made by `caller` (`cli`, `mcp`, `agent`); `None`
    /// when the policy keeps none.
    ///
    /// # Errors
    /// [`AuditError`] when the log cannot be opened or verified.
    pub fn audit_sink(
        &self,
        policy: &Policy,
        caller: &str,
    ) -> Result<Option<AuditSink>, AuditError> {
        Ok(AuditLog::for_policy(policy)?.map(|log| AuditSink {
            log,
            caller: caller.into(),
        }))
    }

    /// Load every tool component of `policy` (`[component.NAME]`), recording into `audit`, as served components of
    /// `generation`.
    ///
    /// # Errors
    /// The first component that cannot be loaded.
    pub fn load_components(
        &self,
        policy: &Policy,
        audit: Option<&AuditSink>,
        generation: u64,
    ) -> Result<BTreeMap<String, Arc<ServedComponent>>, ComponentLoadError> {
        let mut components = BTreeMap::new();
        for (name, c) in &policy.components {
            let Some((mut spec, settings)) = served_settings(policy, name, c) else {
                continue;
            };
            spec.audit = audit.cloned();
            let loaded = self.load(spec).map_err(|error| ComponentLoadError {
                name: name.clone(),
                error,
            })?;
            components.insert(
                name.clone(),
                Arc::new(ServedComponent::new(loaded, settings, generation)),
            );
        }
        Ok(components)
    }
}
