//! `are bench mcp`: load on `are serve` over MCP, as a client sees it.
//!
//! Each run starts `are serve` (this same binary) as a child process with a temporary policy naming the example
//! tools, on stdio or on Streamable HTTP at a loopback address, and lets N clients call one small tool in a loop
//! for a fixed time (or call count) after a warm-up:
//!
//! - stdio: one session; the N logical clients each keep one request in flight, so the server sees N concurrent
//!   in-flight requests on one stdio session (JSON-RPC ids tell the replies apart).
//! - HTTP: N independent MCP sessions (`initialize`, `Mcp-Session-Id`, `notifications/initialized`), each on its
//!   own HTTP/1.1 keep-alive connection, each calling sequentially.
//!
//! Latency is measured in the client, from handing the request to the transport to having parsed its response.
//! Calls/s counts successful calls over the measured window. With `--hostile` every run is repeated with a
//! spinning tool (an infinite loop, unlimited fuel, a short timeout) called by extra clients at the same time,
//! so the benign figures show what runaway guests cost everybody else.
//!
//! Everything is bounded: loopback only, at most [`MAX_CLIENTS`] clients, [`MAX_DURATION`] per run, every request
//! at most [`REQUEST_TIMEOUT`], and the child is stopped (then killed) when a run ends.

mod floor;
mod http;
mod stdio;

pub use floor::{FloorTransport, serve as serve_floor};

use super::{Latencies, Summary, fmt_us, own_cpu, process_cpu};
use anyhow::{Context as _, bail, ensure};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt as _;

/// Most clients in one run.
pub const MAX_CLIENTS: u32 = 256;
/// Longest measured time of one run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Longest any single request may take before the run counts it as a transport failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time `are serve` gets to load (and perhaps compile) its tools and answer.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The protocol revision the clients ask for in a session.
const PROTOCOL_VERSION: &str = "2025-11-25";
/// The stateless revision: no handshake, `_meta` on every request.
const STATELESS_VERSION: &str = "2026-07-28";
/// The `_meta` member of every stateless request's params.
const STATELESS_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
/// The hostile component's name in the temporary policy, and its tool.
const HOSTILE_COMPONENT: &str = "hostile-loop";
const HOSTILE_TOOL: &str = "hostile-loop.spin";

/// `are bench mcp`.
#[derive(clap::Args)]
pub struct Opts {
    /// Transports to load.
    #[arg(long, value_enum, default_value = "both")]
    transport: TransportChoice,
    /// Client counts, one run each (1 to 256).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64",
          value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64))]
    clients: Vec<u32>,
    /// Measured time of each run (at most 10m).
    #[arg(long, default_value = "5s")]
    duration: humantime::Duration,
    /// Warm-up before each run is measured: calls are made but not counted.
    #[arg(long, default_value = "500ms")]
    warmup: humantime::Duration,
    /// End a run after this many measured calls, if that comes before --duration.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    calls: Option<u64>,
    /// The tool every client calls: `component.function`, the component being `<tools-dir>/<component>.wasm`.
    #[arg(long, default_value = "text.word-count")]
    tool: String,
    /// The tool's arguments, a JSON object (default: a short input for the example tools, else `{}`).
    #[arg(long, value_name = "JSON")]
    args: Option<String>,
    /// Serve the tool with a fresh instance per call, or one instance per MCP session.
    #[arg(long, value_enum, default_value = "fresh")]
    mode: Mode,
    /// Repeat each run with hostile calls spinning alongside: an infinite loop with unlimited fuel, stopped by
    /// its timeout and called again at once.
    #[arg(long)]
    hostile: bool,
    /// Hostile calls in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    hostile_clients: u32,
    /// Timeout of the hostile tool.
    #[arg(long, default_value = "100ms")]
    hostile_timeout: humantime::Duration,
    /// How the clients speak: in a 2025-11-25 session (`initialize` first), stateless at 2026-07-28 (`_meta`
    /// on every request), or both, one run each.
    #[arg(long, value_enum, default_value = "both")]
    protocol: ProtocolChoice,
    /// Run the same load against the floor too (a bare JSON-RPC server on the same transport, see
    /// `src/mcp/floor.rs`) and print `are serve`'s figures as ratios of it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    floor: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolChoice {
    Session,
    Stateless,
    Both,
}

/// How the clients speak MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Revision 2025-11-25: `initialize`, then requests in the session (`Mcp-Session-Id` over HTTP).
    Session,
    /// Revision 2026-07-28: no handshake; every request carries `_meta` (and over HTTP its headers).
    Stateless,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Session => "session",
            Protocol::Stateless => "stateless",
        }
    }
}

/// The server under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// `are serve`.
    Are,
    /// The floor: a bare JSON-RPC server on the same transport.
    Floor,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Are => "are",
            ServerKind::Floor => "floor",
        }
    }
}

/// One JSON-RPC request as a client sends it: a stateless one adds the `_meta` to `params` (a serialized JSON
/// object).
fn client_request_line(stateless: bool, id: u64, method: &str, params: &str) -> String {
    if !stateless {
        return request_line(id, method, params);
    }
    let params = match params.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{{STATELESS_META}}}"),
        Some(rest) => format!("{{{STATELESS_META},{rest}"),
        None => params.to_string(),
    };
    request_line(id, method, &params)
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TransportChoice {
    Stdio,
    Http,
    Both,
}

