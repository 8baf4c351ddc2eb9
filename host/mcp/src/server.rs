//! The MCP server: `tools/list` and `tools/call` over the catalog, with every call gated, metered and
//! contained; `logging/setLevel` and log notifications; `notifications/tools/list_changed` on reload.
// MCP logging is part of revision 2025-11-25, which we serve; the SDK marks it deprecated because the next
// revision (SEP-2577) drops it.
#![allow(deprecated)]

use super::sessions::Sessions;
use super::tasks::{TaskEnd, TaskStore, TaskStoreError};
use are_policy::{InstanceMode, Policy, TaskMode, ToolNames};
use are_runtime::catalog::{
    Catalog, ServedComponent, ServedTool, Settings, ToolCall, ToolFailure, served_settings,
};
use are_runtime::component;
use are_runtime::engine::AreEngine;
use are_runtime::host::Host;
use are_runtime::invoke::CallError;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
    ClientCapabilities, ContentBlock, CreateTaskResult, GetTaskParams, GetTaskResult,
    Implementation, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    SetLevelRequestMethod, SetLevelRequestParams, SubscriptionFilter, TASKS_EXTENSION_ID,
    UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Default tools per `tools/list` page.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// `ttlMs` of a `tools/list` result when the list changes only on restart (5 minutes).
pub const LIST_TTL_MS: u64 = 300_000;

/// `ttlMs` of a `tools/list` result under `--watch` (5 seconds).
pub const LIST_TTL_WATCHING_MS: u64 = 5_000;

