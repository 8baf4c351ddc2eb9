//! `are.toml`, the policy: which components exist, what each may reach, and how much it may spend.
//!
//! Nothing is granted by default. Every table rejects keys it does not know, and every error names the file, line
//! and column, so a typo in a grant is an error instead of a silent denial.
//!
//! ```toml
//! [defaults.limits]
//! fuel = 1_000_000_000        # per call, or "unlimited"
//! memory = "64 MiB"           # all linear memories and tables of one instance
//! timeout = "5s"              # wall clock, enforced with epochs
//! max_output = "1 MiB"        # result JSON, and each of stdout and stderr
//! open_files = 64             # files and directories one instance holds open at once
//! connections = 16            # sockets and outgoing HTTP connections one instance holds at once
//! max_component_size = "256 MiB" # the component's file or download, checked before it is read
//!
//! [component.fetch]
//! source = "tools/fetch.wasm" # relative to this file; or https://… or oci://… (see below)
//! sha256 = "…"                # pin of the component's bytes: a mismatch refuses to load
//! args = ["fetch"]
//! allow.http = ["https://api.example.com", "https://*.example.org:443"]
//! allow.env = { API_BASE = "https://api.example.com" }
//! allow.fs = [{ host = "./data", guest = "/data", mode = "ro" }]
//! allow.sockets = ["tcp://db.internal:5432"]
//! limits.timeout = "10s"
//! ```
//!
//! # Sources
//!
//! `source` is a path relative to the policy, an `https://` URL, or an `oci://` registry reference
//! ([`source`] has the syntax; `are_runtime::source` fetches):
//!
//! ```toml
//! [component.local]
//! source = "tools/text.wasm"          # sha256 optional; when given, checked before compiling
//!
//! [component.web]
//! source = "https://example.com/tools/text.wasm"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"   # required
//!
//! [component.registry]
//! source = "oci://ghcr.io/org/text@sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
//! # pinned by the manifest digest; `oci://ghcr.io/org/text:1.0` (a tag) needs `sha256` instead
//! ```
//!
//! A remote source without a pin is refused (the error gives the digest to pin) unless `are` runs with
//! `--allow-unpinned`. Downloads are cached by digest under `$ARE_CACHE_DIR/sources/`, so a pinned source is fetched
//! once and then loaded offline. Plain `http://` is refused except to a loopback IP literal (`http://127.0.0.1:…`,
//! for tests). Agent types (`[agent.TYPE]`) take the same sources.

#![deny(missing_docs)]

pub mod capability;
pub mod common;
pub mod grants;
pub mod review;
pub mod schema;
pub mod source;

pub use capability::{CapabilityKind, ImportedInterface, Provision, classify_import};
pub use grants::{Grant, Grants};

use schemars::{JsonSchema, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A policy file that could not be read or is not valid. The message names the file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {source}")]
    Read {
        /// The policy file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not valid: bad TOML, an unknown key, a bad value, or a grant that cannot work.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The policy file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A parsed and validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// Relative paths in the policy (sources, mounts) are resolved against this directory.
    pub base_dir: PathBuf,
    /// Limits for every component that does not override them.
    pub defaults: LimitsSection,
    /// Components by name.
    pub components: BTreeMap<String, ComponentPolicy>,
    /// Settings of `are serve`.
    pub serve: ServeSection,
    /// Agent types by name.
    pub agents: BTreeMap<String, AgentPolicy>,
    /// Settings of the agent runtime.
    pub agent_runtime: AgentsSection,
    /// The model endpoint.
    pub llm: LlmSection,
    /// The audit trail.
    pub audit: AuditSection,
}

/// The policy of `are`: which components and agent types exist, what each may reach, and how much it may spend.
/// Nothing is granted by default, and every table refuses keys it does not know.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "are.toml")]
struct PolicyFile {
    /// Components by name (`[component.NAME]`): the tools `are` runs. A name is 1 to 64 of `A-Z a-z 0-9 _ -`;
    /// it prefixes the names of the component's tools.
    #[serde(default)]
    #[schemars(
        with = "BTreeMap<String, ComponentPolicy>",
        extend("propertyNames" = schema::component_name())
    )]
    component: BTreeMap<Spanned<String>, ComponentPolicy>,
    /// Agent types by name (`[agent.TYPE]`), whose instances are `TYPE/KEY`. A name is 1 to 64 of
    /// `A-Z a-z 0-9 _ -`.
    #[serde(default)]
    #[schemars(
        with = "BTreeMap<String, AgentPolicy>",
        extend("propertyNames" = schema::component_name())
    )]
    agent: BTreeMap<Spanned<String>, AgentPolicy>,
    #[serde(default)]
    defaults: DefaultsSection,
    #[serde(default)]
    serve: ServeSection,
    #[serde(default)]
    agents: AgentsSection,
    #[serde(default)]
    llm: LlmSection,
    #[serde(default)]
    audit: AuditSection,
}

