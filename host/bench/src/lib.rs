//! `are bench`: performance figures, measured by the `are` binary on this machine, in one run.
//!
//! This crate is the harness behind `are bench` and the criterion benches (`benches/runtime.rs`), kept out of
//! the runtime crates: the `are` binary (package `are-cli`) flattens [`Opts`] into its `bench` subcommand and
//! calls [`Opts::run`]. The MCP and agent figures start the running executable again (`are serve`, `are bench
//! idle-agents`), so [`Opts::run`] must be called from the `are` binary.
//!
//! `are bench` alone prints the headline table: the in-process figures (`inproc`: compile, load from the
//! cache, cold process start, instantiate on-demand and pooling, small and 1 MiB calls in fresh and warm
//! instances, calls/s, metered compute against native, audit on and off, runaway stopped), MCP load over stdio
//! and Streamable HTTP with 1, 16 and 64 clients, with and without hostile tools (`mcp`), and agents at scale
//! (`agents`); then the ratios and the targets. `are bench inproc|mcp|agents` runs one part. `--quick`
//! shrinks every sample count and duration so that a test can run it all in seconds; `--json` prints one
//! document instead of tables. The native baselines of the compute figures are in [`native`].
//!
//! The example guests come from `--tools-dir`, or are built from the checkout's `example-tools/` the way
//! `are demo` builds them (adding the `wasm32-wasip2` target when it is missing).
//!
//! Shared here: figures, ratios and targets, latency percentiles, CPU time of processes, the machine
//! description, and duration formatting.

#![deny(missing_docs)]

mod agents;
mod inproc;
mod mcp;
pub mod native;

use anyhow::Context as _;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

// The runtime this crate measures: every use of it is in a `use` block at the top of a file.
use are_build as guest_build;
use are_policy::common::fmt_bytes;

/// `are bench [inproc | mcp … | agents] [--quick] [--json] [--tools-dir DIR]`.
#[derive(clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Print one JSON document on stdout instead of tables (progress still goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Few samples and short runs: every figure in seconds, for tests and smoke checks (not for publishing).
    #[arg(long, global = true)]
    quick: bool,
    /// Take the example components from this directory (`text.wasm`, `hash.wasm`, `hostile_loop.wasm`,
    /// `agent_probe.wasm`) instead of building them from the checkout's `example-tools/`.
    #[arg(long, global = true, value_name = "DIR")]
    tools_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// In-process figures only: compile, cache, instantiate, calls, metering against native, audit, runaway.
    Inproc {
        /// Only the figures whose id starts with this, e.g. `call.fresh.pooling` or `compute` (to profile one).
        #[arg(long, value_name = "ID_PREFIX")]
        only: Option<String>,
    },
    /// MCP load: `are serve` as a child process, N concurrent clients calling a small tool over stdio and
    /// Streamable HTTP; calls/s and latency percentiles, optionally with hostile tools spinning alongside.
    Mcp(mcp::Opts),
    /// Agents at scale: activation latency, messages/s between two agents, memory per idle agent, idle agents
    /// in a memory budget.
    Agents,
    /// The floor `are bench mcp` measures `are serve` against: a bare JSON-RPC server (run by `are bench mcp`
    /// in a child process).
    #[command(hide = true)]
    FloorServer {
        /// The transport to serve.
        #[arg(long, value_enum)]
        transport: mcp::FloorTransport,
    },
    /// Activate idle agents until the budget or a limit and print what they took as JSON (run by `are bench
    /// agents` in a child process, one per engine configuration).
    #[command(hide = true)]
    IdleAgents {
        /// Copy initial memory into each instance instead of mapping it copy-on-write.
        #[arg(long)]
        copy: bool,
    },
}

/// Everything one `are bench` measured.
#[derive(Debug, Serialize)]
pub struct Document {
    /// Where.
    pub machine: Machine,
    /// The command that printed it.
    pub command: String,
    /// Whether `--quick` shrank the runs (figures are then rough).
    pub quick: bool,
    /// 1, 5 and 15 minute load averages before and after the run: other work on the machine skews figures.
    pub load_average: LoadAverages,
    /// Every latency and rate, by id.
    pub figures: Vec<Figure>,
    /// Figures against each other.
    pub ratios: Vec<Ratio>,
    /// The goals, and whether this run met them.
    pub targets: Vec<Target>,
    /// MCP load, when it ran.
    pub mcp: Option<mcp::Report>,
}