/// What every session of one `are serve` process shares.
pub struct McpServer {
    host: Host,
    policy_path: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    sessions: Sessions,
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// Open `subscriptions/listen` requests (revision 2026-07-28), each told when the tool list changes.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
    next_listener: AtomicU64,
    log_levels: Mutex<HashMap<String, LoggingLevel>>,
    generation: AtomicU64,
    /// `--watch` is on: the tool list may change while serving.
    watching: std::sync::atomic::AtomicBool,
    page_size: usize,
    tool_names: ToolNames,
    audit: Option<are_runtime::audit::AuditSink>,
    /// Call counters and histograms, for `/metrics`.
    pub metrics: super::metrics::Metrics,
    /// Where tool calls run, apart from the protocol's threads.
    guests: super::guest_threads::GuestThreads,
    /// The task store's file, and the store once a task component needed it.
    task_store_path: PathBuf,
    task_store: Mutex<Option<Arc<TaskStore>>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy is unreadable or invalid.
    #[error(transparent)]
    Policy(#[from] are_policy::PolicyError),
    /// A component of the policy could not be loaded.
    #[error("component `{component}`: {error}")]
    Component {
        /// Its name in the policy.
        component: String,
        /// Why.
        error: component::LoadError,
    },
    /// The `[audit]` log cannot be opened.
    #[error(transparent)]
    Audit(#[from] are_runtime::audit::AuditError),
    /// The threads for tool calls cannot be started.
    #[error("cannot start the threads that run tool calls: {0}")]
    Threads(#[from] std::io::Error),
    /// A component runs as tasks and the task store cannot be opened.
    #[error(transparent)]
    Tasks(#[from] TaskStoreError),
}

impl McpServer {
    /// Load every component of the policy at `policy_path`. Fails if any of them cannot be loaded: a server
    /// starts complete or not at all (on reload, by contrast, a broken component keeps its old version).
    ///
    /// # Errors
    /// [`StartError`] naming the policy problem or the component.
    pub fn start(host: Host, policy_path: &Path) -> Result<Arc<McpServer>, StartError> {
        let policy = Policy::load(policy_path)?;
        let page_size = policy
            .serve
            .page_size
            .map_or(DEFAULT_PAGE_SIZE, |n| n.max(1) as usize);
        let server = McpServer {
            audit: host.audit_sink(&policy, "mcp")?,
            host,
            policy_path: policy_path.to_path_buf(),
            catalog: RwLock::new(Arc::new(Catalog::new(BTreeMap::new()))),
            sessions: Sessions::default(),
            peers: Mutex::default(),
            listeners: Mutex::default(),
            next_listener: AtomicU64::new(0),
            log_levels: Mutex::default(),
            generation: AtomicU64::new(0),
            watching: std::sync::atomic::AtomicBool::new(false),
            page_size,
            tool_names: policy.serve.tool_names,
            metrics: super::metrics::Metrics::default(),
            guests: super::guest_threads::GuestThreads::start()?,
            task_store_path: super::tasks::store_path(
                policy_path,
                policy.serve.task_store.as_deref(),
            ),
            task_store: Mutex::default(),
        };
        let mut components = BTreeMap::new();
        for (name, c) in &policy.components {
            let Some((spec, settings)) = served_settings(&policy, name, c) else {
                continue;
            };
            let served =
                server
                    .load_component(spec, settings)
                    .map_err(|error| StartError::Component {
                        component: name.clone(),
                        error,
                    })?;
            components.insert(name.clone(), served);
        }
        server.install(Catalog::new(components));
        if server.offers_tasks() {
            // Open it now: a bad path fails the start, and tasks an earlier process left unfinished are
            // marked interrupted at once.
            server.tasks()?;
        }
        let server = Arc::new(server);
        server.sessions.start_reaper(&server);
        Ok(server)
    }

    /// Say that the tool list may change while serving (`--watch`): `tools/list` results get a short `ttlMs`.
    pub fn set_watching(&self) {
        self.watching.store(true, Ordering::Relaxed);
    }

    /// How long a 2026-07-28 client may reuse a `tools/list` result (`ttlMs`): the list changes only when the
    /// server restarts, or, with `--watch`, when a file changes (subscribers hear of that at once).
    fn list_ttl_ms(&self) -> u64 {
        if self.watching.load(Ordering::Relaxed) {
            LIST_TTL_WATCHING_MS
        } else {
            LIST_TTL_MS
        }
    }

    /// The engine calls run on.
    pub fn engine(&self) -> &AreEngine {
        self.host.engine()
    }

    /// The policy file being served.
    pub fn policy_path(&self) -> &Path {
        &self.policy_path
    }

    /// The session instances.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The engine, cache and source settings components are loaded with.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Load one component for serving, with a new generation number.
    ///
    /// # Errors
    /// Any [`component::LoadError`].
    pub fn load_component(
        &self,
        spec: component::ComponentSpec,
        settings: Settings,
    ) -> Result<Arc<ServedComponent>, component::LoadError> {
        let spec = component::ComponentSpec {
            audit: self.audit.clone(),
            ..spec
        };
        let loaded = self.host.load(spec)?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(ServedComponent::new(loaded, settings, generation)))
    }

    /// Replace the catalog. Sessions of components that changed start fresh on their next call.
    pub fn install(&self, catalog: Catalog) {
        // With a pooling allocator, session instances hold pool slots for as long as they live: leave enough
        // for every fresh-mode component to run `max_concurrency` calls.
        if let Some(pool) = self.host.engine().config().pooling {
            let fresh: u64 = catalog
                .components
                .values()
                .filter(|c| c.settings.mode == InstanceMode::Fresh)
                .map(|c| u64::from(c.settings.max_concurrency))
                .sum();
            let spare = u64::from(pool.max_instances).saturating_sub(fresh);
            self.sessions
                .set_limit(usize::try_from(spare).unwrap_or(usize::MAX));
        }
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
    }

    /// Tell every connected client that the tool list changed: sessions of revision 2025-11-25 and older on
    /// their stream, 2026-07-28 clients on each of their `subscriptions/listen` streams.
    pub async fn notify_tools_changed(&self) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        for peer in peers {
            if let Err(e) = peer.notify_tool_list_changed().await {
                tracing::debug!("cannot send tools/list_changed: {e}");
            }
        }
        let listeners: Vec<(u64, SubscriptionSink)> = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(key, sink)| (*key, sink.clone()))
            .collect();
        for (key, sink) in listeners {
            if let Err(e) = sink.notify_tool_list_changed().await {
                tracing::debug!("cannot send tools/list_changed to a subscription: {e}");
                self.listeners
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            }
        }
    }

    /// Serve one `subscriptions/listen` request until the client ends it.
    async fn listen(&self, subscription: SubscriptionContext) {
        let key = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, subscription.sink().clone());
        subscription.cancelled().await;
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// The tool the client calls `name` (in either spelling).
    ///
    /// # Errors
    /// `-32602` for a tool this server does not offer.
    pub fn tool(&self, name: &str) -> Result<ServedTool, ErrorData> {
        self.catalog().tool(name).cloned().ok_or_else(|| {
            ErrorData::invalid_params(
                format!(
                    "unknown tool `{name}`; call tools/list to see the tools this server offers"
                ),
                None,
            )
        })
    }

    /// Call `tool`, which the client named `name`, for `session`: gate, run, meter, and turn the report into an
    /// MCP result. Without a session (a stateless HTTP request), a session-mode component gets a fresh instance.
    ///
    /// # Errors
    /// Protocol errors: arguments that do not fit its input schema (`-32602`).
    pub async fn call_tool(
        self: &Arc<Self>,
        tool: ServedTool,
        name: &str,
        args: Value,
        session: Option<&str>,
    ) -> Result<ToolOutcome, ErrorData> {
        let server = Arc::clone(self);
        let session = session.map(str::to_string);
        let requested = name.to_string();
        let call = async move {
            let started = Instant::now();
            let component = tool.component.clone();
            let call = match (component.settings.mode, &session) {
                (InstanceMode::Session, Some(session)) => {
                    tool.call_in(|| {
                        server.sessions.call(
                            server.host.engine(),
                            &component,
                            &tool.function,
                            &args,
                            session,
                        )
                    })
                    .await
                }
                _ => tool.call(server.host.engine(), &args).await,
            };
            server
                .metrics
                .record(&tool.tool.name, &call, started.elapsed());
            outcome(&requested, &tool, call)
        };
        self.guests.run(call).await.unwrap_or_else(|e| {
            tracing::error!(tool = name, "a tool call ended abnormally: {e}");
            Err(ErrorData::internal_error(
                format!("tool `{name}`: the call ended abnormally ({e}); the server keeps serving other calls"),
                None,
            ))
        })
    }

    /// Whether a served component has `task = "allowed"` or `"required"`.
    fn offers_tasks(&self) -> bool {
        self.catalog()
            .components
            .values()
            .any(|c| c.settings.task != TaskMode::Never)
    }

    /// The task store, opened on first use.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub fn tasks(&self) -> Result<Arc<TaskStore>, TaskStoreError> {
        let mut store = self.task_store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = &*store {
            return Ok(store.clone());
        }
        let opened = Arc::new(TaskStore::open(&self.task_store_path)?);
        *store = Some(opened.clone());
        Ok(opened)
    }