/// One `[agent.TYPE]` table: an agent type, whose instances are `TYPE/KEY`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPolicy {
    /// The agent component: a path relative to the policy file, an `https://` URL, or an `oci://` reference, as
    /// for components.
    #[schemars(with = "String")]
    pub source: Spanned<String>,
    /// Optional pin of the component's sha256.
    #[serde(default)]
    pub sha256: Option<Sha256Pin>,
    /// Arguments the guest sees.
    #[serde(default)]
    pub args: Vec<String>,
    /// What its instances may reach: the capabilities of components plus `tools`, `llm`, `memory`, `messaging`.
    #[serde(default)]
    pub allow: Grants,
    /// Limits per message handled (fuel, timeout) and per instance (memory).
    #[serde(default)]
    pub limits: LimitsSection,
    /// An instance with nothing to do is deactivated after this long (default 30s).
    #[serde(default)]
    pub idle_timeout: Option<Timeout>,
    /// Messages (sends plus publishes) one activation may emit (default 1000): stops floods.
    #[serde(default)]
    pub message_budget: Option<u32>,
    /// Most bytes the type's agents hold in the agent store: their messages (payloads, replies, headers) and
    /// memory (default 64 MiB). The oldest finished messages go first; pending messages and memory are refused
    /// past it (`quota-exceeded`).
    #[serde(default)]
    pub store_quota: Option<Size>,
}

/// `[agents]`: settings of the agent runtime (`are run`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsSection {
    /// The SQLite file holding mailboxes and memory, relative to the policy (default `.are/agents.db`).
    pub store: Option<String>,
    /// How many agent-to-agent hops a message may be from its external origin (default 8).
    pub hop_limit: Option<u32>,
    /// How long `send` waits for a reply at most (default 30s; never past the sender's own timeout).
    pub reply_timeout: Option<Timeout>,
    /// Largest payload of a message (external, `send`, `publish`) and of a reply (default 1 MiB): larger ones
    /// are refused with `too-large` and never stored.
    pub max_payload: Option<Size>,
    /// `normal` (default: a crash of the process loses nothing; a power loss may lose the last moments) or
    /// `full` (every commit reaches the disk).
    pub sync: Option<SyncMode>,
}

/// How hard the store pushes writes to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// SQLite `synchronous=NORMAL` in WAL mode: survives a killed process.
    #[default]
    Normal,
    /// SQLite `synchronous=FULL`: survives a power loss.
    Full,
}

/// `[llm]`: the model endpoint agents reach through `allow.llm`. The key stays in the host.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSection {
    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1` (`$ARE_LLM_BASE_URL` overrides).
    /// Without one, agents talk to a built-in scripted model that works offline.
    pub base_url: Option<String>,
    /// The model name sent to the API (`$ARE_LLM_MODEL` overrides).
    pub model: Option<String>,
    /// Name of the environment variable that holds the API key (`$ARE_LLM_API_KEY_ENV` overrides).
    pub api_key_env: Option<String>,
    /// Timeout of one model request (default 60s).
    pub timeout: Option<Timeout>,
}

/// `[defaults]`: what applies to every component and agent that does not say otherwise.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DefaultsSection {
    /// Limits of every call (and every message an agent handles), unless its own `limits` override them; unset
    /// ones keep the built-in defaults (1e9 fuel, 64 MiB, 5s, 1 MiB of output, 64 open files, 16 connections,
    /// 256 MiB of component).
    #[serde(default)]
    limits: LimitsSection,
}

/// One `[component.NAME]` table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentPolicy {
    /// Where the component comes from: a path relative to the policy file, `https://…`, or `oci://…` (see
    /// [`source`]).
    #[schemars(
        with = "String",
        description = "Where the component comes from: a path relative to the policy file, an `https://` URL, or an \
                       `oci://registry/repository[:tag][@sha256:digest]` reference (plain `http://` only to a \
                       loopback IP literal)."
    )]
    pub source: Spanned<String>,
    /// Pin: the hex sha256 the component's bytes must have. Optional for a path; required for a remote source
    /// (unless it is an `oci://…@sha256:` reference, or `--allow-unpinned` is given).
    #[serde(default)]
    pub sha256: Option<Sha256Pin>,
    /// Arguments the guest sees (`wasi:cli/environment.get-arguments`); the host's are never passed.
    #[serde(default)]
    pub args: Vec<String>,
    /// What the component may reach, one entry per capability.
    #[serde(default)]
    #[schemars(with = "schema::ComponentGrants")]
    pub allow: Grants,
    /// Per-call limits that override `[defaults.limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `fresh` (default): a new instance for every call. `session`: one instance per MCP session, so state
    /// persists across that session's calls; it is dropped on a failed call, at session end, or when idle.
    #[serde(default)]
    pub mode: InstanceMode,
    /// Calls of this component that may run at once when serving (default 16).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: u32,
    /// Calls that may wait for a free slot; past this, calls fail at once with a "busy" error (default 64).
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// A session instance unused this long is dropped (default 5m).
    #[serde(default)]
    pub idle_timeout: Option<Timeout>,
    /// Whether `are serve` runs this component's calls as MCP tasks (the `io.modelcontextprotocol/tasks`
    /// extension): `never` (default), `allowed` (when the client supports tasks) or `required` (a client without
    /// tasks cannot call it).
    #[serde(default)]
    pub task: TaskMode,
}