/// `/proc/loadavg` before and after.
#[derive(Debug, Clone, Serialize)]
pub struct LoadAverages {
    /// Before the first figure.
    pub before: Option<[f64; 3]>,
    /// After the last.
    pub after: Option<[f64; 3]>,
}

/// One measured figure: a latency distribution, or a value with a unit.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable id, e.g. `call.fresh.pooling`.
    pub id: &'static str,
    /// What was measured, in words.
    pub label: String,
    /// Samples (calls, runs, agents) behind it.
    pub samples: usize,
    /// Median latency, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<f64>,
    /// Mean latency, µs.
    pub mean_us: Option<f64>,
    /// Slowest, µs.
    pub max_us: Option<f64>,
    /// A value that is not a latency (calls/s, bytes, agents).
    pub value: Option<f64>,
    /// Its unit.
    pub unit: Option<&'static str>,
    /// More about how it was measured.
    pub note: Option<String>,
}

impl Figure {
    /// A latency figure from `latencies`.
    pub fn latency(id: &'static str, label: String, latencies: &Latencies) -> Figure {
        let s = latencies.summary();
        Figure {
            id,
            label,
            samples: latencies.len(),
            p50_us: s.map(|s| s.p50_us),
            p99_us: s.map(|s| s.p99_us),
            mean_us: s.map(|s| s.mean_us),
            max_us: s.map(|s| s.max_us),
            value: None,
            unit: None,
            note: None,
        }
    }

    /// A value figure.
    pub fn value(id: &'static str, label: String, value: f64, unit: &'static str) -> Figure {
        Figure {
            id,
            label,
            samples: 1,
            p50_us: None,
            p99_us: None,
            mean_us: None,
            max_us: None,
            value: Some(value),
            unit: Some(unit),
            note: None,
        }
    }

    fn columns(&self) -> (String, String) {
        match (self.p50_us, self.p99_us, self.value) {
            (Some(p50), Some(p99), _) => (fmt_us(p50), fmt_us(p99)),
            (_, _, Some(v)) => (fmt_value(v, self.unit.unwrap_or_default()), String::new()),
            _ => ("-".into(), "-".into()),
        }
    }
}

/// One figure over another (of their medians, or values).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Stable id.
    pub id: &'static str,
    /// In words.
    pub label: &'static str,
    /// The figure on top.
    pub numerator: String,
    /// The figure below.
    pub denominator: String,
    /// numerator / denominator (of p50s), two decimals.
    pub ratio: f64,
}

/// A goal and this run's figure against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Stable id.
    pub id: &'static str,
    /// The goal, in words.
    pub goal: &'static str,
    /// What this run measured, in words.
    pub measured: String,
    /// Whether it met the goal.
    pub met: bool,
}