    /// Start `tool` (named `name` by the client) as a task: record it, run the call apart, and answer with the
    /// task at once.
    async fn start_task(
        self: &Arc<Self>,
        tool: ServedTool,
        name: String,
        args: Value,
        session: Option<String>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Arguments that do not fit are refused now, not reported by a failed task later.
        let desc = &tool.component.loaded.description;
        if let Ok(f) = desc.find(&tool.function)
            && let Err(e) = are_runtime::value::args_to_vals(desc, f, &args)
        {
            return Err(ErrorData::invalid_params(
                format!("invalid arguments for `{name}`: {e}"),
                None,
            ));
        }
        let store = self.tasks().map_err(task_store_error)?;
        let (task, stop) = store.create(&name).map_err(task_store_error)?;
        let id = task.task_id.clone();
        let server = Arc::clone(self);
        tracing::info!(tool = %name, task = %id, "task started");
        tokio::spawn(async move {
            let end = tokio::select! {
                () = stop.cancelled() => {
                    tracing::info!(tool = %name, task = %id, "task cancelled");
                    return;
                }
                outcome = server.call_tool(tool, &name, args, session.as_deref()) => match outcome {
                    Ok(outcome) => TaskEnd::Completed(outcome.result),
                    Err(error) => TaskEnd::Failed(error),
                },
            };
            tracing::info!(tool = %name, task = %id, "task finished");
            if let Err(e) = store.finish(&id, end) {
                tracing::error!(tool = %name, task = %id, "cannot record the task's result: {e}");
            }
        });
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    /// Forget everything kept for `session`: its instances and its log level.
    pub fn end_session(&self, session: &str) {
        self.sessions.end(session);
        self.log_levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session);
    }