/// Whether calls of a component run as MCP tasks: answered at once with a task id, the result fetched later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskMode {
    /// Calls are answered when they finish.
    #[default]
    Never,
    /// Calls from a client that declared the tasks extension run as tasks; others are answered when they finish.
    Allowed,
    /// Every call runs as a task; a client without the tasks extension gets an error saying it needs it.
    Required,
}

fn default_max_concurrency() -> u32 {
    16
}

fn default_queue() -> u32 {
    64
}

/// How instances are kept when serving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A fresh instance for every call: no state survives a call.
    #[default]
    Fresh,
    /// One instance per MCP session and component.
    Session,
}

/// How `are serve` spells tool names in `tools/list` (both spellings are accepted by `tools/call`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolNames {
    /// `component__function`: what every model API accepts as a function name (`^[a-zA-Z0-9_-]{1,64}$`); a longer
    /// name is cut and ends in `_` and 8 hex digits of the SHA-256 of its dotted form.
    #[default]
    Portable,
    /// `component.function`, as policies and guests name tools.
    Dotted,
}

/// `[serve]`: settings of `are serve`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Instance slots the pooling allocator reserves (default: enough for every component's `max_concurrency`
    /// plus 64 sessions).
    pub max_instances: Option<u32>,
    /// Use the pooling allocator (default true): faster instantiation, fixed address-space reservation.
    pub pooling: Option<bool>,
    /// Tools per `tools/list` page (default 100).
    pub page_size: Option<u32>,
    /// How tool names are spelled: `"portable"` (default, `text__word-count`) or `"dotted"` (`text.word-count`).
    #[serde(default)]
    pub tool_names: ToolNames,
    /// The SQLite file holding MCP tasks, relative to the policy (default `.are/tasks.db`); opened only when a
    /// component has `task = "allowed"` or `"required"`.
    pub task_store: Option<String>,
    /// Origins allowed to call the HTTP endpoint besides loopback ones, e.g. `https://app.example.com`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// MCP sessions kept at once over HTTP (default 1024); past this the least recently used idle session is
    /// closed, or, when none is idle, a new session is refused with 503.
    pub max_sessions: Option<u32>,
    /// HTTP connections served at once (default 4096); more wait in the listen backlog.
    pub max_connections: Option<u32>,
    /// Largest JSON-RPC message a client may send, an HTTP request body or a stdio line (default 4 MiB).
    pub max_request_size: Option<Size>,
    /// Time a client has to send a request's headers, counted from when the server starts waiting for them (a
    /// new connection, or the end of the previous response on a kept-alive one), so it also closes idle
    /// kept-alive connections (default 10s).
    pub header_read_timeout: Option<Timeout>,
    /// An HTTP connection on which no byte moves either way for this long is closed, mid-request too: a stalled
    /// upload, a client that stopped reading (default 60s).
    pub connection_idle_timeout: Option<Timeout>,
}

