//! `are bench agents`: agents at scale, with the probe agent (`example-tools/agents/probe`) in an
//! [`AgentRuntime`] configured as `are run` configures it: activation latency (first message to a new agent,
//! from send to reply, persisted), a message to an agent already active, send/reply round trips per second
//! between two agents, memory per idle agent (activated, instance kept, waiting for mail), and how many idle
//! agents fit in a fixed memory budget.

use super::{Figure, Guests, Latencies, progress};
use anyhow::{Context as _, bail, ensure};
use are_agents::AgentRuntime;
use are_policy::Policy;
use are_policy::common::fmt_bytes;
use are_runtime::cache::CompileCache;
use are_runtime::engine::{AreEngine, EngineConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// The memory the idle agents may take together.
pub const IDLE_BUDGET: u64 = 1 << 30;
/// How many idle agents the scale figure aims for.
pub const IDLE_TARGET: u64 = 10_000;

/// A runtime with one agent type, `probe`, its store under `dir`.
fn runtime(guests: &Guests, dir: &Path, memory_init_cow: bool) -> anyhow::Result<AgentRuntime> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let probe = guests.path("agent-probe")?;
    let policy_path = dir.join("are.toml");
    let toml = format!(
        "[agent.probe]\nsource = {}\nidle_timeout = \"1h\"\nmessage_budget = 100000000\n\
         allow.messaging = {{ send = [\"probe/*\"] }}\n",
        toml::Value::String(super::path_string(&probe)?)
    );
    std::fs::write(&policy_path, toml)
        .with_context(|| format!("cannot write {}", policy_path.display()))?;
    let policy = Policy::load(&policy_path)?;
    let engine = AreEngine::new(EngineConfig {
        memory_init_cow,
        ..EngineConfig::default()
    })?;
    let host = are_runtime::host::Host::new(engine, CompileCache::from_env());
    Ok(AgentRuntime::start(&policy, &host)?)
}

/// Every agent figure, in table order. The idle-agent figures run in child processes (`are bench
/// idle-agents`), one per engine configuration, so that each starts from a clean process.
pub async fn run(guests: &Guests, quick: bool, scratch: &Path) -> anyhow::Result<Vec<Figure>> {
    let rt = runtime(guests, &scratch.join("agents"), true)?;
    let echo = json!({"op": "echo", "text": "x"}).to_string();
    ask(&rt, "probe/warmup", &echo).await?;

    progress(format_args!("agents: activation and messages"));
    let mut figures = Vec::new();
    let (cold_n, warm_n) = if quick { (20, 200) } else { (1000, 5000) };
    let mut cold = Vec::with_capacity(cold_n);
    for i in 0..cold_n {
        let started = Instant::now();
        ask(&rt, &format!("probe/cold-{i}"), &echo).await?;
        cold.push(started.elapsed());
    }
    figures.push(Figure::latency(
        "agents.activation",
        "activation: first message to a new agent, send to reply (instantiate, persist, handle)"
            .into(),
        &Latencies::new(cold),
    ));
    let mut warm = Vec::with_capacity(warm_n);
    for _ in 0..warm_n {
        let started = Instant::now();
        ask(&rt, "probe/warmup", &echo).await?;
        warm.push(started.elapsed());
    }
    figures.push(Figure::latency(
        "agents.message_warm",
        "message to an active agent, send to reply (persisted)".into(),
        &Latencies::new(warm),
    ));

    let n: u64 = if quick { 300 } else { 10_000 };
    ask(&rt, "probe/pong", &echo).await?;
    let flood = json!({"op": "flood", "to": "probe/pong", "n": n}).to_string();
    let started = Instant::now();
    let reply = ask(&rt, "probe/ping", &flood).await?;
    let elapsed = started.elapsed();
    ensure!(reply["sent"] == n, "the flood did not get through: {reply}");
    let mut figure = Figure::value(
        "agents.messages_per_s",
        "messages/s between two agents: send/reply round trips, agent to agent, each persisted"
            .into(),
        (n as f64 / elapsed.as_secs_f64()).round(),
        "messages/s",
    );
    figure.samples = usize::try_from(n).unwrap_or(usize::MAX);
    figure.note = Some(format!("{n} round trips in {elapsed:.2?}"));
    figures.push(figure);
    drop(rt);

    for cow in [true, false] {
        progress(format_args!(
            "agents: idle agents in a {} budget, {}",
            fmt_bytes(IDLE_BUDGET),
            if cow {
                "copy-on-write memory images (the default)"
            } else {
                "initial memory copied"
            }
        ));
        let idle = idle_in_child(guests, quick, cow).await?;
        figures.extend(idle.figures(cow));
    }
    Ok(figures)
}

