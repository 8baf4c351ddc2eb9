//! The tool catalog: every callable export of every component in the policy, named (`component.function`),
//! described and given schemas once, when the policy is loaded; with a concurrency gate per component. `are
//! serve` offers it over MCP, and agents call into it through `allow.tools`.

use crate::component::{ComponentSpec, LoadedComponent};
use crate::describe::ExportedFunction;
use crate::engine::AreEngine;
use crate::invoke::{CallError, CallOutput, CallReport, CallStats};
use crate::schema::{self, Direction};
use are_policy::{ComponentPolicy, InstanceMode, LimitsSection, Policy, TaskMode};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use wit_parser::{Type, TypeDefKind};

/// Longest tool name MCP allows.
pub const MAX_TOOL_NAME: usize = 128;

/// Longest function name the model APIs accept (OpenAI and Anthropic: `^[a-zA-Z0-9_-]{1,64}$`).
pub const MAX_PORTABLE_NAME: usize = 64;

/// One component as served: loaded, with its serving settings and its concurrency gate.
pub struct ServedComponent {
    /// The component, compiled and linked.
    pub loaded: LoadedComponent,
    /// How it is served.
    pub settings: Settings,
    /// Limits concurrent calls and the queue behind them.
    pub gate: Gate,
    /// Identifies this load of the component: session instances of an older load are not reused.
    pub generation: u64,
}

/// What callers see of a tool: its name, description and JSON Schemas. The MCP server and agents each render it in
/// their own wire form.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// `component.function` (see [`MAX_TOOL_NAME`]): how policies (`allow.tools`) and guests name the tool.
    pub name: String,
    /// The same name spelled as every model API accepts a function name (see [`portable_name`]).
    pub portable_name: String,
    /// The function's doc comment, else its WIT signature.
    pub description: String,
    /// The JSON Schema of the arguments object.
    pub input_schema: Arc<Map<String, Value>>,
    /// The JSON Schema of the result, when it is an object (see [`ServedTool::unwraps_result`]).
    pub output_schema: Option<Arc<Map<String, Value>>>,
}

/// One tool: a function of a served component.
#[derive(Clone)]
pub struct ServedTool {
    /// Its definition (name, description, schemas).
    pub tool: ToolDefinition,
    /// The component it belongs to.
    pub component: Arc<ServedComponent>,
    /// The function, as `interface.name` (what [`crate::describe::ComponentDescription::find`] takes).
    pub function: String,
    /// The function returns a WIT `result`: its `ok` payload is the tool's output, its `err` a tool error.
    pub unwraps_result: bool,
}

/// Why a tool call has no output.
#[derive(Debug, thiserror::Error)]
pub enum ToolFailure {
    /// Its component has no free slot and a full queue.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The call did not complete: bad arguments, a trap, a limit, a denied capability, …
    #[error(transparent)]
    Call(#[from] CallError),
    /// The function returned the `err` case of its WIT `result`; the message is its payload.
    #[error("{0}")]
    ToolError(String),
}

impl ToolFailure {
    /// A short name of the failure for logs and metrics: `busy`, `tool_error`, or the [`CallError::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ToolFailure::Busy(_) => "busy",
            ToolFailure::Call(e) => e.kind(),
            ToolFailure::ToolError(_) => "tool_error",
        }
    }
}

/// What one tool call came to: its output or why there is none, and its cost when it ran.
pub struct ToolCall {
    /// The tool's output (for a function returning `result<T, E>`, its `T`), or why there is none.
    pub output: Result<Value, ToolFailure>,
    /// What the call cost; `None` when it never ran (busy).
    pub stats: Option<CallStats>,
}

impl ToolCall {
    /// The outcome as metrics and logs name it: `ok`, `err` (the tool's own error), or the failure's kind.
    pub fn outcome(&self) -> &'static str {
        match &self.output {
            Ok(_) => "ok",
            Err(ToolFailure::ToolError(_)) => "err",
            Err(failure) => failure.kind(),
        }
    }
}

impl ServedTool {
    /// Call this tool with JSON `args` in a fresh instance: the one tool-call path of every front end (the MCP
    /// server for fresh-mode components, agents' `tools.call`). It waits for a slot of the component's gate.
    pub async fn call(&self, engine: &AreEngine, args: &Value) -> ToolCall {
        self.call_in(|| {
            self.component
                .loaded
                .call(engine, &self.function, args, None)
        })
        .await
    }

