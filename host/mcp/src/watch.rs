//! `--watch`: reload changed components and policy while serving.
//!
//! Polls the modification times of the policy file and every component source twice a second. On a change it
//! builds a new catalog: components whose file and policy entry are unchanged are kept as they are, changed ones
//! are loaded again, and one that fails to load keeps serving its previous version (the error is logged), as does
//! one whose `limits.memory` outgrew the instance slots the pooling allocator reserved at start. A policy file
//! that no longer parses leaves everything as it was. Clients get `notifications/tools/list_changed`.

use super::server::McpServer;
use are_policy::Policy;
use are_runtime::catalog::{Catalog, ToolDefinition, served_settings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// How often files are checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Watch the files of `server` until it is dropped.
pub fn spawn(server: Arc<McpServer>) {
    server.set_watching();
    let weak = Arc::downgrade(&server);
    drop(server);
    tokio::spawn(watch(weak));
}

async fn watch(server: Weak<McpServer>) {
    let mut last = match server.upgrade() {
        Some(s) => fingerprint(&s),
        None => return,
    };
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tick.tick().await;
        let Some(server) = server.upgrade() else {
            return;
        };
        let now = fingerprint(&server);
        if now != last {
            last = now;
            if reload(&server) {
                server.notify_tools_changed().await;
            }
        }
    }
}

/// Modification times of the policy and every served component's source.
fn fingerprint(server: &McpServer) -> BTreeMap<PathBuf, Option<SystemTime>> {
    let mut files = BTreeMap::new();
    let policy = server.policy_path();
    files.insert(policy.to_path_buf(), mtime(policy));
    if let Ok(p) = Policy::load(policy) {
        for c in p.components.values() {
            let source = p.source_path(c);
            let time = mtime(&source);
            files.insert(source, time);
        }
    }
    files
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Build and install a new catalog. Returns whether the tools changed.
pub fn reload(server: &McpServer) -> bool {
    let policy = match Policy::load(server.policy_path()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(
                "policy changed but is not valid, still serving the previous version: {e}"
            );
            return false;
        }
    };
    let current = server.catalog();
    let mut components = BTreeMap::new();
    for (name, c) in &policy.components {
        let Some((spec, settings)) = served_settings(&policy, name, c) else {
            continue;
        };
        let old = current.components.get(name);
        // Unchanged: the same spec and settings, and the same bytes on disk.
        let unchanged = old.is_some_and(|old| {
            old.loaded.spec
                == are_runtime::component::ComponentSpec {
                    audit: old.loaded.spec.audit.clone(),
                    ..spec.clone()
                }
                && old.settings == settings
                && are_runtime::component::read_component(
                    &spec.path,
                    spec.limits.max_component_size,
                )
                .is_ok_and(|bytes| {
                    are_policy::common::hex(&are_policy::common::sha256(&bytes))
                        == old.loaded.sha256
                })
        });
        if unchanged {
            if let Some(old) = old {
                components.insert(name.clone(), old.clone());
            }
            continue;
        }
        // The pooling allocator's slots were sized at start for the largest memory limit then: a larger one
        // cannot be honoured without a restart.
        if let Some(pool) = server.engine().config().pooling
            && spec.limits.memory > pool.max_memory
        {
            tracing::error!(
                component = %name,
                "cannot reload, still serving the previous version: its limits.memory of {} is more than the {} \
                 every instance slot was sized for when `are serve` started; restart it to apply",
                are_policy::common::fmt_bytes(spec.limits.memory),
                are_policy::common::fmt_bytes(pool.max_memory),
            );
            if let Some(old) = old {
                components.insert(name.clone(), old.clone());
            }
            continue;
        }
        match server.load_component(spec, settings) {
            Ok(served) => {
                tracing::info!(component = %name, "reloaded");
                components.insert(name.clone(), served);
            }
            Err(e) => {
                tracing::error!(component = %name, "cannot reload, still serving the previous version: {e}");
                if let Some(old) = old {
                    components.insert(name.clone(), old.clone());
                }
            }
        }
    }
    let catalog = Catalog::new(components);
    let definitions =
        |c: &Catalog| -> Vec<ToolDefinition> { c.tools().iter().map(|t| t.tool.clone()).collect() };
    let tools_changed = definitions(&current) != definitions(&catalog);
    let generations_changed = catalog.components.iter().any(|(name, c)| {
        current
            .components
            .get(name)
            .is_none_or(|old| old.generation != c.generation)
    }) || catalog.components.len() != current.components.len();
    server.install(catalog);
    tools_changed || generations_changed
}
