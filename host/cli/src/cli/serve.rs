//! `are serve`: every tool of the policy over MCP, on stdio (default) or Streamable HTTP.

use anyhow::Context as _;
use are_mcp::McpServer;
use are_mcp::http::{self, HttpOptions};
use are_policy::Policy;
use are_runtime::engine::{EngineConfig, PoolingConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Serve tools over MCP: `are serve --policy are.toml [--http 127.0.0.1:8080]`.
#[derive(clap::Args)]
pub struct Opts {
    /// The policy naming the components to serve.
    #[arg(
        long = "policy",
        visible_alias = "config",
        value_name = "are.toml",
        default_value = "are.toml"
    )]
    config: PathBuf,
    /// Serve Streamable HTTP on this address (path `/mcp`) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` over HTTP, the token read from this environment variable.
    #[arg(long, value_name = "NAME")]
    token_env: Option<String>,
    /// Also accept requests from this browser origin (e.g. `https://app.example.com`); loopback origins always are.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Host name clients use to reach a non-loopback address (checked against the `Host` header).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Reload a changed component or policy, and tell clients the tool list changed.
    #[arg(long)]
    watch: bool,
}

impl Opts {
    pub async fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let policy = Policy::load(&self.config)?;
        let config = engine_config(&policy);
        warn_if_descriptors_overcommitted(&policy, &config);
        let server = McpServer::start(globals.host_with(config)?, &self.config)?;
        let tools = server.catalog().tools().len();
        if self.watch {
            are_mcp::watch::spawn(server.clone());
        }
        match self.http {
            None => {
                tracing::info!(tools, policy = %self.config.display(), "serving MCP on stdio");
                let max_request_size = policy.serve.bounds().max_request_size;
                are_mcp::serve_stdio(
                    server,
                    usize::try_from(max_request_size).unwrap_or(usize::MAX),
                )
                .await?;
            }
            Some(addr) => {
                let token = match &self.token_env {
                    Some(name) => Some(std::env::var(name).with_context(|| {
                        format!("--token-env {name}: the environment variable {name} is not set")
                    })?)
                    .filter(|t| !t.is_empty())
                    .with_context(|| format!("--token-env {name}: the token is empty"))
                    .map(Some)?,
                    None => None,
                };
                let mut allowed_origins = policy.serve.allowed_origins.clone();
                allowed_origins.extend(self.allow_origins.iter().cloned());
                let options = HttpOptions {
                    addr: Some(addr),
                    token,
                    allowed_origins,
                    allowed_hosts: self.allowed_hosts.clone(),
                    bounds: policy.serve.bounds(),
                };
                let listening = http::bind(server, options).await?;
                eprintln!(
                    "are serve: {tools} tools at http://{}/mcp (metrics at /metrics)",
                    listening.addr
                );
                listening
                    .serve(async {
                        let _ = tokio::signal::ctrl_c().await;
                    })
                    .await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Say so when the instances the server may keep at once could together hold more descriptors than the guests'
/// share of `RLIMIT_NOFILE`: each still stops at its own limits, and the host keeps its reserve, but a tenant's
/// open may then fail because others hold the share.
fn warn_if_descriptors_overcommitted(policy: &Policy, config: &EngineConfig) {
    let instances = match config.pooling {
        Some(pool) => u64::from(pool.max_instances),
        None => {
            let concurrent: u64 = policy
                .components
                .values()
                .map(|c| u64::from(c.max_concurrency))
                .sum();
            concurrent + are_mcp::sessions::MAX_SESSION_INSTANCES as u64
        }
    };
    let per_instance = policy
        .components
        .values()
        .map(|c| {
            let limits = policy.limits_for(Some(c)).resolve();
            u64::from(limits.open_files) + u64::from(limits.connections)
        })
        .max()
        .unwrap_or(0);
    let budget = are_runtime::descriptors::process_budget() as u64;
    if instances.saturating_mul(per_instance) > budget {
        tracing::warn!(
            instances,
            per_instance,
            budget,
            "{instances} instances × {per_instance} descriptors (limits.open_files + limits.connections) exceed \
             the guests' share of RLIMIT_NOFILE ({budget}): raise `ulimit -n`, or lower [serve] max_instances \
             or those limits, so that no tenant can be short of descriptors because of another"
        );
    }
}

/// Fuel and epochs always; the pooling allocator unless the policy turns it off, with a slot for every call
/// that may run at once plus sessions, each as large as the largest memory limit.
fn engine_config(policy: &Policy) -> EngineConfig {
    let pooling = policy.serve.pooling.unwrap_or(true).then(|| {
        let concurrent: u32 = policy.components.values().map(|c| c.max_concurrency).sum();
        let max_memory = policy
            .components
            .values()
            .map(|c| policy.limits_for(Some(c)).resolve().memory)
            .max()
            .unwrap_or(policy.limits_for(None).resolve().memory);
        PoolingConfig {
            max_instances: policy
                .serve
                .max_instances
                .unwrap_or(concurrent.saturating_add(64))
                .max(1),
            max_memory,
        }
    });
    EngineConfig {
        pooling,
        ..EngineConfig::default()
    }
}