    /// [`ServedTool::call`], with the instance chosen by the caller: `run` makes the call once a slot is free
    /// (the MCP server runs session-mode components in the session's instance).
    pub async fn call_in<F>(&self, run: impl FnOnce() -> F) -> ToolCall
    where
        F: Future<Output = CallReport>,
    {
        let report = match self.component.gate.enter().await {
            Err(busy) => {
                return ToolCall {
                    output: Err(busy.into()),
                    stats: None,
                };
            }
            Ok(_slot) => run().await,
        };
        ToolCall {
            output: self.output(report.outcome),
            stats: Some(report.stats),
        }
    }

    /// The tool's output from a call's report: a `result`'s `ok` payload is the output, its `err` a
    /// [`ToolFailure::ToolError`].
    fn output(&self, outcome: Result<CallOutput, CallError>) -> Result<Value, ToolFailure> {
        match outcome {
            Err(e) => Err(ToolFailure::Call(e)),
            Ok(mut out) if out.is_err => {
                Err(ToolFailure::ToolError(match out.value["err"].take() {
                    Value::String(s) => s,
                    Value::Null => "the tool reported an error without details".to_string(),
                    other => other.to_string(),
                }))
            }
            Ok(mut out) if self.unwraps_result => Ok(out.value["ok"].take()),
            Ok(out) => Ok(out.value),
        }
    }
}

/// Caps the calls of one component that run at once, with a bounded queue behind them.
pub struct Gate {
    slots: Semaphore,
    waiting: AtomicUsize,
    max_concurrency: u32,
    queue: u32,
}

/// Why a call could not get a slot.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "busy: {running} calls of this component are running and {queued} are queued (max_concurrency {running}, \
     queue {queued}); retry shortly"
)]
pub struct Busy {
    /// The concurrency limit.
    pub running: u32,
    /// The queue limit.
    pub queued: u32,
}

impl Gate {
    /// A gate for `max_concurrency` running calls and `queue` waiting ones.
    pub fn new(max_concurrency: u32, queue: u32) -> Gate {
        let max_concurrency = max_concurrency.max(1);
        Gate {
            slots: Semaphore::new(max_concurrency as usize),
            waiting: AtomicUsize::new(0),
            max_concurrency,
            queue,
        }
    }

    /// Wait for a slot, or fail at once when the queue is full.
    ///
    /// # Errors
    /// [`Busy`] when `queue` calls are already waiting.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        let busy = Busy {
            running: self.max_concurrency,
            queued: self.queue,
        };
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue as usize {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy);
        }
        let permit = self.slots.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| busy)
    }
}

/// Everything `are serve` offers at one moment; replaced as a whole on reload.
pub struct Catalog {
    /// Tools sorted by name.
    tools: Vec<ServedTool>,
    by_name: HashMap<String, usize>,
    /// Components by name.
    pub components: BTreeMap<String, Arc<ServedComponent>>,
}

/// A component of the policy that could not be served, and why.
#[derive(Debug)]
pub struct Skipped {
    /// Its name in the policy.
    pub component: String,
    /// What went wrong.
    pub error: String,
}

