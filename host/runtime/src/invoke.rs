//! Calling an exported function with JSON: find it, convert the arguments, run it in a fresh sandboxed
//! instance, convert the result, and report what it cost.

use crate::caps::denied::CapabilityNotGranted;
use crate::component::LoadedComponent;
use crate::describe::{ExportedFunction, LookupError};
use crate::engine::AreEngine;
use crate::sandbox::{self, HostState, InstanceBuilder};
use crate::value::{self, ValueError};
use are_policy::Limits;
use are_policy::common::fmt_bytes;
use bytes::Bytes;
use serde::Serialize;
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime::component::Val;
use wasmtime::{Store, Trap};

/// Why a call did not produce a result. Messages say what happened, which limit, and its value, so that a
/// person or a model can act on them.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No such function, or an ambiguous name.
    #[error(transparent)]
    UnknownFunction(#[from] LookupError),
    /// The function exists but cannot be called with JSON.
    #[error("function `{function}` cannot be called as a tool: {reason}")]
    Unsupported {
        /// The function.
        function: String,
        /// Why (a resource, stream or future in its signature).
        reason: String,
    },
    /// The arguments do not fit the parameter types.
    #[error("invalid arguments: {0}")]
    InvalidArguments(#[from] ValueError),
    /// The guest called an import its policy does not grant.
    #[error("{0}")]
    CapabilityDenied(CapabilityNotGranted),
    /// The call used all of its fuel.
    #[error(
        "out of fuel: the call used its whole budget of {limit} fuel units (limits.fuel); raise the limit or ask for less work"
    )]
    FuelExhausted {
        /// The fuel limit.
        limit: u64,
    },
    /// The call ran past its wall-clock timeout.
    #[error("timed out: the call ran longer than its {} timeout (limits.timeout)", humantime::format_duration(*.limit))]
    Timeout {
        /// The timeout.
        limit: Duration,
    },
    /// The instance asked for more memory than allowed.
    #[error("memory limit exceeded: the instance asked for {} in total, over its limit of {} (limits.memory)", fmt_bytes(*.requested), fmt_bytes(*.limit))]
    MemoryExceeded {
        /// The limit in bytes.
        limit: u64,
        /// The total the refused growth would have reached.
        requested: u64,
    },
    /// The result, stdout or stderr exceeded `max_output`. A result counts three ways: the host's copy of its
    /// values, its JSON values and its JSON text each stay within `max_output`.
    #[error("output limit exceeded: the guest's {stream} went over max_output of {} (limits.max_output){}", fmt_bytes(*.limit), output_hint(stream))]
    OutputTooLarge {
        /// `result`, `stdout` or `stderr`.
        stream: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The guest panicked.
    #[error("guest panicked: {message}")]
    Panic {
        /// The panic message the guest printed.
        message: String,
    },
    /// The guest trapped.
    #[error("guest trapped: {message}")]
    Trap {
        /// The trap, and where it happened when known.
        message: String,
    },
    /// The host could not set up the instance.
    #[error("cannot start the component: {0}")]
    Instantiate(String),
    /// The guest returned a value that does not fit its own declared result type.
    #[error("the function returned a value that does not match its signature: {0}")]
    InvalidResult(ValueError),
}

impl CallError {
    /// A short stable name for this kind of failure (for metrics and JSON output).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::UnknownFunction(_) => "unknown_function",
            CallError::Unsupported { .. } => "unsupported",
            CallError::InvalidArguments(_) => "invalid_arguments",
            CallError::CapabilityDenied(_) => "capability_denied",
            CallError::FuelExhausted { .. } => "fuel_exhausted",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryExceeded { .. } => "memory_exceeded",
            CallError::OutputTooLarge { .. } => "output_too_large",
            CallError::Panic { .. } => "panic",
            CallError::Trap { .. } => "trap",
            CallError::Instantiate(_) => "instantiate",
            CallError::InvalidResult(_) => "invalid_result",
        }
    }
}

