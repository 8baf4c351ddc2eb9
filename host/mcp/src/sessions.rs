//! Session mode: one instance per MCP session and component, kept across that session's calls. An instance
//! is dropped when a call fails inside it, when its component is reloaded, when its session ends (over HTTP, the
//! client's `DELETE`; on stdio, the process ends with the session), and when it sits idle past the component's
//! `idle_timeout`; the next call then starts a fresh one.

use super::server::McpServer;
use are_runtime::catalog::ServedComponent;
use are_runtime::engine::AreEngine;
use are_runtime::invoke::{CallReport, ToolInstance};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Most session instances kept at once (fewer when the instance pool has fewer slots to spare, see
/// [`Sessions::set_limit`]); past this, a session's first call of a session-mode component fails with an error,
/// so that idle clients cannot pin unbounded memory.
pub const MAX_SESSION_INSTANCES: usize = 1024;

/// A session id and a component name.
type SlotKey = (String, String);

/// Live session instances, by (session, component).
pub struct Sessions {
    slots: Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>,
    limit: AtomicUsize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            slots: Mutex::default(),
            limit: AtomicUsize::new(MAX_SESSION_INSTANCES),
        }
    }
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
            let limit = self.limit.load(Ordering::Relaxed);
            if !slots.contains_key(&key) && slots.len() >= limit {
                let full = are_runtime::invoke::CallError::Instantiate(format!(
                    "too many session instances: all {limit} are taken by other sessions (the instance pool \
                     keeps the rest of its slots for fresh-instance calls; raise [serve] max_instances for more); \
                     retry when a session ends or sits idle past its idle_timeout"
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

    /// Keep at most `limit` session instances (and never more than [`MAX_SESSION_INSTANCES`]). Existing ones
    /// stay; new ones are refused while there are too many.
    pub fn set_limit(&self, limit: usize) {
        self.limit
            .store(limit.min(MAX_SESSION_INSTANCES), Ordering::Relaxed);
    }

    /// Drop every instance of `session` (its MCP session ended). A call still running in one finishes first.
    pub fn end(&self, session: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _), _| id != session);
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