impl Opts {
    /// Measure what the arguments ask for and print it; fails when a figure cannot be measured, and exits
    /// with failure when an MCP run had failed calls.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let load_before = load_average();
        let scratch = Scratch::new()?;
        let (run_inproc, only, run_agents, mcp) = match self.command {
            Some(Cmd::FloorServer { transport }) => {
                mcp::serve_floor(transport).await?;
                return Ok(ExitCode::SUCCESS);
            }
            Some(Cmd::IdleAgents { copy }) => {
                let guests = Guests::resolve(self.tools_dir.clone(), &self.command)?;
                agents::idle_child(&guests, self.quick, copy, &scratch.0).await?;
                return Ok(ExitCode::SUCCESS);
            }
            None => (true, None, true, Some(mcp_defaults(self.quick)?)),
            Some(Cmd::Inproc { ref only }) => (true, only.clone(), false, None),
            Some(Cmd::Agents) => (false, None, true, None),
            Some(Cmd::Mcp(_)) => (false, None, false, None),
        };
        let guests = Guests::resolve(self.tools_dir.clone(), &self.command)?;
        let mcp = match (mcp, self.command) {
            (Some(defaults), _) => Some(defaults),
            (None, Some(Cmd::Mcp(opts))) => Some(opts),
            (None, _) => None,
        };
        let mut figures = Vec::new();
        if run_inproc {
            figures.extend(
                inproc::Inproc::new(&guests, self.quick, &scratch.0)?
                    .only(only)
                    .run()
                    .await?,
            );
        }
        let mcp = match mcp {
            Some(opts) => Some(opts.run(&guests.dir).await?),
            None => None,
        };
        if run_agents {
            figures.extend(agents::run(&guests, self.quick, &scratch.0).await?);
        }
        let doc = Document {
            machine: Machine::describe(),
            command,
            quick: self.quick,
            load_average: LoadAverages {
                before: load_before,
                after: load_average(),
            },
            ratios: ratios(&figures, mcp.as_ref()),
            targets: targets(&figures),
            figures,
            mcp,
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print!("{}", doc.table());
        }
        let failed = doc.mcp.as_ref().is_some_and(mcp::Report::failed);
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// MCP load as `are bench` runs it: stdio and HTTP, 1, 16 and 64 clients, with and without hostile calls.
fn mcp_defaults(quick: bool) -> anyhow::Result<mcp::Opts> {
    use clap::{Args as _, FromArgMatches as _};
    let (duration, warmup, calls) = if quick {
        ("300ms", "50ms", "5000")
    } else {
        ("2s", "300ms", "200000")
    };
    let args = [
        "mcp",
        "--clients",
        "1,16,64",
        "--hostile",
        "--duration",
        duration,
        "--warmup",
        warmup,
        "--calls",
        calls,
    ];
    let matches = mcp::Opts::augment_args(clap::Command::new("mcp")).try_get_matches_from(args)?;
    Ok(mcp::Opts::from_arg_matches(&matches)?)
}

/// The example components the figures use.
pub struct Guests {
    /// The directory of the components.
    pub dir: PathBuf,
}

/// The packages of `example-tools/` that `are bench` uses.
const GUEST_PACKAGES: &[&str] = &["text", "hash", "hostile-loop", "agent-probe"];

impl Guests {
    /// `dir`, or the example tools built from the checkout this binary was built from.
    fn resolve(dir: Option<PathBuf>, command: &Option<Cmd>) -> anyhow::Result<Guests> {
        if let Some(dir) = dir {
            // Policies written under the scratch directory name the components: make the paths absolute.
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("--tools-dir {}", dir.display()))?;
            return Ok(Guests { dir });
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let manifest = root.join("example-tools/Cargo.toml");
        if !manifest.is_file() {
            anyhow::bail!(
                "{} is missing (this binary was built elsewhere): pass --tools-dir with text.wasm, hash.wasm, \
                 hostile_loop.wasm and agent_probe.wasm",
                manifest.display()
            );
        }
        let packages: Vec<String> = match command {
            Some(Cmd::Mcp(_)) => vec!["text".into(), "hostile-loop".into()],
            _ => GUEST_PACKAGES.iter().map(|p| p.to_string()).collect(),
        };
        progress(format_args!(
            "building the example tools ({}) for wasm32-wasip2 …",
            packages.join(", ")
        ));
        guest_build::ensure_wasm_target()?;
        let built =
            guest_build::build_components(&manifest, &root.join("target/guests"), Some(&packages))?;
        let dir = built
            .first()
            .and_then(|c| c.wasm.parent())
            .context("building the example tools produced no component")?
            .to_path_buf();
        Ok(Guests { dir })
    }

    /// The component of package `name` (`hostile-loop` is `hostile_loop.wasm`).
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        let candidates = [
            self.dir.join(format!("{name}.wasm")),
            self.dir.join(format!("{}.wasm", name.replace('-', "_"))),
        ];
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .with_context(|| {
                format!(
                    "no component `{name}` in {}: build the example tools with `cargo build -p are-tests`, or \
                     point --tools-dir at a directory of components",
                    self.dir.display()
                )
            })
    }
}

/// A private directory for caches, logs and stores, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("are-bench-scratch-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path as a string (for a policy file).
fn path_string(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

/// A progress line on stderr.
fn progress(args: std::fmt::Arguments<'_>) {
    eprintln!("are bench: {args}");
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

fn find<'a>(figures: &'a [Figure], id: &str) -> Option<&'a Figure> {
    figures.iter().find(|f| f.id == id)
}