impl ServeSection {
    /// The server's bounds, every unset one at its default.
    pub fn bounds(&self) -> ServeBounds {
        let defaults = ServeBounds::default();
        ServeBounds {
            max_sessions: self
                .max_sessions
                .map_or(defaults.max_sessions, |n| n.max(1)),
            max_connections: self
                .max_connections
                .map_or(defaults.max_connections, |n| n.max(1)),
            max_request_size: self
                .max_request_size
                .map_or(defaults.max_request_size, |s| s.0.max(1)),
            header_read_timeout: self
                .header_read_timeout
                .map_or(defaults.header_read_timeout, |t| t.0),
            connection_idle_timeout: self
                .connection_idle_timeout
                .map_or(defaults.connection_idle_timeout, |t| t.0),
        }
    }
}

/// What `are serve` holds for its clients at most: sessions, connections, request sizes and how long a
/// connection may stall (`[serve]`, resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeBounds {
    /// MCP sessions over HTTP (`max_sessions`).
    pub max_sessions: u32,
    /// HTTP connections (`max_connections`).
    pub max_connections: u32,
    /// Bytes of one client message (`max_request_size`).
    pub max_request_size: u64,
    /// Until a request's headers are in (`header_read_timeout`).
    pub header_read_timeout: Duration,
    /// With no byte moving on a connection (`connection_idle_timeout`).
    pub connection_idle_timeout: Duration,
}

impl Default for ServeBounds {
    fn default() -> Self {
        ServeBounds {
            max_sessions: 1024,
            max_connections: 4096,
            max_request_size: 4 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            connection_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Limits as written in a policy: every field optional, later layers override earlier ones.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Fuel per call (roughly one unit per wasm instruction), or `"unlimited"`.
    pub fuel: Option<Fuel>,
    /// Memory of one instance: all linear memories plus tables, e.g. `"64 MiB"`.
    pub memory: Option<Size>,
    /// Wall-clock time per call, e.g. `"5s"`.
    pub timeout: Option<Timeout>,
    /// Largest result JSON, and largest stdout and stderr each, e.g. `"1 MiB"`.
    pub max_output: Option<Size>,
    /// Files and directories one instance may hold open at once.
    pub open_files: Option<u32>,
    /// Sockets and outgoing HTTP connections one instance may hold at once.
    pub connections: Option<u32>,
    /// Largest component source (a file, or a download), e.g. `"256 MiB"`.
    pub max_component_size: Option<Size>,
}

impl LimitsSection {
    /// This section with every field that `over` sets replaced.
    pub fn overlay(self, over: LimitsSection) -> LimitsSection {
        LimitsSection {
            fuel: over.fuel.or(self.fuel),
            memory: over.memory.or(self.memory),
            timeout: over.timeout.or(self.timeout),
            max_output: over.max_output.or(self.max_output),
            open_files: over.open_files.or(self.open_files),
            connections: over.connections.or(self.connections),
            max_component_size: over.max_component_size.or(self.max_component_size),
        }
    }

    /// Fill every unset field with the built-in default.
    pub fn resolve(self) -> Limits {
        let defaults = Limits::default();
        Limits {
            fuel: self.fuel.map_or(defaults.fuel, |f| f.0),
            memory: self.memory.map_or(defaults.memory, |s| s.0),
            timeout: self.timeout.map_or(defaults.timeout, |t| t.0),
            max_output: self.max_output.map_or(defaults.max_output, |s| s.0),
            open_files: self.open_files.unwrap_or(defaults.open_files),
            connections: self.connections.unwrap_or(defaults.connections),
            max_component_size: self
                .max_component_size
                .map_or(defaults.max_component_size, |s| s.0),
        }
    }
}

/// Limits in force for a component: its calls, and reading its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Fuel per call; `None` is unlimited (the timeout still applies).
    pub fuel: Option<u64>,
    /// Bytes of linear memory plus table storage for one instance.
    pub memory: u64,
    /// Wall-clock time per call.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Largest result JSON, and largest stdout and stderr each, in bytes.
    pub max_output: u64,
    /// Files and directories one instance may hold open at once (see `are_runtime::descriptors`).
    pub open_files: u32,
    /// Sockets and outgoing HTTP connections one instance may hold at once (see `are_runtime::descriptors`).
    pub connections: u32,
    /// Largest component source, in bytes: a local file larger than this is not read, a download is cut off.
    pub max_component_size: u64,
}

/// The default `limits.max_component_size`: 256 MiB.
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 256 << 20;

impl Default for Limits {
    /// 1e9 fuel, 64 MiB, 5 s, 1 MiB of output, 64 open files, 16 connections, 256 MiB of component.
    fn default() -> Self {
        Limits {
            fuel: Some(1_000_000_000),
            memory: 64 << 20,
            timeout: Duration::from_secs(5),
            max_output: 1 << 20,
            open_files: 64,
            connections: 16,
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
        }
    }
}

mod humantime_serde_compat {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

/// Fuel for one call: a number of units or unlimited (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fuel(pub Option<u64>);

impl std::str::FromStr for Fuel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "unlimited" {
            return Ok(Fuel(None));
        }
        s.replace('_', "")
            .parse::<u64>()
            .map(|n| Fuel(Some(n)))
            .map_err(|_| format!("invalid fuel {s:?}: expected a whole number or \"unlimited\""))
    }
}