impl Catalog {
    /// Build the catalog from components that are already loaded.
    pub fn new(components: BTreeMap<String, Arc<ServedComponent>>) -> Catalog {
        let mut tools: Vec<ServedTool> = components
            .iter()
            .flat_map(|(name, served)| tools_of(name, served))
            .collect();
        tools.sort_by(|a, b| a.tool.name.cmp(&b.tool.name));
        let mut spellings: HashMap<&str, usize> = HashMap::new();
        for t in &tools {
            *spellings.entry(t.tool.portable_name.as_str()).or_default() += 1;
        }
        let clashing: Vec<bool> = tools
            .iter()
            .map(|t| spellings[t.tool.portable_name.as_str()] > 1)
            .collect();
        for (t, clashes) in tools.iter_mut().zip(clashing) {
            if clashes {
                t.tool.portable_name = hashed_name(&t.tool.name);
            }
        }
        // Both spellings find a tool: dotted names always hold a `.`, portable ones never do.
        let by_name = tools
            .iter()
            .enumerate()
            .flat_map(|(i, t)| [(t.tool.name.clone(), i), (t.tool.portable_name.clone(), i)])
            .collect();
        Catalog {
            tools,
            by_name,
            components,
        }
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> &[ServedTool] {
        &self.tools
    }

    /// The tool called `name`, in its dotted or its portable spelling.
    pub fn tool(&self, name: &str) -> Option<&ServedTool> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Up to `page_size` tools after the one named `cursor` (from the start without one), and the cursor of the
    /// next page. Cursors are tool names, so pages stay consistent across reloads.
    pub fn page(&self, cursor: Option<&str>, page_size: usize) -> (&[ServedTool], Option<String>) {
        let start = match cursor {
            Some(after) => self
                .tools
                .partition_point(|t| t.tool.name.as_str() <= after),
            None => 0,
        };
        let end = (start + page_size.max(1)).min(self.tools.len());
        let page = &self.tools[start..end];
        let next = (end < self.tools.len())
            .then(|| page.last().map(|t| t.tool.name.to_string()))
            .flatten();
        (page, next)
    }
}

/// The spec and serving settings of the policy's component `name`.
pub fn served_settings(
    policy: &Policy,
    name: &str,
    c: &ComponentPolicy,
) -> Option<(ComponentSpec, Settings)> {
    let spec = ComponentSpec::from_policy(policy, name, LimitsSection::default())?;
    let settings = Settings {
        mode: c.mode,
        max_concurrency: c.max_concurrency,
        queue: c.queue,
        idle_timeout: c.idle_timeout.map_or(Duration::from_secs(300), |t| t.0),
        task: c.task,
    };
    Some((spec, settings))
}

/// How one component is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Fresh instance per call, or one per session.
    pub mode: InstanceMode,
    /// Calls at once.
    pub max_concurrency: u32,
    /// Calls waiting.
    pub queue: u32,
    /// Idle session instances are dropped after this long.
    pub idle_timeout: Duration,
    /// Whether calls run as MCP tasks.
    pub task: TaskMode,
}

impl ServedComponent {
    /// Wrap a loaded component with its settings.
    pub fn new(loaded: LoadedComponent, settings: Settings, generation: u64) -> ServedComponent {
        ServedComponent {
            loaded,
            settings,
            gate: Gate::new(settings.max_concurrency, settings.queue),
            generation,
        }
    }
}

/// The tools of one component. A function is `component.function`, or `component.interface.function` when the
/// component exports the same function name from two interfaces.
fn tools_of(component: &str, served: &Arc<ServedComponent>) -> Vec<ServedTool> {
    let desc = &served.loaded.description;
    let callable: Vec<&ExportedFunction> = desc.tools().collect();
    let mut name_counts: HashMap<&str, usize> = HashMap::new();
    for f in &callable {
        *name_counts.entry(f.name.as_str()).or_default() += 1;
    }
    let mut tools = Vec::new();
    for f in callable {
        let name = match (&f.short_interface, name_counts[f.name.as_str()]) {
            (Some(iface), n) if n > 1 => format!("{component}.{iface}.{}", f.name),
            _ => format!("{component}.{}", f.name),
        };
        if name.len() > MAX_TOOL_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            tracing::warn!(tool = %name, "skipping a function whose tool name is not a valid MCP tool name");
            continue;
        }
        let (output_schema, unwraps_result) = output_schema(desc, f);
        let description = tool_description(desc, f);
        let input = match schema::input_schema(desc, f) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        tools.push(ServedTool {
            tool: ToolDefinition {
                portable_name: portable_name(&name),
                name,
                description,
                input_schema: Arc::new(input),
                output_schema: output_schema.map(Arc::new),
            },
            component: served.clone(),
            function: f.qualified_name().to_string(),
            unwraps_result,
        });
    }
    tools
}

/// The spelling of the dotted tool name `dotted` that every model API accepts as a function name: each `.` becomes
/// `__` (`text.word-count` is `text__word-count`). A name that would then be longer than [`MAX_PORTABLE_NAME`] is
/// cut and ends in `_` and 8 hex digits of the SHA-256 of the dotted name, so it is stable and still tells whose it
/// is. (The catalog also gives the hashed form to two tools whose portable names would be the same, which only
/// component names holding `__` can cause.)
pub fn portable_name(dotted: &str) -> String {
    let plain = dotted.replace('.', "__");
    if plain.len() <= MAX_PORTABLE_NAME
        && plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        plain
    } else {
        hashed_name(dotted)
    }
}