/// A transport under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON-RPC lines on the child's stdin and stdout.
    Stdio,
    /// Streamable HTTP at `/mcp` on loopback.
    Http,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// How the benchmarked tool keeps instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A fresh instance for every call.
    Fresh,
    /// One instance per MCP session (kept warm across its calls).
    Session,
}

/// Everything one `are bench mcp` measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The tool every client called.
    pub tool: String,
    /// Its arguments.
    pub arguments: Value,
    /// How the tool kept instances.
    pub mode: Mode,
    /// Warm-up per run, in seconds.
    pub warmup_s: f64,
    /// Measured time per run, in seconds.
    pub duration_s: f64,
    /// Call cap per run, if any.
    pub max_calls: Option<u64>,
    /// The hostile load of the runs marked `hostile`.
    pub hostile: Option<HostileSetup>,
    /// The `are` binary serving.
    pub server: String,
    /// One entry per server, protocol, transport, client count and load.
    pub runs: Vec<Run>,
    /// `are serve` against the floor, per transport, client count and protocol (calm runs).
    pub floor_ratios: Vec<FloorRatio>,
}

/// `are serve`'s figures as multiples of the floor's, for one transport, client count and protocol.
#[derive(Debug, Serialize)]
pub struct FloorRatio {
    /// The transport.
    pub transport: Transport,
    /// Concurrent clients.
    pub clients: u32,
    /// Session or stateless requests.
    pub protocol: Protocol,
    /// `are serve`'s calls/s ÷ the floor's (1 would be as fast as the floor).
    pub calls_per_s: f64,
    /// `are serve`'s server CPU per call ÷ the floor's (1 would cost what the floor costs).
    pub server_cpu_per_call: Option<f64>,
    /// `are serve`'s p50 latency ÷ the floor's.
    pub p50: Option<f64>,
}

/// The floor ratios of every calm `are serve` run that has a floor run beside it.
fn floor_ratios(runs: &[Run]) -> Vec<FloorRatio> {
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| (a / b * 100.0).round() / 100.0);
    runs.iter()
        .filter(|r| r.server == ServerKind::Are && r.load == "none")
        .filter_map(|are| {
            let floor = runs.iter().find(|f| {
                f.server == ServerKind::Floor
                    && f.load == "none"
                    && f.transport == are.transport
                    && f.clients == are.clients
                    && f.protocol == are.protocol
            })?;
            Some(FloorRatio {
                transport: are.transport,
                clients: are.clients,
                protocol: are.protocol,
                calls_per_s: ratio(are.calls_per_s, floor.calls_per_s)?,
                server_cpu_per_call: are
                    .server_cpu_us_per_call
                    .zip(floor.server_cpu_us_per_call)
                    .and_then(|(a, b)| ratio(a, b)),
                p50: are
                    .latency_us
                    .as_ref()
                    .zip(floor.latency_us.as_ref())
                    .and_then(|(a, b)| ratio(a.p50_us, b.p50_us)),
            })
        })
        .collect()
}

/// The hostile tool and how hard it is called.
#[derive(Debug, Clone, Serialize)]
pub struct HostileSetup {
    /// Its tool name.
    pub tool: &'static str,
    /// Calls in flight at once.
    pub clients: u32,
    /// Its timeout, in milliseconds (its fuel is unlimited).
    pub timeout_ms: u64,
}

/// Figures of one run.
#[derive(Debug, Serialize)]
pub struct Run {
    /// `are` or the `floor`.
    pub server: ServerKind,
    /// Session (2025-11-25) or stateless (2026-07-28) requests.
    pub protocol: Protocol,
    /// The transport.
    pub transport: Transport,
    /// Concurrent benign clients.
    pub clients: u32,
    /// `none`, or `hostile` with hostile calls spinning alongside.
    pub load: &'static str,
    /// What the clients are, exactly.
    pub connection: String,
    /// Successful calls in the measured window.
    pub calls: u64,
    /// Failed calls in the measured window.
    pub errors: u64,
    /// Failures by kind (`tool_error`, `protocol_error`, `transport`), with one message each.
    pub error_kinds: BTreeMap<&'static str, ErrorCount>,
    /// Length of the measured window: from its start to the last measured call's response.
    pub seconds: f64,
    /// Successful calls per second.
    pub calls_per_s: f64,
    /// Latency of the successful calls.
    pub latency_us: Option<Summary>,
    /// CPU time of the `are serve` process per successful call, in microseconds (hostile spinning included
    /// when the load is hostile).
    pub server_cpu_us_per_call: Option<f64>,
    /// CPU time of this benchmarking process (the clients) per successful call, in microseconds.
    pub client_cpu_us_per_call: Option<f64>,
    /// The hostile calls of this run.
    pub hostile: Option<HostileFigures>,
}

/// How often a kind of failure happened, and one message.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    /// Occurrences.
    pub count: u64,
    /// The first message.
    pub example: String,
}

/// What happened to the hostile calls of a run.
#[derive(Debug, Serialize)]
pub struct HostileFigures {
    /// Hostile calls that ended in the measured window.
    pub calls: u64,
    /// Of which stopped by their timeout (the expected end).
    pub stopped: u64,
    /// Their latency, from request to the timeout error.
    pub latency_us: Option<Summary>,
    /// Any other ends.
    pub error_kinds: BTreeMap<&'static str, ErrorCount>,
}