impl<'de> Deserialize<'de> for Fuel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Fuel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of fuel units or \"unlimited\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Fuel, E> {
                u64::try_from(v)
                    .map(|n| Fuel(Some(n)))
                    .map_err(|_| E::custom(format!("invalid fuel {v}: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Fuel, E> {
                Ok(Fuel(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Fuel, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Fuel {
    fn schema_name() -> Cow<'static, str> {
        "Fuel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        json_schema!({
            "description": "Fuel: roughly one unit per wasm instruction. A whole number (an integer, or a string with \
                            `_` separators) or \"unlimited\" (the timeout still applies).",
            "type": ["integer", "string"],
            "minimum": 0,
            "pattern": r"^\s*(unlimited|[_+]*[0-9][0-9_]*)\s*$",
            "examples": [1_000_000_000, "unlimited"],
        })
    }
}

/// A size in bytes, written as a number of bytes or a string like `"64 MiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size(pub u64);

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| {
                format!(
                    "invalid size {s:?}: expected e.g. \"64 MiB\", \"512 KiB\" or a number of bytes"
                )
            })
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"64 MiB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        json_schema!({
            "description": "A size in bytes: an integer, or a string such as \"64 MiB\", \"512 KiB\", \"1.5 GB\" \
                            (units b, k/kb, m/mb, … powers of 1000; ki/kib, mi/mib, … powers of 1024; any case).",
            "type": ["integer", "string"],
            "minimum": 0,
            "pattern": r"^\s*(\+?[0-9]+|[0-9.]+\s*([bB]|[kKmMgGtTpPeE][iI]?[bB]?))\s*$",
            "examples": ["64 MiB", "1 MiB", 65536],
        })
    }
}

/// A wall-clock timeout, written like `"5s"`, `"250ms"` or `"2m"`. Zero and more than a day are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeout(pub Duration);

impl std::str::FromStr for Timeout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim())
            .map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. \"5s\" or \"250ms\")"))?;
        if d.is_zero() || d > Duration::from_secs(86_400) {
            return Err(format!(
                "invalid timeout {s:?}: must be more than 0 and at most 24h"
            ));
        }
        Ok(Timeout(d))
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Timeout {
    fn schema_name() -> Cow<'static, str> {
        "Timeout".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        json_schema!({
            "description": "A duration such as \"5s\", \"250ms\", \"2m\" or \"1h 30m\": more than 0 and at most 24h.",
            "type": "string",
            "pattern": r"^\s*[0-9][0-9.\s]*[A-Za-zµ][0-9A-Za-zµ.\s]*$",
            "examples": ["5s", "250ms", "2m"],
        })
    }
}

/// A hex sha256 digest that a component's bytes must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Pin(pub [u8; 32]);

impl<'de> Deserialize<'de> for Sha256Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Sha256Pin {
    fn schema_name() -> Cow<'static, str> {
        "Sha256Pin".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        json_schema!({
            "description": "A sha256 digest: 64 hex digits (what `sha256sum FILE` prints), optionally after `sha256:`.",
            "type": "string",
            "pattern": r"^\s*(sha256:)*[0-9a-fA-F]{64}\s*$",
        })
    }
}

impl std::str::FromStr for Sha256Pin {
    type Err = String;
    /// 64 hex digits, optionally after `sha256:`.
    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.trim().trim_start_matches("sha256:");
        let out = common::parse_hex::<32>(hex).ok_or_else(|| {
            format!("invalid sha256 {s:?}: expected 64 hex digits (see `sha256sum FILE`)")
        })?;
        Ok(Sha256Pin(out))
    }
}

impl fmt::Display for Sha256Pin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&common::hex(&self.0))
    }
}

