//! Session mode: one instance per MCP session and component, kept across that session's calls. An instance
//! is dropped when a call fails inside it, when its component is reloaded, and when it sits idle past the
//! component's `idle_timeout`; the next call then starts a fresh one.

use super::catalog::ServedComponent;
use super::server::McpServer;
use crate::engine::AreEngine;
use crate::invoke::{CallReport, ToolInstance};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Most session instances kept at once; past this, new sessions get fresh-instance semantics refused with an
/// error, so that idle clients cannot pin unbounded memory.
pub const MAX_SESSION_INSTANCES: usize = 1024;

/// A session id and a component name.
type SlotKey = (String, String);

/// Live session instances, by (session, component).
#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

struct Slot {
    instance: Option<ToolInstance>,
    generation: u64,
    last_used: Instant,
    idle_timeout: Duration,
}

impl Sessions {
    /// Call `function` on the instance of `session` for `component`, creating it when needed.
    pub async fn call(
        &self,
        engine: &AreEngine,
        component: &Arc<ServedComponent>,
        function: &str,
        args: &serde_json::Value,
        session: &str,
    ) -> CallReport {
        let loaded = &component.loaded;
        let limits = loaded.spec.limits;
        let key = (session.to_string(), loaded.spec.name.clone());
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if !slots.contains_key(&key) && slots.len() >= MAX_SESSION_INSTANCES {
                let full = crate::invoke::CallError::Instantiate(format!(
                    "too many session instances ({MAX_SESSION_INSTANCES}); retry when idle sessions expire"
                ));
                return CallReport::failed(full, &limits);
            }
            slots
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(Slot {
                        instance: None,
                        generation: component.generation,
                        last_used: Instant::now(),
                        idle_timeout: component.settings.idle_timeout,
                    }))
                })
                .clone()
        };
        let mut slot = slot.lock().await;
        let stale = slot.generation != component.generation
            || slot.instance.as_ref().is_some_and(ToolInstance::is_dead);
        if stale {
            slot.instance = None;
            slot.generation = component.generation;
            slot.idle_timeout = component.settings.idle_timeout;
        }
        if slot.instance.is_none() {
            match loaded.instantiate(engine, &limits).await {
                Ok(instance) => slot.instance = Some(instance),
                Err(e) => return CallReport::failed(e, &limits),
            }
        }
        let report = match slot.instance.as_mut() {
            Some(instance) => instance.call(loaded, engine, function, args, &limits).await,
            None => unreachable!("an instance was just created"),
        };
        if slot.instance.as_ref().is_some_and(ToolInstance::is_dead) {
            slot.instance = None;
        }
        slot.last_used = Instant::now();
        report
    }

    /// How many session instances exist.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop instances idle past their timeout (skipping any in use).
    pub fn reap(&self) {
        let now = Instant::now();
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, slot| match slot.try_lock() {
                Ok(s) => now.duration_since(s.last_used) < s.idle_timeout,
                Err(_) => true,
            });
    }

    /// Reap idle instances every second for as long as `server` lives.
    pub fn start_reaper(&self, server: &Arc<McpServer>) {
        let server: Weak<McpServer> = Arc::downgrade(server);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match server.upgrade() {
                    Some(server) => server.sessions().reap(),
                    None => return,
                }
            }
        });
    }
}