/// How a stream counts against `max_output`, for [`CallError::OutputTooLarge`].
fn output_hint(stream: &str) -> String {
    if stream == "result" {
        format!(
            "; a result counts its JSON and the host's copy of its values, about {} bytes per value, list item \
             or byte",
            value::VAL_BYTES
        )
    } else {
        String::new()
    }
}

/// What an embedder gives one instance: who its calls are recorded as, and state its host functions reach.
pub struct InstanceExtension {
    /// The caller its calls are recorded under in the audit trail (`agent:TYPE/KEY`).
    pub caller: String,
    /// The embedder's state (see [`HostState::extension_mut`](crate::sandbox::HostState::extension_mut)).
    pub state: Box<dyn std::any::Any + Send>,
}

/// Serialize a duration as whole microseconds.
pub fn serialize_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What a call cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallStats {
    /// Fuel consumed (`None` when the engine does not meter fuel).
    pub fuel_consumed: Option<u64>,
    /// The fuel limit (`None` is unlimited).
    pub fuel_limit: Option<u64>,
    /// Wall time of the whole call, instantiation included.
    #[serde(rename = "wall_time_us", serialize_with = "serialize_micros")]
    pub wall_time: Duration,
    /// Of which instantiation.
    #[serde(rename = "instantiate_us", serialize_with = "serialize_micros")]
    pub instantiate_time: Duration,
    /// Highest memory (linear memories plus tables) of the instance, in bytes.
    pub peak_memory: u64,
    /// Bytes the guest wrote to stdout.
    pub stdout_bytes: usize,
    /// Bytes the guest wrote to stderr.
    pub stderr_bytes: usize,
    /// Bytes of the JSON result.
    pub result_bytes: usize,
}

/// A finished call: its outcome, what it cost, and what the guest printed.
#[derive(Debug)]
pub struct CallReport {
    /// The JSON result, or why there is none.
    pub outcome: Result<CallOutput, CallError>,
    /// Cost of the call (filled in even when it failed).
    pub stats: CallStats,
    /// The guest's stdout.
    pub stdout: Bytes,
    /// The guest's stderr.
    pub stderr: Bytes,
}

/// A function's JSON result.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The result (`null` when the function returns nothing).
    pub value: serde_json::Value,
    /// The function returned a WIT `result` in its `err` case.
    pub is_err: bool,
}

impl LoadedComponent {
    /// Call `function` with JSON `args` in a fresh instance, under this component's limits or `limits` when given.
    pub async fn call(
        &self,
        engine: &AreEngine,
        function: &str,
        args: &serde_json::Value,
        limits: Option<Limits>,
    ) -> CallReport {
        let limits = limits.unwrap_or(self.spec.limits);
        traced(self, self.audit_scope(None), function, async {
            let started = Instant::now();
            let prepared = match self.prepare(function, args, &limits) {
                Ok(p) => p,
                Err(e) => return CallReport::failed(e, &limits),
            };
            let mut instance = match self.instantiate(engine, &limits).await {
                Ok(i) => i,
                Err(e) => return CallReport::failed(e, &limits),
            };
            let mut report = instance.run(self, engine, prepared, &limits).await;
            report.stats.instantiate_time = instance.instantiated_in;
            report.stats.wall_time = started.elapsed();
            report
        })
        .await
    }

    /// A new instance of this component under `limits` (its memory limit holds for the instance's whole life;
    /// fuel and timeout are per call). Use it for several calls with [`ToolInstance::call`].
    ///
    /// # Errors
    /// [`CallError::Instantiate`] when a grant cannot be applied, or a limit or trap hits during start-up.
    pub async fn instantiate(
        &self,
        engine: &AreEngine,
        limits: &Limits,
    ) -> Result<ToolInstance, CallError> {
        self.instantiate_with(engine, limits, None).await
    }