fn p50(figures: &[Figure], id: &str) -> Option<f64> {
    find(figures, id).and_then(|f| f.p50_us)
}

/// The ratios between the figures that ran.
fn ratios(figures: &[Figure], mcp: Option<&mcp::Report>) -> Vec<Ratio> {
    let mut out = Vec::new();
    let mut add = |id, label, num: &str, den: &str, a: Option<f64>, b: Option<f64>| {
        if let (Some(a), Some(b)) = (a, b)
            && b > 0.0
        {
            out.push(Ratio {
                id,
                label,
                numerator: num.to_string(),
                denominator: den.to_string(),
                ratio: (a / b * 100.0).round() / 100.0,
            });
        }
    };
    let native = "compute.native.portable";
    for (id, label, wasm) in [
        (
            "metered_vs_native.fuel_epoch",
            "metered compute (fuel + epoch) vs native, same code",
            "compute.wasm.fuel_epoch",
        ),
        (
            "metered_vs_native.epoch",
            "metered compute (epoch only) vs native, same code",
            "compute.wasm.epoch",
        ),
        (
            "metered_vs_native.none",
            "unmetered compute vs native, same code",
            "compute.wasm.none",
        ),
    ] {
        add(
            id,
            label,
            wasm,
            native,
            p50(figures, wasm),
            p50(figures, native),
        );
    }
    add(
        "metered_vs_native_sha2.fuel_epoch",
        "metered compute (fuel + epoch) vs the sha2 crate natively (with CPU SHA instructions if any)",
        "compute.wasm.fuel_epoch",
        "compute.native.sha2",
        p50(figures, "compute.wasm.fuel_epoch"),
        p50(figures, "compute.native.sha2"),
    );
    add(
        "pooling_vs_on_demand.instantiate",
        "instantiate + drop: pooling vs on-demand",
        "instantiate.pooling",
        "instantiate.on_demand",
        p50(figures, "instantiate.pooling"),
        p50(figures, "instantiate.on_demand"),
    );
    add(
        "pooling_vs_on_demand.call",
        "fresh-instance call: pooling vs on-demand",
        "call.fresh.pooling",
        "call.fresh.on_demand",
        p50(figures, "call.fresh.pooling"),
        p50(figures, "call.fresh.on_demand"),
    );
    add(
        "warm_vs_fresh.call",
        "warm-instance call vs fresh-instance call (pooling)",
        "call.warm",
        "call.fresh.pooling",
        p50(figures, "call.warm"),
        p50(figures, "call.fresh.pooling"),
    );
    add(
        "audit.on_vs_off",
        "audit trail on vs off (fresh-instance call)",
        "audit.on",
        "audit.off",
        p50(figures, "audit.on"),
        p50(figures, "audit.off"),
    );
    if let Some(report) = mcp {
        for (transport, id, label) in [
            (
                mcp::Transport::Stdio,
                "mcp_vs_inproc.stdio",
                "MCP over stdio (1 client, client-side) vs in-process fresh-instance call",
            ),
            (
                mcp::Transport::Http,
                "mcp_vs_inproc.http",
                "MCP over HTTP (1 client, client-side) vs in-process fresh-instance call",
            ),
        ] {
            let run = report.runs.iter().find(|r| {
                r.server == mcp::ServerKind::Are
                    && r.protocol == mcp::Protocol::Session
                    && r.transport == transport
                    && r.clients == 1
                    && r.load == "none"
            });
            add(
                id,
                label,
                &format!("mcp.{}.1", transport_name(transport)),
                "call.fresh.pooling",
                run.and_then(|r| r.latency_us.map(|l| l.p50_us)),
                p50(figures, "call.fresh.pooling"),
            );
        }
    }
    out
}

fn transport_name(t: mcp::Transport) -> &'static str {
    match t {
        mcp::Transport::Stdio => "stdio",
        mcp::Transport::Http => "http",
    }
}

