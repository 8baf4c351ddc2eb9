//! The agent runtime: agent types, mailboxes, activation and idle deactivation, message delivery with
//! persistence, and the context each agent instance reaches the host through.

use super::AgentId;
use super::bindings::are::agent::{llm as wit_llm, messaging::Error as SendError};
use super::llm::{ChatMessage, LlmClient, Role, ToolCall, ToolDefinition};
use super::store::{AgentStore, Message, OverQuota, Refusal, SqliteStore, Status, StoreError};
use are_policy::Grants;
use are_policy::{Policy, Timeout};
use are_runtime::catalog::{Catalog, ServedTool, ToolFailure};
use are_runtime::component::{ComponentSpec, LoadError, LoadedComponent};
use are_runtime::engine::AreEngine;
use are_runtime::host::Host;
use are_runtime::invoke::{CallError, InstanceExtension, ToolInstance};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// How a message ended: the handler's reply (none for no reply), or why it failed.
pub type Outcome = Result<Option<String>, String>;

/// Why the runtime could not start or accept a message.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An agent or tool component could not be loaded.
    #[error("{kind} `{name}`: {error}")]
    Load {
        /// `agent type` or `tool component`.
        kind: &'static str,
        /// Its name in the policy.
        name: String,
        /// Why.
        error: LoadError,
    },
    /// An agent component does not export `are:agent/handler`.
    #[error(
        "agent type `{0}` does not export `are:agent/handler` (`on-message`); build it with the agent world of the guest SDK"
    )]
    NotAnAgent(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message for an id that is not valid or a type that is not configured.
    #[error("{0}")]
    UnknownTarget(String),
    /// The `[llm]` section cannot be used.
    #[error("[llm]: {0}")]
    Llm(crate::llm::LlmError),
    /// The `[audit]` log cannot be opened.
    #[error("{0}")]
    Audit(String),
    /// A payload over `[agents] max_payload`.
    #[error("{0}")]
    TooLarge(String),
    /// The recipient's agent type has no room left in the store (`[agent.TYPE] store_quota`).
    #[error("{0}")]
    QuotaExceeded(String),
}

/// One configured agent type.
pub struct AgentType {
    /// Its component, linked with the agent interfaces its grants provide.
    pub component: LoadedComponent,
    idle_timeout: Duration,
    message_budget: u32,
    /// Bytes its agents may hold in the store (`store_quota`).
    store_quota: u64,
    has_lifecycle: bool,
}

struct Settings {
    hop_limit: u32,
    reply_timeout: Duration,
    /// Largest payload or reply, in bytes (`[agents] max_payload`).
    max_payload: u64,
}

/// Why a message could not be delivered.
enum Undelivered {
    /// The store failed.
    Store(StoreError),
    /// The recipient's type has no room for it.
    OverQuota(OverQuota),
}

/// The default `[agents] max_payload`: 1 MiB.
const DEFAULT_MAX_PAYLOAD: u64 = 1 << 20;
/// The default `[agent.TYPE] store_quota`: 64 MiB.
const DEFAULT_STORE_QUOTA: u64 = 64 << 20;
/// Longest error a failed message keeps (a handler's error is cut there).
const MAX_ERROR: usize = 4096;

/// Everything the agents of one runtime share.
pub struct Runtime {
    engine: AreEngine,
    types: BTreeMap<String, Arc<AgentType>>,
    tools: Catalog,
    store: Box<dyn AgentStore>,
    llm: LlmClient,
    settings: Settings,
    /// Subscribed agent types by topic.
    subscribers: BTreeMap<String, Vec<String>>,
    mailboxes: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<Outcome>>>>,
    /// Messages accepted and not yet finished.
    outstanding: AtomicUsize,
    idle: Notify,
    next_id: AtomicU64,
}

/// A running set of agents.
#[derive(Clone)]
pub struct AgentRuntime {
    inner: Arc<Runtime>,
}