    /// [`LoadedComponent::instantiate`] for an embedder's instance (an agent): its host functions reach
    /// `extension` (see [`HostState::extension_mut`](crate::sandbox::HostState::extension_mut)), and the audit
    /// trail records `caller` as who made its calls.
    ///
    /// # Errors
    /// As [`LoadedComponent::instantiate`].
    pub async fn instantiate_with(
        &self,
        engine: &AreEngine,
        limits: &Limits,
        extension: Option<InstanceExtension>,
    ) -> Result<ToolInstance, CallError> {
        let started = Instant::now();
        let (caller, extension) =
            extension.map_or((None, None), |e| (Some(e.caller), Some(e.state)));
        let audit = self.audit_scope(caller.as_deref());
        let state = InstanceBuilder::build(
            &self.spec.grants,
            &self.spec.args,
            self.spec.base_dir.clone(),
            limits,
            extension,
            audit,
        )
        .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        let mut store = sandbox::new_store(engine, state);
        let deadline = sandbox::arm(&mut store, engine, limits)
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        let _epochs = engine.activate_epochs();
        let instance = match tokio::time::timeout_at(
            deadline.into(),
            self.pre.instantiate_async(&mut store),
        )
        .await
        {
            Ok(Ok(instance)) => instance,
            Ok(Err(e)) => {
                // The pooling allocator has no free slot: the host is full, the guest did nothing wrong.
                if let Some(full) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
                    return Err(CallError::Instantiate(format!(
                        "no free instance slot ({full}): too many instances are alive at once for the \
                         instance pool ([serve] max_instances); retry shortly"
                    )));
                }
                let stderr = store.data().capture().stderr();
                return Err(classify(e, store.data(), limits, &stderr));
            }
            Err(_) => {
                return Err(CallError::Timeout {
                    limit: limits.timeout,
                });
            }
        };
        Ok(ToolInstance {
            store,
            instance,
            dead: false,
            instantiated_in: started.elapsed(),
        })
    }

    /// Resolve `function` and convert `args` (within `limits.max_output` of host bytes), before any instance
    /// exists.
    fn prepare(
        &self,
        function: &str,
        args: &serde_json::Value,
        limits: &Limits,
    ) -> Result<Prepared<'_>, CallError> {
        let func = self.description.find(function)?;
        if let Some(reason) = &func.unsupported {
            return Err(CallError::Unsupported {
                function: func.qualified_name().to_string(),
                reason: reason.clone(),
            });
        }
        let budget = usize::try_from(limits.max_output).unwrap_or(usize::MAX);
        let params = value::args_to_vals_within(&self.description, func, args, budget)?;
        Ok(Prepared { func, params })
    }

    fn export_index(
        &self,
        func: &ExportedFunction,
    ) -> Option<wasmtime::component::ComponentExportIndex> {
        match &func.interface {
            Some(iface) => {
                let (_, parent) = self.component.get_export(None, iface)?;
                self.component.get_export_index(Some(&parent), &func.name)
            }
            None => self.component.get_export_index(None, &func.name),
        }
    }

    /// The JSON of what the guest returned. Wasmtime has already lifted `results` within the store's hostcall
    /// budget ([`sandbox::arm`]); building the JSON values and measuring their text stay within
    /// `limits.max_output` too, so a result that is small in linear memory cannot grow large on the host.
    fn convert_result(
        &self,
        func: &ExportedFunction,
        results: Vec<Val>,
        limits: &Limits,
        stats: &mut CallStats,
    ) -> Result<CallOutput, CallError> {
        let too_large = CallError::OutputTooLarge {
            stream: "result",
            limit: limits.max_output,
        };
        let budget = usize::try_from(limits.max_output).unwrap_or(usize::MAX);
        let value = match value::result_to_json_within(&self.description, func, &results, budget) {
            Ok(value) => value.unwrap_or(serde_json::Value::Null),
            Err(e) if e.is_over_budget() => return Err(too_large),
            Err(e) => return Err(CallError::InvalidResult(e)),
        };
        let is_err = matches!(results.first(), Some(Val::Result(Err(_))));
        drop(results);
        // Count the text without writing it: escapes can make it several times the size of its strings.
        let mut text = TextSize::within(limits.max_output);
        let fits = serde_json::to_writer(&mut text, &value).is_ok();
        stats.result_bytes = usize::try_from(text.bytes).unwrap_or(usize::MAX);
        if !fits {
            return Err(too_large);
        }
        Ok(CallOutput { value, is_err })
    }
}