/// The goals of issue 7 against the figures that ran.
fn targets(figures: &[Figure]) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(p) = p50(figures, "call.fresh.pooling") {
        out.push(Target {
            id: "call.fresh.p50",
            goal: "fresh instance + small JSON call, in-process: p50 ≤ 30 µs",
            measured: format!("p50 {}", fmt_us(p)),
            met: p <= 30.0,
        });
    }
    if let Some(v) = find(figures, "call.fresh.throughput").and_then(|f| f.value) {
        out.push(Target {
            id: "call.fresh.throughput",
            goal: "≥ 50 000 calls/s with a fresh instance each, on this machine's cores",
            measured: fmt_value(v, "calls/s"),
            met: v >= 50_000.0,
        });
    }
    let native = p50(figures, "compute.native.portable");
    for (id, goal, wasm, limit) in [
        (
            "metered.fuel_epoch",
            "metered compute (fuel + epoch) ≤ 2× native",
            "compute.wasm.fuel_epoch",
            2.0,
        ),
        (
            "metered.epoch",
            "epoch-only compute ≤ 1.3× native",
            "compute.wasm.epoch",
            1.3,
        ),
    ] {
        if let (Some(w), Some(n)) = (p50(figures, wasm), native) {
            let r = w / n;
            out.push(Target {
                id,
                goal,
                measured: format!("{r:.2}×"),
                met: r <= limit,
            });
        }
    }
    if let Some(f) = find(figures, "runaway.stopped")
        && let Some(max) = f.max_us
    {
        let timeout_us = f
            .note
            .as_deref()
            .and_then(|n| n.strip_prefix("timeout_us="))
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0);
        out.push(Target {
            id: "runaway.stopped",
            goal: "a runaway guest stopped ≤ timeout + 10 ms",
            measured: format!(
                "slowest stop {} after a {} timeout (+{})",
                fmt_us(max),
                fmt_us(timeout_us),
                fmt_us((max - timeout_us).max(0.0))
            ),
            met: max <= timeout_us + 10_000.0,
        });
    }
    if let Some(p) = p50(figures, "process.cold_start") {
        out.push(Target {
            id: "process.cold_start",
            goal: "cold process start to first result, from the cache: ≤ 20 ms",
            measured: format!("p50 {}", fmt_us(p)),
            met: p <= 20_000.0,
        });
    }
    if let Some(v) = find(figures, "agents.idle_in_budget").and_then(|f| f.value) {
        out.push(Target {
            id: "agents.idle_in_budget",
            goal: "10 000 idle agents within a 1 GiB memory budget",
            measured: fmt_value(v, "agents"),
            met: v >= agents::IDLE_TARGET as f64,
        });
    }
    out
}

impl Document {
    /// The headline table, then ratios, targets, MCP load and notes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.machine.line());
        let fmt_load =
            |l: Option<[f64; 3]>| l.map_or("?".into(), |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"));
        let _ = writeln!(
            out,
            "load average (1/5/15 min): {} before, {} after{}",
            fmt_load(self.load_average.before),
            fmt_load(self.load_average.after),
            if self.quick {
                "; --quick: few samples, rough figures"
            } else {
                ""
            }
        );
        if !self.figures.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<96} {:>10} {:>9} {:>8}",
                "figure", "p50", "p99", "samples"
            );
            for f in &self.figures {
                let (a, b) = f.columns();
                let _ = writeln!(out, "{:<96} {a:>10} {b:>9} {:>8}", f.label, f.samples);
            }
            let notes: Vec<_> = self
                .figures
                .iter()
                .filter_map(|f| {
                    f.note
                        .as_ref()
                        .filter(|n| !n.starts_with("timeout_us="))
                        .map(|n| (f.id, n))
                })
                .collect();
            if !notes.is_empty() {
                let _ = writeln!(out);
                for (id, note) in notes {
                    let _ = writeln!(out, "  {id}: {note}");
                }
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(out, "\nratios (of medians)");
            for r in &self.ratios {
                let _ = writeln!(out, "  {:<96} {:>6.2}×", r.label, r.ratio);
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  {} {:<70} {}",
                    if t.met { "met   " } else { "SHORT " },
                    t.goal,
                    t.measured
                );
            }
        }
        if let Some(mcp) = &self.mcp {
            out.push_str(&mcp.table());
        }
        out
    }
}

/// A value with its unit, digits grouped: `52 310 calls/s`, `1.2 MiB`.
fn fmt_value(v: f64, unit: &str) -> String {
    if unit == "bytes" {
        return fmt_bytes(v as u64);
    }
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{grouped} {unit}")
}