/// `are bench idle-agents [--copy]` as a child process, and what it measured.
async fn idle_in_child(guests: &Guests, quick: bool, cow: bool) -> anyhow::Result<IdleRun> {
    let exe = std::env::current_exe().context("cannot find the are binary")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("bench")
        .arg("idle-agents")
        .arg("--tools-dir")
        .arg(&guests.dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    if quick {
        cmd.arg("--quick");
    }
    if !cow {
        cmd.arg("--copy");
    }
    let out = cmd
        .output()
        .await
        .context("cannot run are bench idle-agents")?;
    ensure!(
        out.status.success(),
        "are bench idle-agents failed ({})",
        out.status
    );
    serde_json::from_slice(&out.stdout).context("are bench idle-agents printed no figures")
}

/// `are bench idle-agents`: activate idle agents and print what they took, as JSON.
pub async fn idle_child(
    guests: &Guests,
    quick: bool,
    copy: bool,
    scratch: &Path,
) -> anyhow::Result<()> {
    let rt = runtime(guests, &scratch.join("idle-agents"), !copy)?;
    let echo = json!({"op": "echo", "text": "x"}).to_string();
    ask(&rt, "probe/warmup", &echo).await?;
    let run = idle(&rt, quick, &echo).await?;
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// What activating idle agents took.
#[derive(Debug, Serialize, Deserialize)]
struct IdleRun {
    quick: bool,
    activated: u64,
    before: Memory,
    after: Memory,
    seconds: f64,
    /// Why activation stopped before the goal and the budget, if it did.
    stopped: Option<String>,
}

impl IdleRun {
    fn figures(&self, cow: bool) -> [Figure; 2] {
        let (memory_id, scale_id, how) = if cow {
            (
                "agents.memory_per_idle",
                "agents.idle_in_budget",
                "copy-on-write memory images (the default)",
            )
        } else {
            (
                "agents.memory_per_idle.copy",
                "agents.idle_in_budget.copy",
                "initial memory copied (memory_init_cow off)",
            )
        };
        let activated = self.activated.max(1);
        let grown = self.after.pss.saturating_sub(self.before.pss);
        let per_agent = grown / activated;
        let fits = IDLE_BUDGET.checked_div(per_agent).unwrap_or(u64::MAX);
        let maps_per_agent =
            self.after.maps.saturating_sub(self.before.maps) as f64 / activated as f64;
        // The mappings left under `vm.max_map_count` bound the count as well as memory does.
        let fits_maps = max_map_count()
            .map(|max| {
                (max.saturating_sub(self.after.maps) as f64 / maps_per_agent.max(0.1)) as u64
            })
            .map_or(u64::MAX, |more| more + self.activated);
        let mut memory = Figure::value(
            memory_id,
            format!(
                "memory per idle agent (instance kept, waiting), {how}: PSS growth over {} agents",
                self.activated
            ),
            per_agent as f64,
            "bytes",
        );
        memory.samples = usize::try_from(self.activated).unwrap_or(usize::MAX);
        memory.note = Some(format!(
            "PSS {} → {}, RSS {} → {}, {maps_per_agent:.1} memory mappings per agent; {} agents activated in {:.2}s",
            fmt_bytes(self.before.pss),
            fmt_bytes(self.after.pss),
            fmt_bytes(self.before.rss),
            fmt_bytes(self.after.rss),
            self.activated,
            self.seconds,
        ));
        let (count, why) = match &self.stopped {
            Some(e) => (
                self.activated,
                format!("stopped by the host at {} agents: {e}", self.activated),
            ),
            None if self.quick => (
                fits.min(fits_maps),
                format!(
                    "extrapolated from {} agents (memory: {fits}, memory mappings under vm.max_map_count: {})",
                    self.activated,
                    if fits_maps == u64::MAX {
                        "unknown".to_string()
                    } else {
                        fits_maps.to_string()
                    }
                ),
            ),
            None if grown <= IDLE_BUDGET => (
                self.activated,
                format!(
                    "{} agents activated, {} of the budget used",
                    self.activated,
                    fmt_bytes(grown)
                ),
            ),
            None => (self.activated, "budget reached".to_string()),
        };
        let mut scale = Figure::value(
            scale_id,
            format!(
                "idle agents within a {} memory budget (target {IDLE_TARGET}), {how}",
                fmt_bytes(IDLE_BUDGET)
            ),
            count as f64,
            "agents",
        );
        scale.samples = usize::try_from(self.activated).unwrap_or(usize::MAX);
        scale.note = Some(format!(
            "{why}; at {} each, {fits} would fit in the budget",
            fmt_bytes(per_agent)
        ));
        [memory, scale]
    }
}

/// Activate idle agents in batches until the target count, the budget, or a limit of the host (such as the
/// number of memory mappings a process may have) is reached (`--quick`: a sample, and the count extrapolated).
///
/// Memory is the growth of the proportional set size (PSS, `/proc/self/smaps_rollup`): pages shared between
/// instances (their compiled code and the copy-on-write image of their initial memory) count once, as they take
/// memory once.
async fn idle(rt: &AgentRuntime, quick: bool, echo: &str) -> anyhow::Result<IdleRun> {
    let goal = if quick { 200 } else { IDLE_TARGET };
    let batch = if quick { 100 } else { 500 };
    let before_active = rt.active() as u64;
    let before = Memory::now().context("cannot read this process's memory use")?;
    let started = Instant::now();
    let mut activated = 0u64;
    let mut after = before;
    let mut stopped = None;
    'fill: while activated < goal && after.pss.saturating_sub(before.pss) < IDLE_BUDGET {
        let mut replies = Vec::with_capacity(batch);
        for i in 0..batch.min(usize::try_from(goal - activated).unwrap_or(batch)) {
            let (_, reply) = rt.send(&format!("probe/idle-{}", activated + i as u64), echo)?;
            replies.push(reply);
        }
        for reply in replies {
            match reply.await {
                Ok(Ok(_)) => activated += 1,
                Ok(Err(e)) => {
                    stopped = Some(e);
                    break 'fill;
                }
                Err(_) => bail!("an idle agent's reply was lost"),
            }
        }
        after = Memory::now().unwrap_or(after);
    }
    after = Memory::now().unwrap_or(after);
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        activated > 0,
        "no idle agent could be activated: {stopped:?}"
    );
    let active = rt.active() as u64 - before_active;
    ensure!(
        active >= activated,
        "only {active} of {activated} agents stayed active"
    );
    Ok(IdleRun {
        quick,
        activated,
        before,
        after,
        seconds,
        stopped,
    })
}

/// This process's memory: resident, proportional, and how many mappings it has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Memory {
    rss: u64,
    pss: u64,
    maps: u64,
}

impl Memory {
    fn now() -> Option<Memory> {
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        };
        let maps = std::fs::read("/proc/self/maps")
            .ok()?
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        Some(Memory {
            rss: field("Rss:")?,
            pss: field("Pss:")?,
            maps,
        })
    }
}

/// Send `payload` to `to` and wait for its reply, parsed as JSON.
async fn ask(rt: &AgentRuntime, to: &str, payload: &str) -> anyhow::Result<Value> {
    let (_, reply) = rt.send(to, payload)?;
    let reply = match tokio::time::timeout(Duration::from_secs(60), reply).await {
        Ok(Ok(Ok(reply))) => reply,
        Ok(Ok(Err(e))) => bail!("agent {to} failed: {e}"),
        Ok(Err(_)) => bail!("the reply of agent {to} was lost"),
        Err(_) => bail!("agent {to} did not reply within 60s"),
    };
    Ok(serde_json::from_str(&reply.unwrap_or_default()).unwrap_or(Value::Null))
}

/// Linux's limit on the memory mappings of one process.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}