/// Counts the bytes written to it, and refuses a write that would go past `limit` (which it does not count).
struct TextSize {
    bytes: u64,
    limit: u64,
}

impl TextSize {
    fn within(limit: u64) -> TextSize {
        TextSize { bytes: 0, limit }
    }
}

impl std::io::Write for TextSize {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = self.bytes.saturating_add(buf.len() as u64);
        if bytes > self.limit {
            return Err(std::io::Error::other("over max_output"));
        }
        self.bytes = bytes;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A function resolved and its arguments converted.
struct Prepared<'a> {
    func: &'a ExportedFunction,
    params: Vec<Val>,
}

/// One live instance of a component. A call that traps, times out or runs out of fuel leaves it dead (its
/// state may be half-updated); drop it and instantiate again.
pub struct ToolInstance {
    store: Store<HostState>,
    instance: wasmtime::component::Instance,
    dead: bool,
    instantiated_in: Duration,
}

impl ToolInstance {
    /// Call `function` with JSON `args` on this instance, with fresh fuel and a fresh deadline from `limits`.
    pub async fn call(
        &mut self,
        component: &LoadedComponent,
        engine: &AreEngine,
        function: &str,
        args: &serde_json::Value,
        limits: &Limits,
    ) -> CallReport {
        let audit = self.store.data().audit.clone();
        traced(component, audit, function, async {
            let started = Instant::now();
            if self.dead {
                let gone = CallError::Instantiate(
                    "this instance failed earlier and cannot be used again".into(),
                );
                return CallReport::failed(gone, limits);
            }
            let mut report = match component.prepare(function, args, limits) {
                Ok(prepared) => self.run(component, engine, prepared, limits).await,
                Err(e) => CallReport::failed(e, limits),
            };
            report.stats.wall_time = started.elapsed();
            report
        })
        .await
    }

    /// Whether a failed call has made this instance unusable.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The instance's host state (between calls).
    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    async fn run(
        &mut self,
        component: &LoadedComponent,
        engine: &AreEngine,
        prepared: Prepared<'_>,
        limits: &Limits,
    ) -> CallReport {
        let Prepared { func, params } = prepared;
        let mut stats = CallStats::new(limits);
        let deadline = match sandbox::arm(&mut self.store, engine, limits) {
            Ok(d) => d,
            Err(e) => {
                return CallReport::failed_with(CallError::Instantiate(format!("{e:#}")), stats);
            }
        };
        let mark = self.store.data().capture().mark();
        let _epochs = engine.activate_epochs();
        let mut results = vec![Val::Bool(false); usize::from(func.result.is_some())];
        let store = &mut self.store;
        let instance = self.instance;
        let run = async {
            let export = component.export_index(func).ok_or_else(|| {
                wasmtime::format_err!(
                    "export `{}` not found in the component",
                    func.qualified_name()
                )
            })?;
            let f = instance.get_func(&mut *store, export).ok_or_else(|| {
                wasmtime::format_err!("export `{}` is not a function", func.qualified_name())
            })?;
            f.call_async(&mut *store, &params, &mut results).await
        };
        let ran = match tokio::time::timeout_at(deadline.into(), run).await {
            Ok(r) => r.map_err(Some),
            Err(_) => Err(None),
        };
        drop(params);
        if engine.config().fuel {
            let left = self.store.get_fuel().unwrap_or(0);
            stats.fuel_consumed = Some(limits.fuel.unwrap_or(u64::MAX).saturating_sub(left));
        }
        let state = self.store.data();
        stats.peak_memory = state.limiter().peak();
        let (stdout, stderr) = state.capture().since(mark);
        stats.stdout_bytes = stdout.len();
        stats.stderr_bytes = stderr.len();
        let outcome = match ran {
            // A guest that handled its refused write and returned still went over the limit: its output was cut.
            Ok(()) => match state.capture().overflowed() {
                Some(stream) => Err(CallError::OutputTooLarge {
                    stream,
                    limit: limits.max_output,
                }),
                None => component.convert_result(func, results, limits, &mut stats),
            },
            Err(None) => Err(CallError::Timeout {
                limit: limits.timeout,
            }),
            Err(Some(error)) => Err(classify(error, state, limits, &stderr)),
        };
        // Any failure inside the guest may leave it half-way through an update: never reuse it.
        self.dead = matches!(
            outcome,
            Err(CallError::Timeout { .. }
                | CallError::FuelExhausted { .. }
                | CallError::MemoryExceeded { .. }
                | CallError::OutputTooLarge { .. }
                | CallError::Panic { .. }
                | CallError::Trap { .. }
                | CallError::CapabilityDenied(_)
                | CallError::Instantiate(_))
        );
        CallReport {
            outcome,
            stats,
            stdout,
            stderr,
        }
    }
}