impl AgentRuntime {
    /// Load every agent type and tool component of `policy` and open its store.
    ///
    /// # Errors
    /// [`AgentError`] naming the component or store that failed.
    pub fn start(policy: &Policy, host: &Host) -> Result<AgentRuntime, AgentError> {
        let audit = host
            .audit_sink(policy, "agent")
            .map_err(|e| AgentError::Audit(e.to_string()))?;
        let components = host
            .load_components(policy, audit.as_ref(), 0)
            .map_err(|e| AgentError::Load {
                kind: "tool component",
                name: e.name,
                error: e.error,
            })?;
        let mut types = BTreeMap::new();
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, a) in &policy.agents {
            let mut limits = policy.defaults.overlay(a.limits);
            // Handling a message may wait on other agents, tools and a model: a longer default than tools.
            limits.timeout = limits.timeout.or(Some(Timeout(Duration::from_secs(60))));
            let spec = ComponentSpec {
                name: name.clone(),
                path: policy.resolve_source(a.source.get_ref()),
                sha256: a.sha256.clone(),
                args: a.args.clone(),
                grants: a.allow.clone(),
                limits: limits.resolve(),
                base_dir: policy.base_dir.clone(),
                wit_dir: None,
                agent: Some(crate::caps::AGENT_LINKING),
                allow_unpinned: false,
                audit: audit.clone(),
            };
            let component = host.load(spec).map_err(|error| AgentError::Load {
                kind: "agent type",
                name: name.clone(),
                error,
            })?;
            if component.description.find("handler.on-message").is_err() {
                return Err(AgentError::NotAnAgent(name.clone()));
            }
            let has_lifecycle = component.description.find("lifecycle.activate").is_ok();
            for topic in &a.allow.messaging.subscribe {
                subscribers
                    .entry(topic.clone())
                    .or_default()
                    .push(name.clone());
            }
            types.insert(
                name.clone(),
                Arc::new(AgentType {
                    component,
                    idle_timeout: a.idle_timeout.map_or(Duration::from_secs(30), |t| t.0),
                    message_budget: a.message_budget.unwrap_or(1000),
                    store_quota: a.store_quota.map_or(DEFAULT_STORE_QUOTA, |q| q.0),
                    has_lifecycle,
                }),
            );
        }
        let rt = &policy.agent_runtime;
        let store = SqliteStore::open(
            &store_path(policy),
            rt.sync == Some(are_policy::SyncMode::Full),
        )?;
        let llm = LlmClient::from_config(&policy.llm).map_err(AgentError::Llm)?;
        let inner = Runtime {
            engine: host.engine().clone(),
            types,
            tools: Catalog::new(components),
            store: Box::new(store),
            llm,
            settings: Settings {
                hop_limit: rt.hop_limit.unwrap_or(8),
                reply_timeout: rt.reply_timeout.map_or(Duration::from_secs(30), |t| t.0),
                max_payload: rt.max_payload.map_or(DEFAULT_MAX_PAYLOAD, |s| s.0),
            },
            subscribers,
            mailboxes: Mutex::default(),
            waiters: Mutex::default(),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            next_id: AtomicU64::new(0),
        };
        Ok(AgentRuntime {
            inner: Arc::new(inner),
        })
    }

    /// The store path's messages, memory and agents.
    pub fn store(&self) -> &dyn AgentStore {
        self.inner.store.as_ref()
    }

    /// The model agents talk to.
    pub fn llm(&self) -> &LlmClient {
        &self.inner.llm
    }

    /// The configured agent types.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.inner.types.keys().map(String::as_str)
    }

    /// Deliver again every message a previous run accepted but did not finish. Returns how many.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn resume(&self) -> Result<usize, AgentError> {
        let pending = self.inner.store.pending()?;
        let count = pending.len();
        for message in pending {
            self.inner.enqueue(message);
        }
        Ok(count)
    }

    /// Send `payload` to agent `to` from outside. The receiver gets the reply when the message is handled.
    ///
    /// # Errors
    /// An invalid or unknown target, a payload over `[agents] max_payload`, a recipient type without room in
    /// the store, or a store failure.
    pub fn send(
        &self,
        to: &str,
        payload: &str,
    ) -> Result<(String, oneshot::Receiver<Outcome>), AgentError> {
        let id = AgentId::parse(to).map_err(|e| AgentError::UnknownTarget(e.to_string()))?;
        if !self.inner.types.contains_key(&id.agent_type) {
            return Err(AgentError::UnknownTarget(format!(
                "no agent type `{}` in the policy (configured: {})",
                id.agent_type,
                self.inner
                    .types
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.inner
            .check_payload("the payload", payload.len())
            .map_err(AgentError::TooLarge)?;
        let message = Message {
            id: self.inner.fresh_id("ext"),
            recipient: id.to_string(),
            sender: "external".into(),
            topic: None,
            hops: 0,
            chain: Vec::new(),
            payload: payload.to_string(),
            wants_reply: true,
        };
        let message_id = message.id.clone();
        let reply = self.inner.deliver(message, true).map_err(|e| match e {
            Undelivered::Store(e) => AgentError::Store(e),
            Undelivered::OverQuota(over) => {
                AgentError::QuotaExceeded(over_quota_message(to, &id.agent_type, over))
            }
        })?;
        Ok((message_id, reply.unwrap_or_else(|| oneshot::channel().1)))
    }

    /// Wait until no message is outstanding.
    pub async fn until_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Messages accepted and not finished.
    pub fn outstanding(&self) -> usize {
        self.inner.outstanding.load(Ordering::Acquire)
    }

    /// Agents with an instance running now.
    pub fn active(&self) -> usize {
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl Runtime {
    fn fresh_id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{prefix}-{ms:x}-{:x}-{n}", std::process::id())
    }

    /// Refuse a payload or reply (`what`) of `len` bytes over `[agents] max_payload`.
    fn check_payload(&self, what: &str, len: usize) -> Result<(), String> {
        let max = self.settings.max_payload;
        if len as u64 <= max {
            return Ok(());
        }
        Err(format!(
            "{what} is {} ({len} bytes), over the limit of {} ([agents] max_payload); send less, or split it",
            are_policy::common::fmt_bytes(len as u64),
            are_policy::common::fmt_bytes(max)
        ))
    }

    /// The store quota of the type of agent `agent` (unlimited for a type the policy no longer has).
    fn store_quota(&self, agent: &str) -> u64 {
        AgentId::parse(agent)
            .ok()
            .and_then(|id| self.types.get(&id.agent_type))
            .map_or(u64::MAX, |t| t.store_quota)
    }

    /// Accept `message` (persisting it first, within its recipient type's store quota) and queue it for its
    /// recipient. With `wait`, returns a receiver for its outcome, resolved at once when the message was already
    /// finished (a repeated send).
    fn deliver(
        self: &Arc<Self>,
        message: Message,
        wait: bool,
    ) -> Result<Option<oneshot::Receiver<Outcome>>, Undelivered> {
        let receiver = wait.then(|| {
            let (tx, rx) = oneshot::channel();
            self.waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(message.id.clone())
                .or_default()
                .push(tx);
            rx
        });
        let id = message.id.clone();
        let quota = self.store_quota(&message.recipient);
        let accepted = match self.store.accept(&message, quota) {
            Ok(Ok(accepted)) => Ok(accepted),
            Ok(Err(over)) => Err(Undelivered::OverQuota(over)),
            Err(e) => Err(Undelivered::Store(e)),
        };
        match accepted {
            Err(e) => {
                self.waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                return Err(e);
            }
            Ok(None) => self.enqueue(message),
            Ok(Some(stored)) => match stored.status {
                // Accepted before and queued then (now, or by `resume` after a restart): wait for it.
                Status::Pending => {}
                Status::Done => self.resolve(&id, Ok(stored.reply)),
                Status::Failed => self.resolve(&id, Err(stored.reply.unwrap_or_default())),
            },
        }
        Ok(receiver)
    }

    /// Put an accepted message in its recipient's mailbox, activating the recipient if needed.
    fn enqueue(self: &Arc<Self>, message: Message) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let mut mailboxes = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        let recipient = message.recipient.clone();
        let message = match mailboxes.get(&recipient) {
            Some(tx) => match tx.send(message) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => message,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(message);
        mailboxes.insert(recipient.clone(), tx);
        drop(mailboxes);
        let runtime = self.clone();
        tokio::spawn(async move { runtime.run_agent(recipient, rx).await });
    }

    fn resolve(&self, id: &str, outcome: Outcome) {
        let waiters = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(outcome.clone());
        }
    }

    /// Record how `message` ended and tell whoever waits.
    fn finished(&self, message: &Message, outcome: Outcome) {
        self.end(message, outcome, None);
    }

    /// Record how `message` ended (`refusal` when the runtime failed it) and tell whoever waits. A reply over
    /// `[agents] max_payload`, or one its recipient type has no room for, fails the message instead (with a
    /// [`Refusal`]), and is not stored.
    fn end(&self, message: &Message, outcome: Outcome, refusal: Option<Refusal>) {
        let quota = self.store_quota(&message.recipient);
        let refused = |refusal: Refusal, error: String| {
            tracing::warn!(message = %message.id, agent = %message.recipient, "{error}");
            (Err(error), Some(refusal))
        };
        let (mut outcome, mut refusal) = match outcome {
            Ok(Some(reply)) => match self.check_payload("the reply", reply.len()) {
                Ok(()) => (Ok(Some(reply)), None),
                Err(e) => refused(Refusal::TooLarge, e),
            },
            Ok(None) => (Ok(None), None),
            Err(e) => (Err(are_runtime::audit::truncate(e, MAX_ERROR)), refusal),
        };
        if let Ok(reply) = &outcome {
            match self.store.finish(
                &message.id,
                &message.recipient,
                Status::Done,
                reply.as_deref(),
                None,
                quota,
            ) {
                Ok(Ok(())) => {}
                Ok(Err(over)) => {
                    let e =
                        over_quota_message(&message.recipient, type_of(&message.recipient), over);
                    (outcome, refusal) = refused(Refusal::QuotaExceeded, format!("the reply: {e}"));
                }
                Err(e) => {
                    tracing::error!(message = %message.id, "cannot record the end of a message: {e}");
                }
            }
        }
        if let Err(error) = &outcome
            && let Err(e) = self.store.finish(
                &message.id,
                &message.recipient,
                Status::Failed,
                Some(error),
                refusal,
                quota,
            )
        {
            tracing::error!(message = %message.id, "cannot record the end of a message: {e}");
        }
        self.resolve(&message.id, outcome);
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// One agent: handle its messages one at a time, keeping its instance while messages come, and deactivate
    /// it after its idle timeout.
    async fn run_agent(self: Arc<Self>, id: String, mut mailbox: mpsc::UnboundedReceiver<Message>) {
        let agent_type = AgentId::parse(&id)
            .ok()
            .and_then(|aid| self.types.get(&aid.agent_type).cloned());
        let Some(agent_type) = agent_type else {
            // Only reachable for messages stored by a run with another policy.
            while let Ok(message) = mailbox.try_recv() {
                self.finished(
                    &message,
                    Err(format!("no agent type for `{id}` in the policy")),
                );
            }
            self.mailboxes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return;
        };
        let mut instance: Option<ToolInstance> = None;
        let mut emitted = 0u32;
        loop {
            let message = match tokio::time::timeout(agent_type.idle_timeout, mailbox.recv()).await
            {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => {
                    // Idle: leave, unless a message arrived meanwhile (senders queue under the same lock).
                    let left = {
                        let mut mailboxes =
                            self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
                        mailbox.is_empty() && mailboxes.remove(&id).is_some()
                    };
                    if !left {
                        continue;
                    }
                    if let Some(inst) = instance.take() {
                        self.deactivate(&agent_type, &id, inst).await;
                    }
                    return;
                }
            };
            if instance.is_none() {
                match self.activate(&agent_type, &id).await {
                    Ok(inst) => {
                        instance = Some(inst);
                        emitted = 0;
                    }
                    Err(e) => {
                        self.finished(
                            &message,
                            Err(format!("agent `{id}` could not be activated: {e}")),
                        );
                        continue;
                    }
                }
            }
            let Some(inst) = instance.as_mut() else {
                continue;
            };
            let (outcome, refusal) = self.handle(&agent_type, inst, &message, &mut emitted).await;
            if inst.is_dead() {
                tracing::warn!(agent = %id, "instance failed; the next message starts a fresh one");
                instance = None;
            }
            self.end(&message, outcome, refusal);
        }
    }

    async fn activate(
        self: &Arc<Self>,
        agent_type: &Arc<AgentType>,
        id: &str,
    ) -> Result<ToolInstance, String> {
        let limits = agent_type.component.spec.limits;
        let context = AgentContext {
            id: id.to_string(),
            agent_type: agent_type.clone(),
            runtime: self.clone(),
            current: None,
            sent: 0,
            emitted: 0,
            tokens: 0,
            turns: 0,
            deadline: Instant::now() + limits.timeout,
            audit: agent_type
                .component
                .audit_scope(Some(&format!("agent:{id}"))),
        };
        let mut instance = agent_type
            .component
            .instantiate_with(
                &self.engine,
                &limits,
                Some(InstanceExtension {
                    caller: format!("agent:{id}"),
                    state: Box::new(context),
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Err(e) = self.store.activated(id) {
            tracing::error!(agent = %id, "cannot record an activation: {e}");
        }
        if agent_type.has_lifecycle {
            let report = instance
                .call(
                    &agent_type.component,
                    &self.engine,
                    "lifecycle.activate",
                    &Value::Null,
                    &limits,
                )
                .await;
            if let Some(e) = hook_error(report.outcome) {
                return Err(format!("its activate hook failed: {e}"));
            }
        }
        tracing::debug!(agent = %id, "activated");
        Ok(instance)
    }

    async fn deactivate(&self, agent_type: &AgentType, id: &str, mut instance: ToolInstance) {
        if agent_type.has_lifecycle && !instance.is_dead() {
            let limits = agent_type.component.spec.limits;
            let report = instance
                .call(
                    &agent_type.component,
                    &self.engine,
                    "lifecycle.deactivate",
                    &Value::Null,
                    &limits,
                )
                .await;
            if let Some(e) = hook_error(report.outcome) {
                tracing::warn!(agent = %id, "deactivate hook failed: {e}");
            }
        }
        tracing::debug!(agent = %id, "deactivated");
    }

    async fn handle(
        &self,
        agent_type: &AgentType,
        instance: &mut ToolInstance,
        message: &Message,
        emitted: &mut u32,
    ) -> (Outcome, Option<Refusal>) {
        if let Err(e) = self.store.started(&message.id) {
            tracing::error!(message = %message.id, "cannot record the start of a message: {e}");
        }
        let limits = agent_type.component.spec.limits;
        if let Some(agent) = instance.state_mut().extension_mut::<AgentContext>() {
            agent.begin(message.clone(), *emitted, Instant::now() + limits.timeout);
        }
        let args = json!({ "from": message.sender, "payload": message.payload });
        let report = instance
            .call(
                &agent_type.component,
                &self.engine,
                "handler.on-message",
                &args,
                &limits,
            )
            .await;
        if let Some(agent) = instance.state_mut().extension_mut::<AgentContext>() {
            *emitted = agent.emitted;
            agent.current = None;
        }
        let outcome = match report.outcome {
            Ok(out) => match out.value {
                Value::Object(mut case) => match (case.remove("ok"), case.remove("err")) {
                    (Some(Value::String(reply)), _) => Ok(Some(reply)),
                    (Some(_), _) => Ok(None),
                    (None, Some(err)) => {
                        Err(err.as_str().map_or_else(|| err.to_string(), str::to_string))
                    }
                    (None, None) => Ok(None),
                },
                _ => Ok(None),
            },
            // The handler's result over `limits.max_output` is a reply too large as well.
            Err(
                e @ CallError::OutputTooLarge {
                    stream: "result", ..
                },
            ) => {
                return (Err(e.to_string()), Some(Refusal::TooLarge));
            }
            Err(e) => Err(e.to_string()),
        };
        (outcome, None)
    }
}

/// The error of a lifecycle hook's report, if it failed.
fn hook_error(
    outcome: Result<are_runtime::invoke::CallOutput, are_runtime::invoke::CallError>,
) -> Option<String> {
    match outcome {
        Ok(out) if out.is_err => Some(out.value["err"].to_string()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// What one agent instance reaches the host through: its identity, the message it handles, its budgets, and
/// the runtime.
pub struct AgentContext {
    /// `type/key`.
    pub id: String,
    agent_type: Arc<AgentType>,
    /// The runtime.
    pub runtime: Arc<Runtime>,
    current: Option<Message>,
    /// Messages sent while handling the current message (numbers their ids).
    sent: u32,
    /// Messages sent and published in this activation (the budget).
    emitted: u32,
    tokens: u32,
    turns: u32,
    deadline: Instant,
    /// Where this agent's tool calls, model calls and messages are recorded (caller `agent:TYPE/KEY`).
    audit: Option<are_runtime::audit::AuditScope>,
}

impl Runtime {
    /// The store.
    pub fn store(&self) -> &dyn AgentStore {
        self.store.as_ref()
    }
}

impl AgentContext {
    fn begin(&mut self, message: Message, emitted: u32, deadline: Instant) {
        self.current = Some(message);
        self.sent = 0;
        self.emitted = emitted;
        self.tokens = 0;
        self.turns = 0;
        self.deadline = deadline;
    }

    /// The message being handled.
    pub fn current(&self) -> Option<&Message> {
        self.current.as_ref()
    }

    /// This agent type's grants.
    pub fn grants(&self) -> &Grants {
        &self.agent_type.component.spec.grants
    }

    /// This agent's type, as named in the policy.
    pub fn type_name(&self) -> &str {
        &self.agent_type.component.spec.name
    }

    /// The bytes this agent's type may hold in the store (`[agent.TYPE] store_quota`).
    pub fn store_quota(&self) -> u64 {
        self.agent_type.store_quota
    }

    /// The tools this agent may call.
    pub fn granted_tools(&self) -> Vec<&ServedTool> {
        self.runtime
            .tools
            .tools()
            .iter()
            .filter(|t| self.grants().tools.allows(&t.tool.name))
            .collect()
    }

    /// Record one event in the audit trail, if there is one.
    fn audit(&self, event: &str, outcome: &str, detail: impl FnOnce() -> Value) {
        if let Some(audit) = &self.audit {
            audit.record(event, outcome, detail());
        }
    }

    /// Call a granted tool with JSON arguments; every failure is a message the agent can act on. Recorded as a
    /// `tool.call` (the tool's own run is its `call` record).
    pub async fn call_tool(&self, name: &str, arguments: &str) -> Result<String, String> {
        let mut fuel = None;
        let (outcome, result) = self.run_tool(name, arguments, &mut fuel).await;
        self.audit("tool.call", &outcome, || {
            let mut detail = json!({ "tool": name, "fuel": fuel });
            if let Err(e) = &result {
                detail["error"] = are_runtime::audit::truncate(e.clone(), 1000).into();
            }
            detail
        });
        result
    }

    /// [`call_tool`](Self::call_tool), returning the audit outcome too and setting `fuel` when the tool ran.
    async fn run_tool(
        &self,
        name: &str,
        arguments: &str,
        fuel: &mut Option<u64>,
    ) -> (String, Result<String, String>) {
        let fail = |kind: &str, e: String| (format!("error:{kind}"), Err(e));
        if !self.grants().tools.allows(name) {
            let denied = format!("tool `{name}` is not granted to {} (allow.tools)", self.id);
            return ("denied".into(), Err(denied));
        }
        let Some(tool) = self.runtime.tools.tool(name) else {
            let e = format!("no tool `{name}`; tools.list shows the granted tools");
            return fail("unknown_tool", e);
        };
        let args: Value = match serde_json::from_str(arguments) {
            Ok(args) => args,
            Err(e) => {
                let e = format!("arguments of `{name}` are not JSON: {e}");
                return fail("invalid_arguments", e);
            }
        };
        let call = tool.call(&self.runtime.engine, &args).await;
        *fuel = call.stats.as_ref().and_then(|s| s.fuel_consumed);
        tracing::info!(agent = %self.id, tool = name, fuel = *fuel, outcome = call.outcome(), "tool call");
        let outcome = match &call.output {
            Ok(_) => "ok".to_string(),
            Err(ToolFailure::ToolError(_)) => "err".to_string(),
            Err(failure) => format!("error:{}", failure.kind()),
        };
        let result = match call.output {
            Ok(value) => Ok(value.to_string()),
            Err(ToolFailure::ToolError(message)) => {
                Err(format!("`{name}` returned an error: {message}"))
            }
            Err(ToolFailure::Busy(busy)) => Err(busy.to_string()),
            Err(ToolFailure::Call(e)) => Err(format!("`{name}` failed: {e}")),
        };
        (outcome, result)
    }

    fn loop_check(&self, target: &str) -> Result<u32, SendError> {
        let (hops, chain) = self
            .current
            .as_ref()
            .map_or((0, &[][..]), |m| (m.hops, m.chain.as_slice()));
        if target == self.id || chain.iter().any(|a| a == target) {
            let mut path: Vec<&str> = chain.iter().map(String::as_str).collect();
            path.extend([self.id.as_str(), target]);
            return Err(SendError::LoopDetected(format!(
                "message loop: {} — `{target}` is already waiting for a reply on this chain",
                path.join(" → ")
            )));
        }
        let limit = self.runtime.settings.hop_limit;
        if hops + 1 > limit {
            return Err(SendError::LoopDetected(format!(
                "hop limit reached: this message is {hops} hops from its origin and the limit is {limit} ([agents] hop_limit)"
            )));
        }
        Ok(hops + 1)
    }

    fn spend_budget(&mut self) -> Result<(), SendError> {
        let budget = self.agent_type.message_budget;
        if self.emitted >= budget {
            return Err(SendError::BudgetExhausted(format!(
                "{} has sent its whole budget of {budget} messages for this activation (message_budget)",
                self.id
            )));
        }
        self.emitted += 1;
        Ok(())
    }

    fn child_id(&mut self, kind: char) -> String {
        self.sent += 1;
        match &self.current {
            Some(m) => format!("{}.{kind}{}", m.id, self.sent),
            None => self.runtime.fresh_id(&format!("{}.{kind}", self.id)),
        }
    }

    /// `messaging.send`: deliver to `to` and wait for the reply. Recorded as a `message.send` when the message
    /// is accepted or refused (the reply is the target's business: see its `call` record).
    pub async fn send(&mut self, to: &str, payload: String) -> Result<String, SendError> {
        let accepted = self.accept_send(to, payload);
        self.audit("message.send", send_outcome(&accepted), || {
            let mut detail = json!({ "to": to });
            match &accepted {
                Ok((id, _)) => detail["message"] = id.as_str().into(),
                Err(e) => detail["error"] = send_error_message(e).into(),
            }
            detail
        });
        let (id, receiver) = accepted?;
        let wait = self
            .runtime
            .settings
            .reply_timeout
            .min(self.deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(Ok(reply))) => Ok(reply.unwrap_or_default()),
            Ok(Ok(Err(e))) => Err(match self.runtime.store.refusal(&id) {
                Ok(Some(Refusal::TooLarge)) => SendError::TooLarge(format!("`{to}`: {e}")),
                Ok(Some(Refusal::QuotaExceeded)) => {
                    SendError::QuotaExceeded(format!("`{to}`: {e}"))
                }
                Ok(None) | Err(_) => SendError::Failed(format!("`{to}` failed: {e}")),
            }),
            Ok(Err(_)) => Err(SendError::Failed(format!(
                "`{to}` went away before replying"
            ))),
            Err(_) => Err(SendError::Timeout(format!(
                "no reply from `{to}` within {} (the reply timeout, or what is left of this message's own timeout)",
                humantime::format_duration(wait)
            ))),
        }
    }

    /// The checks and delivery of a `send`: the message id and where its outcome will come.
    fn accept_send(
        &mut self,
        to: &str,
        payload: String,
    ) -> Result<(String, oneshot::Receiver<Outcome>), SendError> {
        if !self.grants().messaging.may_send(to) {
            return Err(SendError::Denied(format!(
                "{} may not send to `{to}` (allow.messaging.send)",
                self.id
            )));
        }
        let target = AgentId::parse(to).map_err(|e| SendError::UnknownTarget(e.to_string()))?;
        if !self.runtime.types.contains_key(&target.agent_type) {
            return Err(SendError::UnknownTarget(format!(
                "no agent type `{}` is configured",
                target.agent_type
            )));
        }
        self.runtime
            .check_payload("the payload", payload.len())
            .map_err(SendError::TooLarge)?;
        let hops = self.loop_check(to)?;
        self.spend_budget()?;
        let mut chain = self
            .current
            .as_ref()
            .map(|m| m.chain.clone())
            .unwrap_or_default();
        chain.push(self.id.clone());
        let message = Message {
            id: self.child_id('s'),
            recipient: to.to_string(),
            sender: self.id.clone(),
            topic: None,
            hops,
            chain,
            payload,
            wants_reply: true,
        };
        let id = message.id.clone();
        let receiver = self
            .runtime
            .deliver(message, true)
            .map_err(|e| match e {
                Undelivered::Store(e) => SendError::Failed(e.to_string()),
                Undelivered::OverQuota(over) => {
                    SendError::QuotaExceeded(over_quota_message(to, &target.agent_type, over))
                }
            })?
            .ok_or_else(|| SendError::Failed("no reply channel".into()))?;
        Ok((id, receiver))
    }

    /// `messaging.publish`: deliver a copy to every subscriber, without waiting. Recorded as a
    /// `message.publish`.
    pub async fn publish(&mut self, topic: &str, payload: String) -> Result<(), SendError> {
        let published = self.publish_checked(topic, payload);
        self.audit("message.publish", send_outcome(&published), || {
            let mut detail = json!({ "topic": topic });
            match &published {
                Ok((id, subscribers)) => {
                    detail["message"] = id.as_str().into();
                    detail["subscribers"] = (*subscribers).into();
                }
                Err(e) => detail["error"] = send_error_message(e).into(),
            }
            detail
        });
        published.map(drop)
    }

    /// The checks and deliveries of a `publish`: the message id and how many subscriber types got a copy.
    fn publish_checked(
        &mut self,
        topic: &str,
        payload: String,
    ) -> Result<(String, usize), SendError> {
        if !self.grants().messaging.may_publish(topic) {
            return Err(SendError::Denied(format!(
                "{} may not publish on `{topic}` (allow.messaging.publish)",
                self.id
            )));
        }
        let hops = self.current.as_ref().map_or(0, |m| m.hops) + 1;
        let limit = self.runtime.settings.hop_limit;
        if hops > limit {
            return Err(SendError::LoopDetected(format!(
                "hop limit reached: a message published here would be {hops} hops from its origin, over the \
                 limit of {limit} ([agents] hop_limit)"
            )));
        }
        self.runtime
            .check_payload("the payload", payload.len())
            .map_err(SendError::TooLarge)?;
        self.spend_budget()?;
        let id = self.child_id('p');
        let subscribers = self
            .runtime
            .subscribers
            .get(topic)
            .cloned()
            .unwrap_or_default();
        let count = subscribers.len();
        let mut refused = Vec::new();
        for agent_type in subscribers {
            let message = Message {
                id: format!("{id}.{agent_type}"),
                recipient: format!("{agent_type}/{topic}"),
                sender: self.id.clone(),
                topic: Some(topic.to_string()),
                hops,
                chain: Vec::new(),
                payload: payload.clone(),
                wants_reply: false,
            };
            match self.runtime.deliver(message, false) {
                Ok(_) => {}
                Err(Undelivered::Store(e)) => return Err(SendError::Failed(e.to_string())),
                Err(Undelivered::OverQuota(over)) => {
                    let recipient = format!("{agent_type}/{topic}");
                    refused.push(over_quota_message(&recipient, &agent_type, over));
                }
            }
        }
        if !refused.is_empty() {
            return Err(SendError::QuotaExceeded(format!(
                "{} of {count} subscriber types got the message on `{topic}`; {}",
                count - refused.len(),
                refused.join("; ")
            )));
        }
        Ok((id, count))
    }

    /// `llm.chat`: call the model within this message's token and turn budgets. Recorded as an `llm.call`
    /// (model and token counts, never the conversation).
    pub async fn chat(
        &mut self,
        messages: Vec<wit_llm::Message>,
        use_tools: bool,
        max_tokens: Option<u32>,
    ) -> Result<wit_llm::Completion, wit_llm::Error> {
        let result = self.chat_checked(messages, use_tools, max_tokens).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(wit_llm::Error::Denied(_)) => "denied",
            Err(wit_llm::Error::BudgetExhausted(_)) => "error:budget_exhausted",
            Err(wit_llm::Error::Failed(_)) => "error:failed",
        };
        self.audit("llm.call", outcome, || {
            let mut detail = json!({
                "model": self.grants().llm.model,
                "served_by": self.runtime.llm.describe(),
                "turn": self.turns,
            });
            match &result {
                Ok(c) => {
                    detail["prompt_tokens"] = c.usage.prompt_tokens.into();
                    detail["completion_tokens"] = c.usage.completion_tokens.into();
                    detail["finish_reason"] = c.finish_reason.as_str().into();
                }
                Err(
                    wit_llm::Error::Denied(e)
                    | wit_llm::Error::BudgetExhausted(e)
                    | wit_llm::Error::Failed(e),
                ) => {
                    detail["error"] = are_runtime::audit::truncate(e.clone(), 1000).into();
                }
            }
            detail
        });
        result
    }

    /// [`chat`](Self::chat) without the audit record.
    async fn chat_checked(
        &mut self,
        messages: Vec<wit_llm::Message>,
        use_tools: bool,
        max_tokens: Option<u32>,
    ) -> Result<wit_llm::Completion, wit_llm::Error> {
        let grant = self.grants().llm.clone();
        if grant.model.is_none() {
            return Err(wit_llm::Error::Denied(format!(
                "{} has no model access (allow.llm)",
                self.id
            )));
        }
        let (token_budget, turn_budget) = (grant.token_budget(), grant.turn_budget());
        if self.turns >= turn_budget {
            return Err(wit_llm::Error::BudgetExhausted(format!(
                "{} has made its {turn_budget} model calls for this message (allow.llm.max_turns)",
                self.id
            )));
        }
        let left = token_budget.saturating_sub(self.tokens);
        if left == 0 {
            return Err(wit_llm::Error::BudgetExhausted(format!(
                "{} has spent its {token_budget} tokens for this message (allow.llm.max_tokens)",
                self.id
            )));
        }
        let tools: Vec<ToolDefinition> = if use_tools {
            self.granted_tools()
                .into_iter()
                .map(|t| ToolDefinition {
                    name: t.tool.name.to_string(),
                    wire_name: t.tool.portable_name.clone(),
                    description: t.tool.description.clone(),
                    parameters: Value::Object((*t.tool.input_schema).clone()),
                })
                .collect()
        } else {
            Vec::new()
        };
        let conversation: Vec<ChatMessage> = messages.into_iter().map(from_wit).collect();
        let cap = Some(max_tokens.map_or(left, |m| m.min(left)));
        self.turns += 1;
        let response = self
            .runtime
            .llm
            .chat(&conversation, &tools, cap)
            .await
            .map_err(|e| wit_llm::Error::Failed(e.to_string()))?;
        let spent = response
            .prompt_tokens
            .saturating_add(response.completion_tokens);
        self.tokens = self.tokens.saturating_add(spent);
        tracing::info!(agent = %self.id, prompt = response.prompt_tokens, completion = response.completion_tokens,
            turn = self.turns, "model call");
        Ok(wit_llm::Completion {
            message: to_wit(response.message),
            finish_reason: response.finish_reason,
            usage: wit_llm::Usage {
                prompt_tokens: response.prompt_tokens,
                completion_tokens: response.completion_tokens,
            },
            tokens_left: token_budget.saturating_sub(self.tokens),
        })
    }
}

/// The audit outcome of a `send` or `publish`: `ok`, `denied` for an ACL refusal, else `error:<kind>`.
fn send_outcome<T>(result: &Result<T, SendError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(SendError::Denied(_)) => "denied",
        Err(SendError::UnknownTarget(_)) => "error:unknown_target",
        Err(SendError::Timeout(_)) => "error:timeout",
        Err(SendError::LoopDetected(_)) => "error:loop_detected",
        Err(SendError::BudgetExhausted(_)) => "error:budget_exhausted",
        Err(SendError::Failed(_)) => "error:failed",
        Err(SendError::TooLarge(_)) => "error:too_large",
        Err(SendError::QuotaExceeded(_)) => "error:quota_exceeded",
    }
}

fn send_error_message(e: &SendError) -> &str {
    match e {
        SendError::Denied(m)
        | SendError::UnknownTarget(m)
        | SendError::Timeout(m)
        | SendError::LoopDetected(m)
        | SendError::BudgetExhausted(m)
        | SendError::Failed(m)
        | SendError::TooLarge(m)
        | SendError::QuotaExceeded(m) => m,
    }
}

/// The agent type of an agent id (`type/key`).
fn type_of(agent: &str) -> &str {
    agent.split_once('/').map_or(agent, |(t, _)| t)
}

/// Why `recipient` (of type `agent_type`) cannot take a message or reply.
fn over_quota_message(recipient: &str, agent_type: &str, over: OverQuota) -> String {
    format!(
        "`{recipient}` has no room for it: agent type `{agent_type}` would hold {} of pending messages and \
         memory, over its store quota of {} ([agent.{agent_type}] store_quota)",
        are_policy::common::fmt_bytes(over.needed),
        are_policy::common::fmt_bytes(over.quota)
    )
}

fn from_wit(m: wit_llm::Message) -> ChatMessage {
    ChatMessage {
        role: match m.role {
            wit_llm::Role::System => Role::System,
            wit_llm::Role::User => Role::User,
            wit_llm::Role::Assistant => Role::Assistant,
            wit_llm::Role::Tool => Role::Tool,
        },
        content: m.content,
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
        tool_call_id: m.tool_call_id,
    }
}

fn to_wit(m: ChatMessage) -> wit_llm::Message {
    wit_llm::Message {
        role: match m.role {
            Role::System => wit_llm::Role::System,
            Role::User => wit_llm::Role::User,
            Role::Assistant => wit_llm::Role::Assistant,
            Role::Tool => wit_llm::Role::Tool,
        },
        content: m.content,
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|c| wit_llm::ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
        tool_call_id: m.tool_call_id,
    }
}

/// Where the store of `policy` lives.
pub fn store_path(policy: &Policy) -> PathBuf {
    policy.base_dir.join(
        policy
            .agent_runtime
            .store
            .clone()
            .unwrap_or_else(|| ".are/agents.db".to_string()),
    )
}
