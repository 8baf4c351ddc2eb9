//! Subcommands of `are`, one module each. Shared flags live here and are flattened into the commands that use
//! them.

mod agents;
mod audit;
mod build;
mod cache;
mod call;
mod demo;
mod inspect;
mod new;
mod policy;
mod run;
mod serve;

use anyhow::Context as _;
use are_policy::{Fuel, LimitsSection, Policy, Size, Timeout};
use are_runtime::cache::CompileCache;
use are_runtime::component::ComponentSpec;
use are_runtime::engine::{AreEngine, EngineConfig};
use are_runtime::host::Host;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Agent Runtime Environment: run untrusted WebAssembly components as tools, with explicit grants and metering.
#[derive(Parser)]
#[command(name = "are", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (also `RUST_LOG`), e.g. `info` or `are=debug`.
    #[arg(
        long,
        global = true,
        env = "ARE_LOG",
        default_value = "warn,wasmtime_wasi_http=error,wasmtime_wasi=error"
    )]
    log: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Load remote component sources (`https://`, `oci://`) that have no `sha256` pin, instead of refusing them.
    #[arg(long, global = true)]
    allow_unpinned: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Call an exported function with JSON arguments.
    Call(call::Opts),
    /// Show a component's world, its tools with JSON schemas, and its imports by capability.
    Inspect(inspect::Opts),
    /// Manage the cache of precompiled components.
    #[command(subcommand)]
    Cache(cache::Cmd),
    /// Check policy files.
    #[command(subcommand)]
    Policy(policy::Cmd),
    /// Compile a guest crate (with a `wit/` folder) to a component, embedding its WIT docs.
    Build(build::Opts),
    /// Create a new guest crate from a template.
    #[command(subcommand)]
    New(new::Cmd),
    /// Run the agents of a policy (resuming unfinished messages), optionally sending them messages.
    Run(run::Opts),
    /// Look into the agent store (read-only).
    #[command(subcommand)]
    Agents(agents::Cmd),
    /// Verify and show the audit trail.
    #[command(subcommand)]
    Audit(audit::Cmd),
    /// Serve every tool of a policy over MCP (stdio, or Streamable HTTP with --http).
    Serve(serve::Opts),
    /// Build the example tools and show tools called, grants enforced and hostile code stopped.
    Demo(demo::Opts),
    /// Measure performance: in-process figures, MCP load over stdio and HTTP, agents (`are bench inproc|mcp|agents`).
    Bench(are_bench::Opts),
}

/// Parse arguments, run the command, and turn errors into `error:` lines and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    // TLS everywhere in the process on ring: reqwest (remote sources) has no crypto provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let globals = Globals {
        allow_unpinned: cli.allow_unpinned,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Call(opts) => opts.run(globals).await,
            Command::Inspect(opts) => opts.run(globals),
            Command::Cache(cmd) => cmd.run(),
            Command::Policy(cmd) => cmd.run(globals),
            Command::Build(opts) => opts.run(),
            Command::New(cmd) => cmd.run(),
            Command::Serve(opts) => opts.run(globals).await,
            Command::Run(opts) => opts.run(globals).await,
            Command::Agents(cmd) => cmd.run(),
            Command::Audit(cmd) => cmd.run(),
            Command::Demo(opts) => opts.run(globals).await,
            Command::Bench(opts) => opts.run().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Print `error: …` and its causes to stderr.
fn report_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    let mut causes = e.chain().skip(1).peekable();
    if causes.peek().is_some() {
        eprintln!("\nCaused by:");
        for cause in causes {
            eprintln!("    {cause}");
        }
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Flags that choose a policy and override its limits.
#[derive(clap::Args, Clone, Default)]
pub struct PolicyArgs {
    /// Policy file naming components, grants and limits (deny by default).
    #[arg(long, visible_alias = "config", value_name = "are.toml")]
    pub policy: Option<PathBuf>,
    /// Fuel per call (overrides the policy), or `unlimited`.
    #[arg(long)]
    pub fuel: Option<Fuel>,
    /// Wall-clock timeout per call, e.g. `5s` (overrides the policy).
    #[arg(long)]
    pub timeout: Option<Timeout>,
    /// Memory limit per instance, e.g. `64MiB` (overrides the policy).
    #[arg(long)]
    pub memory: Option<Size>,
    /// Largest result/stdout/stderr, e.g. `1MiB` (overrides the policy).
    #[arg(long)]
    pub max_output: Option<Size>,
}

impl PolicyArgs {
    /// The policy file, or an empty policy (nothing granted) when none was given.
    pub fn load_policy(&self) -> anyhow::Result<Policy> {
        match &self.policy {
            Some(path) => Ok(Policy::load(path)?),
            None => Ok(Policy::default()),
        }
    }

    fn cli_limits(&self) -> LimitsSection {
        LimitsSection {
            fuel: self.fuel,
            memory: self.memory,
            timeout: self.timeout,
            max_output: self.max_output,
            ..LimitsSection::default()
        }
    }

    /// The spec of `component`: a name from the policy, or a path (with the grants of the policy entry whose
    /// `source` is that file, if any; otherwise nothing granted).
    pub fn spec(
        &self,
        policy: &Policy,
        component: &str,
        wit_dir: Option<PathBuf>,
    ) -> ComponentSpec {
        let name = match policy.component(component) {
            Some(_) => Some(component),
            None => policy
                .component_for_path(Path::new(component))
                .map(|(name, _)| name),
        };
        match name.and_then(|name| ComponentSpec::from_policy(policy, name, self.cli_limits())) {
            Some(spec) => ComponentSpec { wit_dir, ..spec },
            None => ComponentSpec {
                // The file stem, or for `https://`/`oci://` the last segment; a bad source fails when loading.
                name: are_policy::source::Source::parse(component)
                    .map_or_else(|_| component.to_string(), |source| source.default_name()),
                path: PathBuf::from(component),
                limits: policy.limits_for(None).overlay(self.cli_limits()).resolve(),
                base_dir: policy.base_dir.clone(),
                wit_dir,
                ..ComponentSpec::default()
            },
        }
    }
}

/// The pin of a component: the policy's, or `--sha256`; both must agree when both are given.
fn pin(
    policy: Option<are_policy::Sha256Pin>,
    flag: Option<are_policy::Sha256Pin>,
) -> anyhow::Result<Option<are_policy::Sha256Pin>> {
    match (policy, flag) {
        (Some(p), Some(f)) if p != f => anyhow::bail!(
            "--sha256 {f} contradicts the policy's pin {p}: drop the flag or fix `sha256` in the policy"
        ),
        (p, f) => Ok(p.or(f)),
    }
}

/// What the flags of the whole command line set for every subcommand.
#[derive(Debug, Clone, Copy)]
pub struct Globals {
    /// `--allow-unpinned`: load remote sources without a pin.
    pub allow_unpinned: bool,
}

impl Globals {
    /// The host of a command: an engine with fuel and epochs, the cache from `$ARE_CACHE_DIR`, sources as the
    /// flags say.
    pub fn host(&self) -> anyhow::Result<Host> {
        self.host_with(EngineConfig::default())
    }

    /// [`Globals::host`] on an engine configured by `config`.
    pub fn host_with(&self, config: EngineConfig) -> anyhow::Result<Host> {
        let engine = AreEngine::new(config).context("cannot configure the engine")?;
        Ok(Host::new(engine, CompileCache::from_env()).allow_unpinned(self.allow_unpinned))
    }
}