/// When records are forced to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every record: nothing is lost even on power loss; slowest.
    Always,
    /// Every 100 ms (and when the log is closed) by a background thread, when records were written:
    /// calls never wait for the disk, and a power loss may lose the last 100 ms of records.
    #[default]
    Interval,
    /// Never explicitly: the operating system decides. A crash of the process loses nothing (every record is
    /// written out at once); a power loss may lose more.
    Never,
}

/// `[audit]`: where the trail goes and how hard it is pushed to disk.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The JSON Lines file, relative to the policy. No audit trail when absent. It must not be inside an `rw`
    /// mount (checked when the policy is read), or a guest could rewrite the trail of its own calls.
    #[schemars(with = "Option<String>")]
    pub path: Option<toml::Spanned<String>>,
    /// When records are forced to disk (default `interval`).
    #[serde(default)]
    pub fsync: Fsync,
    /// The ed25519 key that signs checkpoints (see `are_runtime::audit::Checkpoint`), relative to the policy; made (`0600`) on
    /// first use. Default: `audit.key` in the user's config directory (`~/.config/are/audit.key` on Linux).
    /// Never in the log's directory.
    pub key: Option<String>,
    /// A signed checkpoint after this many records (default 1 000).
    pub checkpoint_every: Option<std::num::NonZeroU64>,
    /// And at most this long after a record that no checkpoint covers yet (default 10 s).
    pub checkpoint_interval: Option<Timeout>,
}

/// Where a value sits in the policy text, for error messages.
#[derive(Debug, Clone)]
pub struct SourceText {
    path: PathBuf,
    text: String,
}