impl CallReport {
    /// A report for a call that failed before the guest ran.
    pub fn failed(error: CallError, limits: &Limits) -> CallReport {
        Self::failed_with(error, CallStats::new(limits))
    }

    fn failed_with(error: CallError, stats: CallStats) -> CallReport {
        CallReport {
            outcome: Err(error),
            stats,
            stdout: Bytes::new(),
            stderr: Bytes::new(),
        }
    }
}

impl CallStats {
    fn new(limits: &Limits) -> CallStats {
        CallStats {
            fuel_limit: limits.fuel,
            ..CallStats::default()
        }
    }
}

/// Run `call` inside a `call` span that records component, function, fuel, duration and outcome, and record
/// it in the audit trail.
async fn traced(
    component: &LoadedComponent,
    audit: Option<crate::audit::AuditScope>,
    function: &str,
    call: impl Future<Output = CallReport>,
) -> CallReport {
    let span = tracing::info_span!(
        "call",
        component = %component.spec.name,
        function,
        fuel = tracing::field::Empty,
        duration_us = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let report = call.instrument(span.clone()).await;
    span.record("fuel", report.stats.fuel_consumed);
    span.record("duration_us", report.stats.wall_time.as_micros() as u64);
    span.record(
        "outcome",
        report
            .outcome
            .as_ref()
            .map_or_else(|e| e.kind(), |o| if o.is_err { "err" } else { "ok" }),
    );
    tracing::debug!(parent: &span, "call finished");
    if let Some(audit) = audit {
        let outcome = match &report.outcome {
            Ok(out) if out.is_err => "err".to_string(),
            Ok(_) => "ok".to_string(),
            Err(CallError::CapabilityDenied(_)) => "denied".to_string(),
            Err(e) => format!("error:{}", e.kind()),
        };
        let mut detail = serde_json::json!({
            "function": function,
            "fuel": report.stats.fuel_consumed,
            "duration_us": report.stats.wall_time.as_micros() as u64,
            "peak_memory": report.stats.peak_memory,
        });
        if let Err(e) = &report.outcome {
            detail["error"] = e.to_string().into();
        }
        audit.record("call", &outcome, detail);
    }
    report
}

/// Turn a failed call into the most specific [`CallError`].
fn classify(
    error: wasmtime::Error,
    state: &HostState,
    limits: &Limits,
    stderr: &[u8],
) -> CallError {
    if let Some(denied) = error.downcast_ref::<CapabilityNotGranted>() {
        return CallError::CapabilityDenied(denied.clone());
    }
    let trap = error.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::OutOfFuel) => {
            return CallError::FuelExhausted {
                limit: limits.fuel.unwrap_or(u64::MAX),
            };
        }
        Some(Trap::Interrupt) => {
            return CallError::Timeout {
                limit: limits.timeout,
            };
        }
        _ => {}
    }
    if let Some(requested) = state.limiter().refused() {
        return CallError::MemoryExceeded {
            limit: limits.memory,
            requested,
        };
    }
    if let Some(stream) = state.capture().overflowed() {
        return CallError::OutputTooLarge {
            stream,
            limit: limits.max_output,
        };
    }
    if state.was_lifting_result() && hostcall_fuel_ran_out(&error) {
        return CallError::OutputTooLarge {
            stream: "result",
            limit: limits.max_output,
        };
    }
    if let Some(message) = panic_message(stderr) {
        return CallError::Panic { message };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallError::Trap {
            message: format!(
                "the guest called exit({}) instead of returning a result",
                exit.0
            ),
        };
    }
    let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>();
    let mut message = match trap {
        Some(Trap::StackOverflow) => "stack overflow (the guest recursed too deeply)".to_string(),
        Some(Trap::MemoryOutOfBounds) => match backtrace.and_then(deepest_recursion) {
            Some((function, depth)) => format!(
                "{}; this may be a stack overflow: `{function}` was {depth} calls deep, and a guest compiled \
                 from Rust or C keeps its stack at the bottom of linear memory, which deep recursion with large \
                 frames runs off (recurse less deeply, or move large locals to the heap)",
                Trap::MemoryOutOfBounds
            ),
            None => Trap::MemoryOutOfBounds.to_string(),
        },
        Some(t) => t.to_string(),
        None => error.root_cause().to_string(),
    };
    if let Some(frame) = backtrace.and_then(|bt| {
        bt.frames().iter().find_map(|f| {
            f.func_name()
                .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        })
    }) {
        message.push_str(&format!(" (in `{frame}`)"));
    }
    CallError::Trap { message }
}