    /// The log notification for `outcome` of a call of `name`, if it failed and the client asked for warnings:
    /// at revision 2026-07-28 with the request's `_meta` level (`requested`), before with the session's
    /// `logging/setLevel` (warnings by default).
    pub(crate) fn failure_log(
        &self,
        name: &str,
        outcome: &ToolOutcome,
        at_2026: bool,
        requested: Option<LoggingLevel>,
        session: Option<&str>,
    ) -> Option<LoggingMessageNotificationParam> {
        let kind = outcome.failure?;
        let wanted = if at_2026 {
            requested
        } else {
            Some(
                session
                    .and_then(|s| self.log_level(s))
                    .unwrap_or(LoggingLevel::Warning),
            )
        };
        if wanted.is_none_or(|w| level_rank(LoggingLevel::Warning) < level_rank(w)) {
            return None;
        }
        let message = outcome
            .result
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        let mut log = LoggingMessageNotificationParam::new(
            LoggingLevel::Warning,
            json!({ "tool": name, "kind": kind, "message": message }),
        );
        log.logger = Some("are".into());
        Some(log)
    }

    fn log_level(&self, session: &str) -> Option<LoggingLevel> {
        self.log_levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .copied()
    }
}

/// A tool call's MCP result, plus what a log notification should say about it.
pub struct ToolOutcome {
    /// The result to send.
    pub result: CallToolResult,
    /// The failure kind, when the call failed.
    pub failure: Option<&'static str>,
}

impl ToolOutcome {
    fn failed(kind: &'static str, message: String) -> ToolOutcome {
        ToolOutcome {
            result: CallToolResult::error(vec![ContentBlock::text(message)]),
            failure: Some(kind),
        }
    }
}

/// Map a tool call to MCP: a result (`structuredContent` plus text), a tool error (`isError`), or a protocol
/// error for arguments that do not fit.
fn outcome(name: &str, tool: &ServedTool, call: ToolCall) -> Result<ToolOutcome, ErrorData> {
    let value = match call.output {
        Ok(value) => value,
        Err(ToolFailure::Call(CallError::InvalidArguments(e))) => {
            return Err(ErrorData::invalid_params(
                format!("invalid arguments for `{name}`: {e}"),
                None,
            ));
        }
        Err(ToolFailure::Call(e @ CallError::UnknownFunction(_))) => {
            return Err(ErrorData::internal_error(e.to_string(), None));
        }
        Err(failure) => return Ok(ToolOutcome::failed(failure.kind(), failure.to_string())),
    };
    let text = match &value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if tool.tool.output_schema.is_some() {
        result.structured_content = Some(json!({ "result": value }));
    }
    Ok(ToolOutcome {
        result,
        failure: None,
    })
}

/// The name of the one session on stdio.
pub(crate) const STDIO_SESSION: &str = "stdio";