/// Where figures were measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `are` version.
    pub are_version: &'static str,
    /// CPUs this process may use.
    pub cpus: usize,
    /// CPU model, from `/proc/cpuinfo` when there is one.
    pub cpu_model: Option<String>,
    /// `linux-x86_64` and the like.
    pub platform: String,
    /// Whether this binary has optimizations on (a debug build's figures mean little).
    pub release_build: bool,
    /// When, in RFC 3339 (UTC).
    pub date: String,
}

impl Machine {
    /// This machine, now.
    pub fn describe() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            });
        Machine {
            are_version: env!("CARGO_PKG_VERSION"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            release_build: !cfg!(debug_assertions),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// One line for the top of a table.
    pub fn line(&self) -> String {
        let build = if self.release_build {
            "release build"
        } else {
            "DEBUG build: figures are not representative, use `cargo build --release`"
        };
        format!(
            "are {} on {} CPU(s){}, {}, {build}, {}",
            self.are_version,
            self.cpus,
            self.cpu_model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            self.platform,
            self.date
        )
    }
}

/// Latencies of one run, sorted, for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sort `samples`.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The samples, sorted.
    pub fn into_samples(self) -> Vec<Duration> {
        self.0
    }

    /// The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest sample such that at least
    /// `p` % of the samples are at most it. `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, n) - 1])
    }

    /// p50, p90, p99, max and mean, in microseconds.
    pub fn summary(&self) -> Option<Summary> {
        let max = *self.0.last()?;
        let total: Duration = self.0.iter().sum();
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        Some(Summary {
            p50_us: us(self.percentile(50.0)?),
            p90_us: us(self.percentile(90.0)?),
            p99_us: us(self.percentile(99.0)?),
            max_us: us(max),
            mean_us: us(total / self.0.len() as u32),
        })
    }
}

/// Percentiles of a run, in microseconds (one decimal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// A duration in microseconds, readable: `87µs`, `1.24ms`, `101ms`, `2.50s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (Linux; clock-tick resolution,
/// usually 10 ms).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat, clock_ticks_per_second()?)
}

/// CPU time (user + system) this process has used so far.
pub fn own_cpu() -> Option<Duration> {
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_proc_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_micros(ticks * 1_000_000 / ticks_per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Latencies {
        Latencies::new(v.iter().map(|&m| Duration::from_millis(m)).collect())
    }

    #[test]
    fn nearest_rank_percentiles() {
        let l = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(l.percentile(90.0), Some(Duration::from_millis(90)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(l.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(l.percentile(0.1), Some(Duration::from_millis(1)));

        // Few samples: the p99 of 10 samples is the largest, the median of 4 is the 2nd.
        let l = ms(&[40, 10, 30, 20]);
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(20)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(40)));
        let l = ms(&[7]);
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(7)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(7)));

        assert_eq!(Latencies::default().percentile(50.0), None);
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn summary_in_microseconds() {
        let s = Latencies::new(vec![
            Duration::from_micros(100),
            Duration::from_nanos(200_480),
            Duration::from_micros(300),
        ])
        .summary()
        .unwrap();
        assert_eq!(s.p50_us, 200.5);
        assert_eq!(s.p99_us, 300.0);
        assert_eq!(s.max_us, 300.0);
        assert_eq!(s.mean_us, 200.2);
    }

    #[test]
    fn groups_digits_of_values() {
        assert_eq!(fmt_value(52_310.4, "calls/s"), "52 310 calls/s");
        assert_eq!(fmt_value(999.0, "agents"), "999 agents");
        assert_eq!(fmt_value(10_000.0, "agents"), "10 000 agents");
        assert_eq!(fmt_value(47_206.0, "bytes"), "46.1 KiB");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_us(87.4), "87µs");
        assert_eq!(fmt_us(1_240.0), "1.24ms");
        assert_eq!(fmt_us(101_200.0), "101ms");
        assert_eq!(fmt_us(2_500_000.0), "2.50s");
    }

    #[test]
    fn reads_cpu_time_from_proc_stat() {
        let stat = "1234 (are serve (x)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_proc_stat_cpu(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_proc_stat_cpu("garbage", 100), None);
        // This process exists and has used some CPU.
        assert!(process_cpu(std::process::id()).is_some());
    }
}