/// Calls of one function on the stack from which a trap reads as possible recursion run wild.
const DEEP_RECURSION: usize = 8;

/// The function with the most frames on `backtrace`, when it has at least [`DEEP_RECURSION`] of them: the name
/// (demangled, or its index) and the count.
fn deepest_recursion(backtrace: &wasmtime::WasmBacktrace) -> Option<(String, usize)> {
    // A component may hold several core modules: a function is its index and its name together.
    let mut counts = std::collections::HashMap::<(u32, Option<&str>), usize>::new();
    for frame in backtrace.frames() {
        *counts
            .entry((frame.func_index(), frame.func_name()))
            .or_default() += 1;
    }
    let ((index, name), depth) = counts.into_iter().max_by_key(|(_, depth)| *depth)?;
    if depth < DEEP_RECURSION {
        return None;
    }
    let name = name.map_or_else(
        || format!("function {index}"),
        |name| format!("{:#}", rustc_demangle::demangle(name)),
    );
    Some((name, depth))
}

/// Whether wasmtime stopped copying values from the guest because the store's hostcall fuel ran out (its error
/// type is private; its message is pinned by the result-amplification tests).
fn hostcall_fuel_ran_out(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

/// The message of a Rust panic the guest printed to stderr, if it printed one.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("panicked at ")?;
    let after = &text[start + "panicked at ".len()..];
    let (location, rest) = after.split_once(":\n").unwrap_or((after, ""));
    let message: Vec<&str> = rest
        .lines()
        .take_while(|l| !l.starts_with("note:"))
        .collect();
    let message = message.join("\n");
    Some(if message.trim().is_empty() {
        format!("at {}", location.trim())
    } else {
        format!("{} (at {})", message.trim(), location.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_rust_panic_messages() {
        let stderr = b"\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nboom: the tool gave up\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).unwrap(),
            "boom: the tool gave up (at src/lib.rs:12:9)"
        );
        assert_eq!(panic_message(b"all fine"), None);
    }

    #[test]
    fn error_messages_name_the_limit_and_its_value() {
        let e = CallError::MemoryExceeded {
            limit: 64 << 20,
            requested: 80 << 20,
        };
        assert_eq!(
            e.to_string(),
            "memory limit exceeded: the instance asked for 80.0 MiB in total, over its limit of 64.0 MiB (limits.memory)"
        );
        let e = CallError::Timeout {
            limit: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "timed out: the call ran longer than its 1s 500ms timeout (limits.timeout)"
        );
    }
}