impl Report {
    /// Whether any benign call failed or a run made no call at all.
    pub fn failed(&self) -> bool {
        self.runs.iter().any(|r| r.errors > 0 || r.calls == 0)
    }

    /// The figures as a table with notes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nMCP load: {} {}, {} instance{}; {} warm-up then {}{} per run",
            self.tool,
            self.arguments,
            match self.mode {
                Mode::Fresh => "a fresh",
                Mode::Session => "a session",
            },
            match self.mode {
                Mode::Fresh => " per call",
                Mode::Session => " per MCP session",
            },
            fmt_secs(self.warmup_s),
            fmt_secs(self.duration_s),
            self.max_calls
                .map(|n| format!(" (or {n} calls)"))
                .unwrap_or_default(),
        );
        let _ = writeln!(
            out,
            "{:<6} {:<10} {:<9} {:>7} {:<10} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6}",
            "server",
            "protocol",
            "transport",
            "clients",
            "load",
            "calls",
            "calls/s",
            "p50",
            "p90",
            "p99",
            "max",
            "srv cpu/c",
            "cli cpu/c",
            "errors"
        );
        for r in &self.runs {
            let pct =
                |f: fn(&Summary) -> f64| r.latency_us.as_ref().map_or("-".into(), |s| fmt_us(f(s)));
            let cpu = |c: Option<f64>| c.map_or("-".into(), fmt_us);
            let load = match (&self.hostile, r.load) {
                (Some(h), "hostile") => format!("hostile×{}", h.clients),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<6} {:<10} {:<9} {:>7} {:<10} {:>8} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6}",
                r.server.name(),
                r.protocol.name(),
                r.transport.name(),
                r.clients,
                load,
                r.calls,
                r.calls_per_s,
                pct(|s| s.p50_us),
                pct(|s| s.p90_us),
                pct(|s| s.p99_us),
                pct(|s| s.max_us),
                cpu(r.server_cpu_us_per_call),
                cpu(r.client_cpu_us_per_call),
                r.errors
            );
        }
        if !self.floor_ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nare serve as a multiple of the floor (same client, transport and load; calls/s: higher is \
                 better, cpu and p50: lower is better)"
            );
            let _ = writeln!(
                out,
                "{:<9} {:>7} {:<10} {:>9} {:>10} {:>8}",
                "transport", "clients", "protocol", "calls/s", "srv cpu/c", "p50"
            );
            let times = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}×"));
            for f in &self.floor_ratios {
                let _ = writeln!(
                    out,
                    "{:<9} {:>7} {:<10} {:>9} {:>10} {:>8}",
                    f.transport.name(),
                    f.clients,
                    f.protocol.name(),
                    times(Some(f.calls_per_s)),
                    times(f.server_cpu_per_call),
                    times(f.p50)
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "floor: a bare JSON-RPC server on the same transport (serde_json in and out, word count computed \
             natively; over HTTP a bare hyper server): what any MCP server must spend."
        );
        let _ = writeln!(
            out,
            "session: 2025-11-25, initialize then requests in the session; stateless: 2026-07-28, `_meta` (and \
             over HTTP the MCP-Protocol-Version, Mcp-Method and Mcp-Name headers) on every request."
        );
        let _ = writeln!(
            out,
            "stdio: N clients = N concurrent in-flight requests on one stdio session (one `are serve` per row pair)."
        );
        let _ = writeln!(
            out,
            "http:  N clients = N independent MCP sessions, each on its own HTTP/1.1 keep-alive connection, calling \
             sequentially."
        );
        let _ = writeln!(
            out,
            "Latency: client-side, request handed to the transport → response parsed; successful calls only. \
             calls/s: successful calls / measured window.\n\
             cpu/c: CPU time per successful call of the `are serve` process (srv) and of this client process (cli); \
             both share the machine's CPUs."
        );
        if let Some(h) = &self.hostile {
            let _ = writeln!(
                out,
                "hostile×{n}: {n} extra calls of {} (loop forever, fuel unlimited, timeout {}) in flight throughout, \
                 each re-issued as soon as it is stopped (over HTTP on {n} sessions of their own); srv cpu/c \
                 includes their spinning.",
                h.tool,
                fmt_us(h.timeout_ms as f64 * 1e3),
                n = h.clients,
            );
            for r in &self.runs {
                if let Some(f) = &r.hostile {
                    let latency = f.latency_us.as_ref().map_or(String::new(), |s| {
                        format!(
                            ", request→stopped p50 {} p99 {} max {}",
                            fmt_us(s.p50_us),
                            fmt_us(s.p99_us),
                            fmt_us(s.max_us)
                        )
                    });
                    let _ = writeln!(
                        out,
                        "  {} {:>3} clients: {} hostile calls, {} stopped by their timeout{latency}{}",
                        r.transport.name(),
                        r.clients,
                        f.calls,
                        f.stopped,
                        error_list(&f.error_kinds)
                    );
                }
            }
        }
        for r in self.runs.iter().filter(|r| r.errors > 0 || r.calls == 0) {
            let _ = writeln!(
                out,
                "FAILED {} {} clients ({}): {} errors{}",
                r.transport.name(),
                r.clients,
                r.load,
                r.errors,
                error_list(&r.error_kinds)
            );
        }
        out
    }
}

fn fmt_secs(s: f64) -> String {
    fmt_us(s * 1e6)
}