/// The session a request belongs to: its `Mcp-Session-Id` over HTTP (none for a stateless request), or the one
/// stdio session.
pub fn session_of(extensions: &rmcp::model::Extensions) -> Option<String> {
    match extensions.get::<http::request::Parts>() {
        Some(parts) => parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        None => Some(STDIO_SESSION.to_string()),
    }
}

/// How a `tools/call` is answered, from its component's task mode and whether the client takes tasks
/// (revision 2026-07-28 and the tasks extension declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallPlan {
    /// Run it and answer with its result.
    Plain,
    /// Answer with a task at once and run it apart.
    Task,
    /// Refuse it: the tool runs only as a task and this client cannot take one.
    NeedsTasks,
}

impl CallPlan {
    pub(crate) fn of(tool: &ServedTool, client_has_tasks: bool) -> CallPlan {
        match (tool.component.settings.task, client_has_tasks) {
            (TaskMode::Required, false) => CallPlan::NeedsTasks,
            (TaskMode::Required | TaskMode::Allowed, true) => CallPlan::Task,
            (TaskMode::Allowed | TaskMode::Never, _) => CallPlan::Plain,
        }
    }
}

/// The `rmcp` handler: a cheap handle on the shared server (rmcp makes one per session and per HTTP request).
#[derive(Clone)]
pub struct Handler(pub Arc<McpServer>);

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_logging();
        let capabilities = if self.0.offers_tasks() {
            builder.enable_tasks().build()
        } else {
            builder.build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("are", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools here are WebAssembly components run by `are`, each with only the access its policy grants \
                 and with fuel, time and memory limits. A tool error explains what happened and which limit was \
                 hit; adjust the arguments or ask for less work and try again.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let catalog = self.0.catalog();
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let (page, next) = catalog.page(cursor, self.0.page_size);
        let mut result = ListToolsResult::with_all_items(
            page.iter()
                .map(|t| mcp_tool(&t.tool, self.0.tool_names))
                .collect(),
        );
        result.next_cursor = next;
        if at_2026(&context) {
            // The list is the same for every caller.
            result.ttl_ms = Some(self.0.list_ttl_ms());
            result.cache_scope = Some(CacheScope::Public);
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.0
            .catalog()
            .tool(name)
            .map(|t| mcp_tool(&t.tool, self.0.tool_names))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let session = session_of(&context.extensions);
        let args = request.arguments.map_or(Value::Null, Value::Object);
        let name = request.name.to_string();
        let tool = self.0.tool(&name)?;
        let client_has_tasks = context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        // Tasks are the 2026-07-28 extension: a 2025-11-25 session gets plain answers (or, for a required task,
        // the error).
        let client_has_tasks = client_has_tasks && at_2026(&context);
        match CallPlan::of(&tool, client_has_tasks) {
            CallPlan::NeedsTasks => {
                let mut error = ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_tasks().build(),
                );
                error.message = format!(
                    "tool `{name}` runs only as a task: call it at revision 2026-07-28 declaring the \
                     `{TASKS_EXTENSION_ID}` extension in the client capabilities, or set `task = \"allowed\"` on its \
                     component in the policy"
                )
                .into();
                return Err(error);
            }
            CallPlan::Task => return self.0.start_task(tool, name, args, session).await,
            CallPlan::Plain => {}
        }
        let outcome = self
            .0
            .call_tool(tool, &name, args, session.as_deref())
            .await?;
        let log = self.0.failure_log(
            &name,
            &outcome,
            at_2026(&context),
            context.meta.log_level(),
            session.as_deref(),
        );
        if let Some(log) = log {
            let _ = context.peer.notify_logging_message(log).await;
        }
        Ok(outcome.result.into())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if at_2026(&context) {
            // Removed in 2026-07-28: a request asks for log notifications with `logLevel` in its `_meta`.
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        // A 2025-11-25 request always has a session: the stdio one, or its `Mcp-Session-Id`.
        if let Some(session) = session_of(&context.extensions) {
            self.0
                .log_levels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(session, request.level);
        }
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let store = self.0.tasks().map_err(task_store_error)?;
        match store.get(&request.task_id).map_err(task_store_error)? {
            Some(task) => Ok(GetTaskResult::new(task)),
            None => Err(unknown_task(&request.task_id)),
        }
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let store = self.0.tasks().map_err(task_store_error)?;
        if store.cancel(&request.task_id).map_err(task_store_error)? {
            Ok(())
        } else {
            Err(unknown_task(&request.task_id))
        }
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let store = self.0.tasks().map_err(task_store_error)?;
        if !store.exists(&request.task_id).map_err(task_store_error)? {
            return Err(unknown_task(&request.task_id));
        }
        Err(ErrorData::invalid_params(
            format!(
                "task `{}` asks for no input: tool calls here never wait for the client (cancel it with \
                 tasks/cancel)",
                request.task_id
            ),
            None,
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let tools = SubscriptionFilter::builder().tools_list_changed().build();
        Some(requested.intersection(&tools))
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        self.0.listen(subscription).await;
        Ok(())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut peers = self.0.peers.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the sessions that ended, or a long-running HTTP server keeps one peer per session ever opened.
        peers.retain(|p| !p.is_transport_closed());
        peers.push(context.peer);
    }
}

/// `-32602` for a task id the store does not know.
fn unknown_task(id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "unknown task `{id}`: it never existed here or is older than the tasks' retention (24 h)"
        ),
        None,
    )
}

fn task_store_error(e: TaskStoreError) -> ErrorData {
    tracing::error!("{e}");
    ErrorData::internal_error(e.to_string(), None)
}

/// Whether the request is of revision 2026-07-28 or later (its `_meta`, else what the session negotiated).
fn at_2026(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Severity order of MCP log levels (RFC 5424: debug lowest).
fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Why the MCP session on stdio ended in failure.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The client's initialization failed.
    #[error("cannot start the MCP session on stdio: {0}")]
    Start(Box<rmcp::service::ServerInitializeError>),
    /// The session's task panicked or was cancelled.
    #[error("the MCP session on stdio ended abnormally: {0}")]
    Session(#[from] tokio::task::JoinError),
}

/// Serve MCP over stdin/stdout until the client disconnects; a message longer than `max_request_size` bytes
/// gets a JSON-RPC error.
///
/// # Errors
/// When the transport fails to start or breaks.
pub async fn serve_stdio(
    server: Arc<McpServer>,
    max_request_size: usize,
) -> Result<(), StdioError> {
    use rmcp::ServiceExt;
    let (input, output) = stdio_transport();
    let running = Handler(server.clone())
        .serve(
            super::stdio::BoundedLines::new(input, output, max_request_size)
                .answering_calls(server),
        )
        .await;
    let running = match running {
        Ok(running) => running,
        // Input ended before any session began: nothing was left unanswered (a client of revision 2026-07-28
        // may have made only calls, each answered on the way in).
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(StdioError::Start(Box::new(e))),
    };
    running.waiting().await?;
    Ok(())
}

/// stdin and stdout as the session's byte streams. Where they are pipes (how MCP clients start a server), they
/// are read and written through tokio's reactor; tokio's `stdin()`/`stdout()`, which work for anything, hand every
/// read and write to a blocking-pool thread, a thread hand-off per message each way (BENCHMARKS.md).
fn stdio_transport() -> (
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match input {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match output {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

/// The MCP form of a catalog tool, with its name spelled as `names` says.
pub fn mcp_tool(
    definition: &are_runtime::catalog::ToolDefinition,
    names: ToolNames,
) -> rmcp::model::Tool {
    let name = match names {
        ToolNames::Portable => &definition.portable_name,
        ToolNames::Dotted => &definition.name,
    };
    let mut tool = rmcp::model::Tool::new(
        name.clone(),
        definition.description.clone(),
        definition.input_schema.clone(),
    );
    tool.output_schema = definition.output_schema.clone();
    tool
}