impl SourceText {
    /// An error at `span` of this text.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = self.line_column(span);
        PolicyError::Invalid {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl SourceText {
    /// The 1-based line and column where `span` starts, for a message that points at a second place.
    pub fn line_column(&self, span: Range<usize>) -> (usize, usize) {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
}

impl Policy {
    /// Read, parse and validate a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Read`] when the file cannot be read; [`PolicyError::Invalid`] with line and column for bad
    /// TOML, unknown keys, bad values, component names outside `[A-Za-z0-9_-]`, mounts whose host directory
    /// does not exist, ambiguous grants (a wildcard host that is not `*.` and a DNS name, overlapping mounts of
    /// different modes, a `quota` on a `ro` mount or on a mount that overlaps another), and an audit file inside
    /// an `rw` mount.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Self::parse(&text, path, &base_dir)
    }

    /// Parse and validate policy text; `path` names it in errors and `base_dir` anchors relative paths.
    ///
    /// # Errors
    /// As [`Policy::load`].
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Policy, PolicyError> {
        let source = SourceText {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            source.error(span, e.message().trim_end().to_string())
        })?;
        let mut components = BTreeMap::new();
        for (name, component) in file.component {
            validate_component_name(name.get_ref()).map_err(|m| source.error(name.span(), m))?;
            source::Source::parse(component.source.get_ref())
                .map_err(|e| source.error(component.source.span(), e.to_string()))?;
            component.allow.validate(base_dir, &source)?;
            if let Some(key) = component.allow.agent_only() {
                return Err(source.error(
                    name.span(),
                    format!("`allow.{key}` is only for agents: move it to an [agent.NAME] table"),
                ));
            }
            components.insert(name.into_inner(), component);
        }
        let mut agents = BTreeMap::new();
        for (name, agent) in file.agent {
            validate_component_name(name.get_ref()).map_err(|m| source.error(name.span(), m))?;
            source::Source::parse(agent.source.get_ref())
                .map_err(|e| source.error(agent.source.span(), e.to_string()))?;
            agent.allow.validate(base_dir, &source)?;
            agents.insert(name.into_inner(), agent);
        }
        if let Some(audit_path) = &file.audit.path {
            check_audit_outside_rw_mounts(audit_path, base_dir, &source, &components, &agents)?;
        }
        Ok(Policy {
            path: Some(path.to_path_buf()),
            base_dir: base_dir.to_path_buf(),
            defaults: file.defaults.limits,
            components,
            serve: file.serve,
            agents,
            agent_runtime: file.agents,
            llm: file.llm,
            audit: file.audit,
        })
    }

    /// The policy of a component, by name.
    pub fn component(&self, name: &str) -> Option<&ComponentPolicy> {
        self.components.get(name)
    }

    /// The absolute-or-relative path of a component's source, resolved against the policy's directory; a remote
    /// source (`https://…`, `oci://…`) as written.
    pub fn source_path(&self, component: &ComponentPolicy) -> PathBuf {
        self.resolve_source(component.source.get_ref())
    }

    /// A `source` as written, resolved: a path against the policy's directory, a remote source unchanged.
    pub fn resolve_source(&self, source: &str) -> PathBuf {
        if source::Source::is_remote_text(source) {
            PathBuf::from(source)
        } else {
            self.base_dir.join(source)
        }
    }

    /// The component whose source is the file at `path` (or the remote source written as `path`), if the policy
    /// names one.
    pub fn component_for_path(&self, path: &Path) -> Option<(&str, &ComponentPolicy)> {
        // A remote source is the same source when written the same way.
        if let Some(text) = path.to_str().filter(|t| source::Source::is_remote_text(t)) {
            return self
                .components
                .iter()
                .find(|(_, c)| c.source.get_ref() == text)
                .map(|(name, c)| (name.as_str(), c));
        }
        let wanted = std::fs::canonicalize(path).ok()?;
        self.components.iter().find_map(|(name, c)| {
            let have = std::fs::canonicalize(self.source_path(c)).ok()?;
            (have == wanted).then_some((name.as_str(), c))
        })
    }

    /// The limits of a component: built-in defaults, then `[defaults.limits]`, then its own `limits`.
    pub fn limits_for(&self, component: Option<&ComponentPolicy>) -> LimitsSection {
        let own = component.map(|c| c.limits).unwrap_or_default();
        self.defaults.overlay(own)
    }
}

/// Refuse an audit file inside (or equal to) an `rw` mount of any component or agent: its guest could rewrite the
/// trail of its own calls.
fn check_audit_outside_rw_mounts(
    audit_path: &Spanned<String>,
    base_dir: &Path,
    source: &SourceText,
    components: &BTreeMap<String, ComponentPolicy>,
    agents: &BTreeMap<String, AgentPolicy>,
) -> Result<(), PolicyError> {
    let grants = components
        .iter()
        .map(|(name, c)| ("component", name, &c.allow))
        .chain(agents.iter().map(|(name, a)| ("agent", name, &a.allow)));
    for (kind, name, allow) in grants {
        if let Some(mount) = allow
            .fs
            .rw_mount_holding(base_dir, Path::new(audit_path.get_ref()))
        {
            let (line, column) = source.line_column(mount.host.span());
            return Err(source.error(
                audit_path.span(),
                format!(
                    "the audit file {:?} is inside the rw mount {:?} of {kind} {name:?} at {line}:{column}: its \
                     guest could rewrite the trail of its own calls; keep the audit file outside every rw mount",
                    audit_path.get_ref(),
                    mount.host.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

fn validate_component_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid component name {name:?}: use 1 to 64 of A-Z a-z 0-9 _ - (it prefixes tool names)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("are.toml"), Path::new("."))
    }

    #[test]
    fn empty_policy_grants_nothing_and_uses_default_limits() {
        let p = parse("").unwrap();
        assert!(p.components.is_empty());
        assert_eq!(p.limits_for(None).resolve(), Limits::default());
    }

    #[test]
    fn limits_layer_defaults_then_component() {
        let p = parse(
            r#"
            [defaults.limits]
            fuel = 1_000
            memory = "8 MiB"
            timeout = "2s"
            [component.a]
            source = "a.wasm"
            limits.timeout = "250ms"
            limits.fuel = "unlimited"
            limits.open_files = 8
            "#,
        )
        .unwrap();
        let l = p.limits_for(p.component("a")).resolve();
        assert_eq!((l.open_files, l.connections), (8, 16));
        assert_eq!(l.fuel, None);
        assert_eq!(l.memory, 8 << 20);
        assert_eq!(l.timeout, Duration::from_millis(250));
        assert_eq!(l.max_output, 1 << 20);
    }

    #[test]
    fn unknown_key_is_an_error_with_line_and_column() {
        let err = parse("[component.a]\nsource = \"a.wasm\"\nallow.htp = []\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("are.toml:3:7: unknown field `htp`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_name_the_value() {
        let err = parse("[defaults.limits]\nmemory = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("are.toml:2:10: invalid size \"lots\""),
            "{err}"
        );
        let err = parse("[defaults.limits]\ntimeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be more than 0"), "{err}");
        let err = parse("[defaults.limits]\nfuel = -5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be negative"), "{err}");
        let err = parse("[component.a]\nsource = \"a.wasm\"\nsha256 = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("are.toml:3:10: invalid sha256"), "{err}");
    }

    #[test]
    fn component_names_are_restricted() {
        let err = parse("[component.\"a.b\"]\nsource = \"a.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid component name \"a.b\""), "{err}");
    }

    #[test]
    fn sha256_pin_round_trips() {
        let hex = "ab".repeat(32);
        let p = parse(&format!(
            "[component.a]\nsource = \"a.wasm\"\nsha256 = \"{hex}\"\n"
        ))
        .unwrap();
        assert_eq!(
            p.component("a")
                .unwrap()
                .sha256
                .as_ref()
                .unwrap()
                .to_string(),
            hex
        );
    }

    #[test]
    fn remote_sources_are_kept_as_written_and_checked() {
        let p = parse(
            "[component.a]\nsource = \"https://example.com/a.wasm\"\n\
             [component.b]\nsource = \"b.wasm\"\n",
        )
        .unwrap();
        assert_eq!(
            p.source_path(p.component("a").unwrap()),
            PathBuf::from("https://example.com/a.wasm")
        );
        assert_eq!(
            p.source_path(p.component("b").unwrap()),
            Path::new(".").join("b.wasm")
        );
        let err = parse("[component.a]\nsource = \"http://example.com/a.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("are.toml:2:10: invalid component source"),
            "{err}"
        );
        assert!(err.contains("plain http is refused"), "{err}");
        let p = parse("[agent.a]\nsource = \"oci://ghcr.io/a/b:1\"\n").unwrap();
        assert_eq!(
            p.resolve_source(p.agents["a"].source.get_ref()),
            PathBuf::from("oci://ghcr.io/a/b:1")
        );
        let err = parse("[agent.a]\nsource = \"http://example.com/a.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("are.toml:2:10: invalid component source"),
            "{err}"
        );
    }

    #[test]
    fn ambiguous_hosts_are_refused_with_line_and_column() {
        let component = "[component.a]\nsource = \"a.wasm\"\n";
        for (grant, at, expected) in [
            (
                "allow.http = [\"https://ok.example\", \"https://*.1\"]",
                "\"https://*.1\"",
                "a wildcard must be `*.` followed by a DNS name, and in \"*.1\" the last label \"1\" is all digits",
            ),
            (
                "allow.http = [\"https://*.0.0.1:8443\"]",
                "\"https://*.0.0.1",
                "the last label \"1\" is all digits, which reads as an IP address",
            ),
            (
                "allow.http = [\"http://*.\"]",
                "\"http://*.\"",
                "the name is empty",
            ),
            (
                "allow.http = [\"https://api.*.example.com\"]",
                "\"https://api.*",
                "only a whole leading `*.`",
            ),
            (
                "allow.http = [\"https://10.1\"]",
                "\"https://10.1\"",
                "\"10.1\" is neither an IP address nor a DNS name",
            ),
            (
                "allow.sockets = [\"tcp://*.db.internal:5432\"]",
                "\"tcp://*",
                "sockets take no wildcards",
            ),
            (
                "allow.http = [\"https://*.example.com\"]\nallow.secrets = [{ host = \"*.example.com\", header = \"Authorization\", from_env = \"T\" }]",
                "\"*.example.com\", header",
                "invalid secret host \"*.example.com\": a secret goes to one exact host",
            ),
        ] {
            let text = format!("{component}{grant}\n");
            let offset = text.find(at).unwrap();
            let line = text[..offset].matches('\n').count() + 1;
            let column = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("are.toml:{line}:{column}: ")),
                "{grant}: {err}"
            );
            assert!(err.contains(expected), "{grant}: {err}");
        }
        let p = parse(&format!(
            "{component}allow.http = [\"https://*.example.com\", \"https://1.2.3.4\"]\n\
             allow.secrets = [{{ host = \"api.example.com:443\", header = \"X-Key\", from_env = \"T\" }}]\n"
        ));
        assert!(p.is_ok(), "{p:?}");
    }

    #[test]
    fn sizes_and_fuel_parse_from_strings() {
        assert_eq!("64 MiB".parse::<Size>().unwrap(), Size(64 << 20));
        assert_eq!("1_000".parse::<Fuel>().unwrap(), Fuel(Some(1000)));
        assert_eq!("unlimited".parse::<Fuel>().unwrap(), Fuel(None));
        assert_eq!(
            "1500ms".parse::<Timeout>().unwrap(),
            Timeout(Duration::from_millis(1500))
        );
    }
}