fn error_list(kinds: &BTreeMap<&'static str, ErrorCount>) -> String {
    kinds
        .iter()
        .map(|(kind, e)| format!("; {kind} ×{}: {}", e.count, e.example))
        .collect()
}

impl Opts {
    /// Run every (transport, clients) combination.
    pub async fn run(self, tools_dir: &Path) -> anyhow::Result<Report> {
        ensure!(
            !self.duration.is_zero() && *self.duration <= MAX_DURATION,
            "--duration must be more than 0 and at most {}",
            humantime::format_duration(MAX_DURATION)
        );
        ensure!(
            *self.warmup <= Duration::from_secs(60),
            "--warmup must be at most 1m"
        );
        ensure!(
            *self.hostile_timeout >= Duration::from_millis(1)
                && *self.hostile_timeout <= Duration::from_secs(10),
            "--hostile-timeout must be between 1ms and 10s"
        );
        let setup = self.setup(tools_dir)?;
        let transports: &[Transport] = match self.transport {
            TransportChoice::Stdio => &[Transport::Stdio],
            TransportChoice::Http => &[Transport::Http],
            TransportChoice::Both => &[Transport::Stdio, Transport::Http],
        };
        let protocols: &[Protocol] = match self.protocol {
            ProtocolChoice::Session => &[Protocol::Session],
            ProtocolChoice::Stateless => &[Protocol::Stateless],
            ProtocolChoice::Both => &[Protocol::Session, Protocol::Stateless],
        };
        let servers: &[ServerKind] = if self.floor {
            &[ServerKind::Are, ServerKind::Floor]
        } else {
            &[ServerKind::Are]
        };
        let mut runs = Vec::new();
        for &transport in transports {
            for &clients in &self.clients {
                for &protocol in protocols {
                    for &server in servers {
                        let bench = Bench {
                            server,
                            protocol,
                            clients,
                        };
                        let measured = match transport {
                            Transport::Stdio => self.bench_stdio(&setup, bench).await,
                            Transport::Http => self.bench_http(&setup, bench).await,
                        }
                        .with_context(|| {
                            format!(
                                "{} {} with {clients} clients ({})",
                                server.name(),
                                transport.name(),
                                protocol.name()
                            )
                        })?;
                        runs.extend(measured);
                    }
                }
            }
        }
        Ok(Report {
            tool: self.tool.clone(),
            arguments: setup.arguments.clone(),
            mode: self.mode,
            warmup_s: self.warmup.as_secs_f64(),
            duration_s: self.duration.as_secs_f64(),
            max_calls: self.calls,
            hostile: self.hostile.then(|| HostileSetup {
                tool: HOSTILE_TOOL,
                clients: self.hostile_clients,
                timeout_ms: u64::try_from(self.hostile_timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            server: setup.exe.display().to_string(),
            floor_ratios: floor_ratios(&runs),
            runs,
        })
    }

    /// Find the components, write the temporary policy, and prepare the requests.
    fn setup(&self, tools_dir: &Path) -> anyhow::Result<Setup> {
        let (component, _) = self.tool.split_once('.').with_context(|| {
            format!(
                "--tool {}: expected `component.function`, e.g. text.word-count",
                self.tool
            )
        })?;
        ensure!(
            component != HOSTILE_COMPONENT,
            "--tool: `{HOSTILE_COMPONENT}` is the hostile tool; pick a benign one and add --hostile"
        );
        let source = find_component(tools_dir, component)?;
        let arguments: Value = match &self.args {
            Some(text) => serde_json::from_str(text).context("--args is not valid JSON")?,
            None => default_arguments(&self.tool),
        };
        ensure!(arguments.is_object(), "--args must be a JSON object");

        let mut components = toml::Table::new();
        let mut benign = toml::Table::new();
        benign.insert("source".into(), path_string(&source)?.into());
        // Room for every client's call to wait instead of being refused as busy.
        benign.insert("queue".into(), i64::from(MAX_CLIENTS).into());
        if self.mode == Mode::Session {
            benign.insert("mode".into(), "session".into());
        }
        components.insert(component.to_string(), benign.into());
        if self.hostile {
            let source = find_component(tools_dir, HOSTILE_COMPONENT)?;
            let mut hostile = toml::Table::new();
            hostile.insert("source".into(), path_string(&source)?.into());
            hostile.insert(
                "max_concurrency".into(),
                i64::from(self.hostile_clients).into(),
            );
            hostile.insert("queue".into(), i64::from(self.hostile_clients).into());
            let mut limits = toml::Table::new();
            limits.insert("fuel".into(), "unlimited".into());
            limits.insert(
                "timeout".into(),
                humantime::format_duration(*self.hostile_timeout)
                    .to_string()
                    .into(),
            );
            hostile.insert("limits".into(), limits.into());
            components.insert(HOSTILE_COMPONENT.into(), hostile.into());
        }
        let mut policy = toml::Table::new();
        policy.insert("component".into(), components.into());
        let dir = TempDir::new()?;
        let policy_path = dir.path.join("are.toml");
        std::fs::write(&policy_path, toml::to_string(&policy)?)
            .with_context(|| format!("cannot write {}", policy_path.display()))?;
        let exe = std::env::current_exe().context("cannot find the are binary to serve with")?;
        Ok(Setup {
            exe,
            policy: policy_path,
            _dir: dir,
            tool: self.tool.as_str().into(),
            call: tool_call(&self.tool, &arguments).into(),
            hostile_call: tool_call(HOSTILE_TOOL, &json!({})).into(),
            arguments,
        })
    }

    fn phase(&self) -> Phase {
        Phase {
            warmup: *self.warmup,
            duration: *self.duration,
            max_calls: self.calls,
        }
    }

    async fn bench_stdio(&self, setup: &Setup, bench: Bench) -> anyhow::Result<Vec<Run>> {
        let clients = bench.clients;
        progress(format_args!(
            "stdio, {clients} client(s), {}: starting {}",
            bench.protocol.name(),
            bench.server_name()
        ));
        let mut server =
            stdio::Server::start(&setup.command(bench.server, false), bench.protocol).await?;
        let result = async {
            self.check(&mut server.client(), setup, bench).await?;
            let benign = (0..clients).map(|_| server.client()).collect();
            let hostile = (0..bench.hostile_clients(self))
                .map(|_| server.client())
                .collect();
            let connection = if clients == 1 {
                "1 request at a time on one stdio session".to_string()
            } else {
                format!("{clients} concurrent in-flight requests on one stdio session")
            };
            self.measure(
                Transport::Stdio,
                bench,
                connection,
                benign,
                hostile,
                setup,
                server.pid(),
            )
            .await
        }
        .await;
        server.stop().await;
        result.map_err(|e| server.explain(e))
    }

    async fn bench_http(&self, setup: &Setup, bench: Bench) -> anyhow::Result<Vec<Run>> {
        let clients = bench.clients;
        progress(format_args!(
            "http, {clients} client(s), {}: starting {}",
            bench.protocol.name(),
            bench.server_name()
        ));
        let mut server = http::Server::start(&setup.command(bench.server, true)).await?;
        let result = async {
            let mut benign = Vec::new();
            for _ in 0..clients {
                benign.push(server.session(bench.protocol).await?);
            }
            self.check(&mut benign[0], setup, bench).await?;
            let mut hostile = Vec::new();
            for _ in 0..bench.hostile_clients(self) {
                hostile.push(server.session(bench.protocol).await?);
            }
            let connection = match bench.protocol {
                Protocol::Session => format!(
                    "{clients} independent MCP session(s), one HTTP/1.1 connection each, sequential calls"
                ),
                Protocol::Stateless => format!(
                    "{clients} stateless client(s), one HTTP/1.1 connection each, sequential calls"
                ),
            };
            self.measure(
                Transport::Http,
                bench,
                connection,
                benign,
                hostile,
                setup,
                server.pid(),
            )
            .await
        }
        .await;
        server.stop().await;
        result.map_err(|e| server.explain(e))
    }

    /// The tools are served and one call of the benchmarked tool succeeds.
    async fn check<C: Client>(
        &self,
        client: &mut C,
        setup: &Setup,
        bench: Bench,
    ) -> anyhow::Result<()> {
        let tools = served_tools(client).await?;
        let mut wanted = vec![self.tool.as_str()];
        if bench.hostile_clients(self) > 0 {
            wanted.push(HOSTILE_TOOL);
        }
        for tool in wanted {
            // Listed in the portable spelling (`text__word-count`) by default, called here by the dotted one.
            let portable = are_runtime::catalog::portable_name(tool);
            ensure!(
                tools.iter().any(|t| t == tool || *t == portable),
                "{} does not offer the tool `{tool}`; it offers: {}",
                bench.server_name(),
                tools.join(", ")
            );
        }
        match call(client, &setup.tool, &setup.call).await {
            Outcome::Ok => Ok(()),
            other => bail!(
                "a first call of {} {} failed ({}): {}; give other arguments with --args",
                self.tool,
                setup.arguments,
                other.kind(),
                other.message()
            ),
        }
    }

    /// The baseline run, then the hostile one when asked, on the same server and clients.
    #[allow(clippy::too_many_arguments)]
    async fn measure<C: Client>(
        &self,
        transport: Transport,
        bench: Bench,
        connection: String,
        benign: Vec<C>,
        hostile: Vec<C>,
        setup: &Setup,
        server_pid: Option<u32>,
    ) -> anyhow::Result<Vec<Run>> {
        let clients = bench.clients;
        let phase = self.phase();
        let (benign, base) = run_phase(benign, Vec::new(), setup, &phase, server_pid).await?;
        let mut runs = vec![base.into_run(transport, bench, "none", connection.clone())];
        progress(format_args!(
            "{} {clients} client(s), {}, {}: {}",
            transport.name(),
            bench.protocol.name(),
            bench.server.name(),
            runs[0].brief()
        ));
        if !hostile.is_empty() {
            let (_, loaded) = run_phase(benign, hostile, setup, &phase, server_pid).await?;
            let run = loaded.into_run(transport, bench, "hostile", connection);
            progress(format_args!(
                "{} {clients} client(s), {}, {} + hostile: {}",
                transport.name(),
                bench.protocol.name(),
                bench.server.name(),
                run.brief()
            ));
            runs.push(run);
        }
        Ok(runs)
    }
}

fn progress(args: std::fmt::Arguments<'_>) {
    eprintln!("▸ {args}");
}

impl Run {
    fn brief(&self) -> String {
        let latency = self.latency_us.as_ref().map_or(String::new(), |s| {
            format!(", p50 {} p99 {}", fmt_us(s.p50_us), fmt_us(s.p99_us))
        });
        format!(
            "{} calls, {:.0}/s{latency}, {} errors",
            self.calls, self.calls_per_s, self.errors
        )
    }
}

/// One run's server, protocol and client count.
#[derive(Debug, Clone, Copy)]
struct Bench {
    server: ServerKind,
    protocol: Protocol,
    clients: u32,
}

impl Bench {
    fn server_name(self) -> &'static str {
        match self.server {
            ServerKind::Are => "are serve",
            ServerKind::Floor => "the floor server",
        }
    }

    /// Hostile clients of this run: the floor has no hostile tool to spin.
    fn hostile_clients(self, opts: &Opts) -> u32 {
        match (self.server, opts.hostile) {
            (ServerKind::Are, true) => opts.hostile_clients,
            _ => 0,
        }
    }
}

/// What every run of one `are bench mcp` shares.
struct Setup {
    exe: PathBuf,
    policy: PathBuf,
    _dir: TempDir,
    arguments: Value,
    /// The benign tool's name.
    tool: Arc<str>,
    /// `tools/call` params of the benign tool, serialized once.
    call: Arc<str>,
    /// `tools/call` params of the hostile tool.
    hostile_call: Arc<str>,
}

impl Setup {
    /// The command line of `server` on stdio, or on a loopback HTTP port when `http`.
    fn command(&self, server: ServerKind, http: bool) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = vec![self.exe.clone().into()];
        match server {
            ServerKind::Are => {
                argv.extend([
                    "serve".into(),
                    "--policy".into(),
                    self.policy.clone().into(),
                ]);
                if http {
                    argv.extend(["--http".into(), "127.0.0.1:0".into()]);
                }
            }
            ServerKind::Floor => {
                let transport = if http { "http" } else { "stdio" };
                argv.extend([
                    "bench".into(),
                    "floor-server".into(),
                    "--transport".into(),
                    transport.into(),
                ]);
            }
        }
        argv
    }
}

/// A directory removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("are-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `<dir>/<component>.wasm`, or with `-` as `_` (how cargo names the files of `hostile-loop`).
fn find_component(dir: &Path, component: &str) -> anyhow::Result<PathBuf> {
    let candidates = [
        dir.join(format!("{component}.wasm")),
        dir.join(format!("{}.wasm", component.replace('-', "_"))),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .with_context(|| {
            format!(
                "no component `{component}` in {}: build the example tools with `cargo build -p are-tests` \
                 (from the repository root), or point --tools-dir at a directory of components",
                dir.display()
            )
        })
}

fn path_string(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

/// A short input for the example tools.
fn default_arguments(tool: &str) -> Value {
    match tool {
        "text.word-count" => json!({ "text": "the quick brown fox jumps over the lazy dog" }),
        "text.slugify" => json!({ "text": "The Quick Brown Fox" }),
        "hash.sha256-hex" => json!({ "text": "the quick brown fox jumps over the lazy dog" }),
        "kv.increment" => json!({ "name": "bench" }),
        "kv.get" => json!({ "key": "bench" }),
        _ => json!({}),
    }
}

/// `tools/call` params.
fn tool_call(tool: &str, arguments: &Value) -> String {
    json!({ "name": tool, "arguments": arguments }).to_string()
}

/// One JSON-RPC request, serialized.
fn request_line(id: u64, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

/// `initialize` params.
fn initialize_params() -> String {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": { "name": "are-bench", "version": env!("CARGO_PKG_VERSION") },
    })
    .to_string()
}

/// An MCP client connection: sends a request and waits for its response.
pub trait Client: Send + 'static {
    /// Send the JSON-RPC request `method` with `params` (serialized JSON) and return the response object
    /// (`result` or `error`), or why none came.
    /// `name` is the tool or task the request is about (for the `Mcp-Name` header of stateless HTTP).
    fn request(
        &mut self,
        method: &'static str,
        name: Option<&str>,
        params: &str,
    ) -> impl Future<Output = Result<Value, String>> + Send;
}

/// How one tool call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true`, and its text.
    ToolError(String),
    /// A JSON-RPC error.
    ProtocolError(String),
    /// No response: the connection broke, timed out, or answered something that is not JSON-RPC.
    Transport(String),
}