/// `dotted` in portable characters, shortened: `{start of the component and interface}_{8 hex digits of the
/// SHA-256 of the dotted name}__{function}` (the function cut to 32 characters), at most [`MAX_PORTABLE_NAME`].
fn hashed_name(dotted: &str) -> String {
    let digest = are_policy::common::hex(&are_policy::common::sha256(dotted.as_bytes())[..4]);
    let portable = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let (owner, function) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let function: String = portable(function).chars().take(32).collect();
    let room = MAX_PORTABLE_NAME - function.len() - "_".len() - digest.len() - "__".len();
    let owner: String = portable(&owner.replace('.', "__"))
        .chars()
        .take(room)
        .collect();
    format!("{owner}_{digest}__{function}")
}

/// The description: the function's doc comment, else its WIT signature.
fn tool_description(desc: &crate::describe::ComponentDescription, f: &ExportedFunction) -> String {
    if let Some(docs) = &f.docs {
        return docs.clone();
    }
    let params: Vec<String> = f
        .params
        .iter()
        .map(|(name, ty)| format!("{name}: {}", schema::wit_type_name(desc.resolve(), ty)))
        .collect();
    let result = f
        .result
        .as_ref()
        .map(|ty| format!(" -> {}", schema::wit_type_name(desc.resolve(), ty)))
        .unwrap_or_default();
    format!("{}({}){result}", f.qualified_name(), params.join(", "))
}

/// MCP wants an object for structured output, so a tool's output is `{"result": …}`. For a function returning
/// `result<T, E>` the output is `T` (the `err` case becomes a tool error). Also says whether that unwrapping
/// applies.
fn output_schema(
    desc: &crate::describe::ComponentDescription,
    f: &ExportedFunction,
) -> (Option<Map<String, Value>>, bool) {
    let Some(ty) = &f.result else {
        return (None, false);
    };
    let resolve = desc.resolve();
    let (inner, unwraps) = match ok_type(resolve, ty) {
        Some(ok) => (ok, true),
        None => (Some(*ty), false),
    };
    let result_schema = match inner {
        Some(t) => {
            schema::type_schema(resolve, &t, Direction::Output).unwrap_or(Value::Bool(false))
        }
        None => json!({ "type": "null" }),
    };
    let schema = schema::nest(result_schema, |result| {
        json!({
            "type": "object",
            "properties": { "result": result },
            "required": ["result"],
            "additionalProperties": false,
        })
    });
    match schema {
        Value::Object(map) => (Some(map), unwraps),
        _ => (None, unwraps),
    }
}

/// For `result<T, E>` (through aliases), `Some(T)` (`Some(None)` without an ok payload); else `None`.
fn ok_type(resolve: &wit_parser::Resolve, ty: &Type) -> Option<Option<Type>> {
    let Type::Id(id) = ty else { return None };
    match &resolve.types[*id].kind {
        TypeDefKind::Result(r) => Some(r.ok),
        TypeDefKind::Type(inner) => ok_type(resolve, inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_queues_then_refuses() {
        let gate = Arc::new(Gate::new(1, 1));
        let first = gate.enter().await.expect("a free slot");
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.map(drop) })
        };
        tokio::task::yield_now().await;
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.enter().await.map(drop),
            Err(Busy {
                running: 1,
                queued: 1
            })
        );
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok(()));
    }

    #[test]
    fn portable_names_fit_the_model_apis_and_stay_stable() {
        let valid = |n: &str| {
            (1..=MAX_PORTABLE_NAME).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        assert_eq!(portable_name("types.divide"), "types__divide");
        assert_eq!(
            portable_name("text.words.word-count"),
            "text__words__word-count"
        );
        let long = format!("{}.a-function-with-a-long-name", "c".repeat(40));
        let short = portable_name(&long);
        assert!(valid(&short), "{short}");
        assert!(short.starts_with("cccc"), "{short}");
        assert!(short.ends_with("__a-function-with-a-long-name"), "{short}");
        assert_eq!(short, portable_name(&long), "the same name every time");
        let other = format!("{}.a-function-with-a-long-name-too", "c".repeat(40));
        assert_ne!(portable_name(&other), short, "different names stay apart");
        assert!(valid(&hashed_name("a__b.c")));
        assert_ne!(hashed_name("a__b.c"), hashed_name("a.b.c"));
    }
}