impl Outcome {
    fn of(response: &Value) -> Outcome {
        if let Some(error) = response.get("error") {
            return Outcome::ProtocolError(format!(
                "{} {}",
                error["code"],
                error["message"].as_str().unwrap_or_default()
            ));
        }
        let Some(result) = response.get("result") else {
            return Outcome::Transport(format!("not a JSON-RPC response: {response}"));
        };
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            Outcome::ToolError(
                result["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        } else {
            Outcome::Ok
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError(_) => "tool_error",
            Outcome::ProtocolError(_) => "protocol_error",
            Outcome::Transport(_) => "transport",
        }
    }

    fn message(&self) -> &str {
        match self {
            Outcome::Ok => "",
            Outcome::ToolError(m) | Outcome::ProtocolError(m) | Outcome::Transport(m) => m,
        }
    }
}

/// Call a tool, bounded by [`REQUEST_TIMEOUT`].
async fn call<C: Client>(client: &mut C, tool: &str, params: &str) -> Outcome {
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        client.request("tools/call", Some(tool), params),
    )
    .await
    {
        Ok(Ok(response)) => Outcome::of(&response),
        Ok(Err(e)) => Outcome::Transport(e),
        Err(_) => Outcome::Transport(format!(
            "no response within {}",
            humantime::format_duration(REQUEST_TIMEOUT)
        )),
    }
}

/// Every tool name the server lists, following pages.
async fn served_tools<C: Client>(client: &mut C) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }).to_string(),
            None => "{}".to_string(),
        };
        let response =
            tokio::time::timeout(REQUEST_TIMEOUT, client.request("tools/list", None, &params))
                .await
                .context("tools/list got no answer")?
                .map_err(anyhow::Error::msg)
                .context("tools/list failed")?;
        let result = response
            .get("result")
            .with_context(|| format!("tools/list failed: {response}"))?;
        names.extend(
            result["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Timing of one measured phase.
struct Phase {
    warmup: Duration,
    duration: Duration,
    max_calls: Option<u64>,
}

/// Calls of one client task, or of all of them merged.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<&'static str, ErrorCount>,
    /// Stopped by a timeout (for hostile calls, the expected end).
    stopped: u64,
    last_finish: Option<Instant>,
}

impl Tally {
    fn record(&mut self, outcome: Outcome, latency: Duration, finished: Instant) {
        self.last_finish = Some(self.last_finish.map_or(finished, |l| l.max(finished)));
        if outcome == Outcome::Ok {
            self.latencies.push(latency);
            return;
        }
        let entry = self.errors.entry(outcome.kind()).or_insert(ErrorCount {
            count: 0,
            example: outcome.message().to_string(),
        });
        entry.count += 1;
    }

    /// Hostile calls: their latency whatever the outcome, and whether the timeout stopped them.
    fn record_hostile(&mut self, outcome: Outcome, latency: Duration, finished: Instant) {
        self.last_finish = Some(self.last_finish.map_or(finished, |l| l.max(finished)));
        self.latencies.push(latency);
        match &outcome {
            Outcome::ToolError(m) if m.starts_with("timed out") => self.stopped += 1,
            _ => {
                let entry = self.errors.entry(outcome.kind()).or_insert(ErrorCount {
                    count: 0,
                    example: outcome.message().to_string(),
                });
                entry.count += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (kind, e) in other.errors {
            self.errors
                .entry(kind)
                .and_modify(|mine| mine.count += e.count)
                .or_insert(e);
        }
        self.stopped += other.stopped;
        self.last_finish = match (self.last_finish, other.last_finish) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn calls(&self) -> u64 {
        self.latencies.len() as u64 + self.errors.values().map(|e| e.count).sum::<u64>()
    }
}

/// What one phase measured.
struct Measured {
    benign: Tally,
    hostile: Option<Tally>,
    window: Duration,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Measured {
    fn into_run(
        self,
        transport: Transport,
        bench: Bench,
        load: &'static str,
        connection: String,
    ) -> Run {
        let clients = bench.clients;
        let calls = self.benign.latencies.len() as u64;
        let errors = self.benign.errors.values().map(|e| e.count).sum();
        let seconds = self.window.as_secs_f64();
        let per_call = |cpu: Option<Duration>| {
            cpu.filter(|_| calls > 0)
                .map(|c| (c.as_secs_f64() * 1e7 / calls as f64).round() / 10.0)
        };
        Run {
            server: bench.server,
            protocol: bench.protocol,
            transport,
            clients,
            load,
            connection,
            calls,
            errors,
            error_kinds: self.benign.errors,
            seconds: (seconds * 1e3).round() / 1e3,
            calls_per_s: if seconds > 0.0 {
                (calls as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            },
            latency_us: Latencies::new(self.benign.latencies).summary(),
            server_cpu_us_per_call: per_call(self.server_cpu),
            client_cpu_us_per_call: per_call(self.client_cpu),
            hostile: self.hostile.map(|h| HostileFigures {
                calls: h.calls(),
                stopped: h.stopped,
                latency_us: Latencies::new(h.latencies).summary(),
                error_kinds: h.errors,
            }),
        }
    }
}

/// Run `benign` clients calling the benchmarked tool, and `hostile` ones calling the hostile tool, for one
/// phase. Calls that start before the warm-up ends are not counted; the window ends at the last counted
/// response. Hands the clients back for the next phase.
async fn run_phase<C: Client>(
    benign: Vec<C>,
    hostile: Vec<C>,
    setup: &Setup,
    phase: &Phase,
    server_pid: Option<u32>,
) -> anyhow::Result<(Vec<C>, Measured)> {
    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let end = measure_from + phase.duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hostile_count = hostile.len();

    let mut hostile_tasks = Vec::new();
    for mut client in hostile {
        let params = setup.hostile_call.clone();
        let tool = HOSTILE_TOOL;
        let stop = stop.clone();
        hostile_tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = call(&mut client, tool, &params).await;
                let finished = Instant::now();
                let broken = matches!(outcome, Outcome::Transport(_));
                if started >= measure_from {
                    tally.record_hostile(outcome, finished - started, finished);
                }
                if broken {
                    break;
                }
            }
            tally
        }));
    }

    let mut benign_tasks = Vec::new();
    for mut client in benign {
        let params = setup.call.clone();
        let tool = setup.tool.clone();
        let (tickets, stop) = (tickets.clone(), stop.clone());
        let max_calls = phase.max_calls;
        benign_tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let started = Instant::now();
                if started >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                let measured = started >= measure_from;
                if measured
                    && let Some(max) = max_calls
                    && tickets.fetch_add(1, Ordering::Relaxed) >= max
                {
                    break;
                }
                let outcome = call(&mut client, &tool, &params).await;
                let finished = Instant::now();
                let broken = matches!(outcome, Outcome::Transport(_));
                if measured {
                    tally.record(outcome, finished - started, finished);
                }
                if broken {
                    // The connection is gone: end the phase for everyone rather than count a storm of failures.
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            (client, tally)
        }));
    }

    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = (server_pid.and_then(process_cpu), own_cpu());
    let mut clients = Vec::with_capacity(benign_tasks.len());
    let mut benign = Tally::default();
    let mut failure = None;
    for task in benign_tasks {
        match task.await {
            Ok((client, tally)) => {
                clients.push(client);
                benign.merge(tally);
            }
            Err(e) => failure = Some(e),
        }
    }
    let cpu_after = (server_pid.and_then(process_cpu), own_cpu());
    stop.store(true, Ordering::Relaxed);
    let mut hostile = Tally::default();
    for task in hostile_tasks {
        match task.await {
            Ok(tally) => hostile.merge(tally),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        bail!("a client task failed: {e}");
    }
    let window = benign.last_finish.map_or(Duration::ZERO, |l| {
        l.saturating_duration_since(measure_from)
    });
    let delta =
        |before: Option<Duration>, after: Option<Duration>| Some(after?.saturating_sub(before?));
    Ok((
        clients,
        Measured {
            benign,
            hostile: (hostile_count > 0).then_some(hostile),
            window,
            server_cpu: delta(cpu_before.0, cpu_after.0),
            client_cpu: delta(cpu_before.1, cpu_after.1),
        },
    ))
}

/// The last lines a child printed on stderr, kept for error messages; drains the pipe so the child never
/// blocks on it.
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StderrTail {
    const KEEP: usize = 30;

    /// Read `stderr` to its end, calling `on_line` with each line.
    fn spawn(
        stderr: tokio::process::ChildStderr,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> StderrTail {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let kept = lines.clone();
        let task = tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                on_line(&line);
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == Self::KEEP {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        StderrTail { lines, task }
    }

    /// Wait (briefly) for the child's stderr to end, after the child has exited.
    async fn finish(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.task).await;
    }

    /// `error` with what the child printed, if anything.
    fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() {
            return error;
        }
        let text: Vec<&str> = lines.iter().map(String::as_str).collect();
        error.context(format!(
            "`are serve` said on stderr:\n    {}",
            text.join("\n    ")
        ))
    }
}

impl Drop for StderrTail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Stop a child: `SIGINT` (or the closed stdin the caller arranged) first, then kill it if it is still there
/// after a few seconds.
async fn stop_child(child: &mut tokio::process::Child, interrupt: bool) {
    if interrupt && let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses() {
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [], "isError": false}});
        assert_eq!(Outcome::of(&ok), Outcome::Ok);
        let no_flag = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        assert_eq!(Outcome::of(&no_flag), Outcome::Ok);
        let tool = json!({"id": 1, "result": {"content": [{"type": "text", "text": "timed out: …"}], "isError": true}});
        assert_eq!(
            Outcome::of(&tool),
            Outcome::ToolError("timed out: …".into())
        );
        let protocol = json!({"id": 1, "error": {"code": -32602, "message": "unknown tool `x`"}});
        assert_eq!(
            Outcome::of(&protocol),
            Outcome::ProtocolError("-32602 unknown tool `x`".into())
        );
        assert!(matches!(
            Outcome::of(&json!({"id": 1})),
            Outcome::Transport(_)
        ));
    }

    #[test]
    fn requests_are_json_rpc() {
        let line = request_line(
            7,
            "tools/call",
            &tool_call("text.word-count", &json!({"text": "a \"b\""})),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 7);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "text.word-count");
        assert_eq!(v["params"]["arguments"]["text"], "a \"b\"");
    }

    #[test]
    fn tallies_count_and_merge() {
        let now = Instant::now();
        let mut a = Tally::default();
        a.record(Outcome::Ok, Duration::from_micros(10), now);
        a.record(
            Outcome::ToolError("busy".into()),
            Duration::from_micros(5),
            now,
        );
        let mut b = Tally::default();
        let later = now + Duration::from_millis(1);
        b.record(
            Outcome::ToolError("other".into()),
            Duration::from_micros(5),
            later,
        );
        b.record_hostile(
            Outcome::ToolError("timed out: x".into()),
            Duration::from_millis(100),
            later,
        );
        a.merge(b);
        assert_eq!(a.latencies.len(), 2);
        assert_eq!(a.errors["tool_error"].count, 2);
        assert_eq!(a.errors["tool_error"].example, "busy");
        assert_eq!(a.stopped, 1);
        assert_eq!(a.last_finish, Some(later));
        assert_eq!(a.calls(), 4);
    }

    #[test]
    fn finds_components_or_says_how_to_build_them() {
        let dir = std::env::temp_dir().join(format!("are-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hostile_loop.wasm"), b"").unwrap();
        assert!(find_component(&dir, "hostile-loop").is_ok());
        let missing = find_component(&dir, "text").unwrap_err().to_string();
        assert!(missing.contains("cargo build -p are-tests"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
