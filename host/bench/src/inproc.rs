//! `are bench inproc`: the in-process figures, measured through the library the way `are call` and `are serve`
//! use it: compile, load from the `.cwasm` cache, a cold process from start to result, instantiate (on-demand
//! and pooling), a small JSON call in a fresh instance and in a warm one, calls/s on every core, a 1 MiB
//! payload, a compute-bound guest under each kind of metering against the same Rust code run natively, audit
//! on and off, and how fast a runaway guest is stopped.
//!
//! Every figure is bounded in samples and in time ([`Budget`]); `--quick` shrinks both so that a test can run
//! the whole thing in a few seconds.

use super::native;
use super::{Figure, Guests, Latencies, progress};
use anyhow::{Context as _, bail, ensure};
use are_policy::Fsync;
use are_policy::Limits;
use are_policy::common::fmt_bytes;
use are_policy::common::hex;
use are_runtime::audit::{AuditLog, AuditSink};
use are_runtime::cache::{CacheOutcome, CompileCache};
use are_runtime::component::{self, ComponentSpec, LoadedComponent};
use are_runtime::engine::{AreEngine, EngineConfig, PoolingConfig};
use are_runtime::invoke::{CallError, CallReport};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The small tool every call figure uses, and its arguments.
pub const SMALL_TOOL: (&str, &str) = ("text", "word-count");
const SMALL_TEXT: &str = "the quick brown fox jumps over the lazy dog";
/// The compute-bound function: SHA-256 of `data` repeated `times` times.
const COMPUTE_FUNCTION: &str = "sha256-repeat";
/// Bytes per repetition of the compute-bound input.
/// The timeout the runaway guest runs into.
const RUNAWAY_TIMEOUT: Duration = Duration::from_millis(100);
const RUNAWAY_TIMEOUT_QUICK: Duration = Duration::from_millis(20);

/// How many samples a figure takes at most, for how long at most, and at least.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most samples.
    pub max: usize,
    /// Least samples, even past `time`.
    pub min: usize,
    /// Time after which sampling stops (once `min` samples are in).
    pub time: Duration,
    /// Unrecorded runs first.
    pub warmup: usize,
}

impl Budget {
    /// Sub-millisecond operations.
    fn fast(quick: bool) -> Budget {
        if quick {
            Budget {
                max: 300,
                min: 20,
                time: Duration::from_millis(60),
                warmup: 20,
            }
        } else {
            Budget {
                max: 20_000,
                min: 200,
                time: Duration::from_millis(1500),
                warmup: 500,
            }
        }
    }

    /// Operations of milliseconds to a second.
    fn slow(quick: bool, max: usize) -> Budget {
        if quick {
            Budget {
                max: 3,
                min: 2,
                time: Duration::from_millis(200),
                warmup: 1,
            }
        } else {
            Budget {
                max,
                min: 5,
                time: Duration::from_secs(5),
                warmup: 1,
            }
        }
    }
}

/// Run `op` under `budget`; each run returns the duration it measured (so that set-up and tear-down can stay
/// outside it).
pub async fn sample<F, Fut>(budget: Budget, mut op: F) -> anyhow::Result<Latencies>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Duration>>,
{
    for _ in 0..budget.warmup {
        op().await?;
    }
    let started = Instant::now();
    let mut samples = Vec::with_capacity(budget.max.min(100_000));
    while samples.len() < budget.max
        && (samples.len() < budget.min || started.elapsed() < budget.time)
    {
        samples.push(op().await?);
    }
    Ok(Latencies::new(samples))
}

/// The in-process figures.
pub struct Inproc<'a> {
    guests: &'a Guests,
    quick: bool,
    scratch: PathBuf,
    cache: CompileCache,
    on_demand: AreEngine,
    pooling: AreEngine,
    only: Option<String>,
}

/// Three engines for the compute figure.
struct Metering {
    name: &'static str,
    id: &'static str,
    config: EngineConfig,
}

impl<'a> Inproc<'a> {
    /// Engines, and the compile cache `are` uses (`$ARE_CACHE_DIR`); logs and stores go under `scratch`.
    pub fn new(guests: &'a Guests, quick: bool, scratch: &Path) -> anyhow::Result<Inproc<'a>> {
        Ok(Inproc {
            guests,
            quick,
            scratch: scratch.to_path_buf(),
            cache: CompileCache::from_env(),
            on_demand: AreEngine::new(EngineConfig::default())?,
            pooling: AreEngine::new(EngineConfig {
                pooling: Some(serve_pool()),
                ..EngineConfig::default()
            })?,
            only: None,
        })
    }

    /// Only the figures whose id starts with `prefix` (for profiling one of them).
    pub fn only(mut self, prefix: Option<String>) -> Self {
        self.only = prefix;
        self
    }

    fn wants(&self, id: &str) -> bool {
        self.only.as_deref().is_none_or(|p| id.starts_with(p))
    }

    /// Every in-process figure, in table order.
    pub async fn run(&self) -> anyhow::Result<Vec<Figure>> {
        let mut figures = Vec::new();
        progress(format_args!("in-process: compile and load"));
        if self.wants("compile") {
            figures.push(self.compile().await?);
        }
        if self.wants("load.cache") {
            figures.push(self.load_from_cache().await?);
        }
        if self.wants("process.cold_start") {
            figures.push(self.cold_process().await?);
        }
        progress(format_args!("in-process: instantiate and call"));
        let text = self.load(&self.on_demand, SMALL_TOOL.0, None)?;
        let text_pooled = Arc::new(self.load(&self.pooling, SMALL_TOOL.0, None)?);
        if self.wants("instantiate.on_demand") {
            figures.push(
                self.instantiate("instantiate.on_demand", "on-demand", &self.on_demand, &text)
                    .await?,
            );
        }
        if self.wants("instantiate.pooling") {
            figures.push(
                self.instantiate(
                    "instantiate.pooling",
                    "pooling",
                    &self.pooling,
                    &text_pooled,
                )
                .await?,
            );
        }
        if self.wants("call.fresh.on_demand") {
            figures.push(
                self.fresh_call(
                    "call.fresh.on_demand",
                    "small JSON call, fresh instance, on-demand (as `are call`)",
                    &self.on_demand,
                    &text,
                )
                .await?,
            );
        }
        if self.wants("call.fresh.pooling") {
            figures.push(
                self.fresh_call(
                    "call.fresh.pooling",
                    "small JSON call, fresh instance, pooling (as `are serve`)",
                    &self.pooling,
                    &text_pooled,
                )
                .await?,
            );
        }
        if self.wants("call.warm") {
            figures.push(self.warm_call(&text_pooled).await?);
        }
        if self.wants("call.fresh.throughput") {
            figures.push(self.throughput(&text_pooled).await?);
        }
        if self.wants("call.payload_1mib") {
            figures.push(self.payload(&text_pooled).await?);
        }
        if self.wants("audit") {
            figures.extend(self.audit(&text_pooled).await?);
        }
        if self.wants("compute") {
            progress(format_args!("in-process: compute-bound guest and native"));
            figures.extend(self.compute().await?);
        }
        if self.wants("runaway") {
            progress(format_args!("in-process: runaway guest"));
            figures.push(self.runaway().await?);
        }
        Ok(figures)
    }

    fn spec(&self, name: &str, limits: Limits) -> anyhow::Result<ComponentSpec> {
        Ok(ComponentSpec {
            name: name.to_string(),
            path: self.guests.path(name)?,
            limits,
            base_dir: self.scratch.clone(),
            ..ComponentSpec::default()
        })
    }

    fn load(
        &self,
        engine: &AreEngine,
        name: &str,
        limits: Option<Limits>,
    ) -> anyhow::Result<LoadedComponent> {
        let spec = self.spec(name, limits.unwrap_or_default())?;
        Ok(component::load(engine, Some(&self.cache), spec)?)
    }

    async fn compile(&self) -> anyhow::Result<Figure> {
        let path = self.guests.path("hash")?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let engine = self.on_demand.engine().clone();
        let latencies = sample(Budget::slow(self.quick, 10), || {
            let (engine, bytes) = (engine.clone(), bytes.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    let compiled = engine.precompile_component(&bytes)?;
                    let took = started.elapsed();
                    drop(compiled);
                    Ok(took)
                })
                .await?
            }
        })
        .await?;
        Ok(Figure::latency(
            "compile",
            format!(
                "compile hash.wasm ({}) with Cranelift",
                fmt_bytes(bytes.len() as u64)
            ),
            &latencies,
        ))
    }

    async fn load_from_cache(&self) -> anyhow::Result<Figure> {
        let spec = self.spec(SMALL_TOOL.0, Limits::default())?;
        let first = component::load(&self.on_demand, Some(&self.cache), spec.clone())?;
        drop(first);
        let size = std::fs::metadata(&spec.path).map_or(0, |m| m.len());
        let latencies = sample(Budget::slow(self.quick, 50), || {
            let spec = spec.clone();
            async move {
                let started = Instant::now();
                let loaded = component::load(&self.on_demand, Some(&self.cache), spec)?;
                let took = started.elapsed();
                ensure!(
                    loaded.load_stats.cache == CacheOutcome::Hit,
                    "the cache missed: {:?}",
                    loaded.load_stats.cache
                );
                Ok(took)
            }
        })
        .await?;
        Ok(Figure::latency(
            "load.cache",
            format!(
                "load text.wasm ({}) from the .cwasm cache: read, check, deserialize, describe, link",
                fmt_bytes(size)
            ),
            &latencies,
        ))
    }

    /// `are call text.wasm word-count …` as a new process, its compiled code in the cache.
    async fn cold_process(&self) -> anyhow::Result<Figure> {
        let exe = std::env::current_exe().context("cannot find the are binary")?;
        let path = self.guests.path(SMALL_TOOL.0)?;
        let args = json!({ "text": SMALL_TEXT }).to_string();
        let cache = self.cache.dir().to_path_buf();
        let run = move || -> anyhow::Result<Duration> {
            let started = Instant::now();
            let out = std::process::Command::new(&exe)
                .arg("call")
                .arg(&path)
                .arg(SMALL_TOOL.1)
                .arg(&args)
                .env("ARE_CACHE_DIR", &cache)
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::null())
                .output()
                .context("cannot run are call")?;
            let took = started.elapsed();
            ensure!(
                out.status.success(),
                "are call failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(took)
        };
        let latencies = sample(Budget::slow(self.quick, 30), || {
            let run = run.clone();
            async move { tokio::task::spawn_blocking(run).await? }
        })
        .await?;
        Ok(Figure::latency(
            "process.cold_start",
            "new `are call` process to its result, compiled code in the cache".into(),
            &latencies,
        ))
    }

    async fn instantiate(
        &self,
        id: &'static str,
        kind: &str,
        engine: &AreEngine,
        component: &LoadedComponent,
    ) -> anyhow::Result<Figure> {
        let limits = component.spec.limits;
        let latencies = sample(Budget::fast(self.quick), || async {
            let started = Instant::now();
            let instance = component.instantiate(engine, &limits).await?;
            drop(instance);
            Ok(started.elapsed())
        })
        .await?;
        Ok(Figure::latency(
            id,
            format!("instantiate text.wasm and drop the instance, {kind}"),
            &latencies,
        ))
    }

    async fn fresh_call(
        &self,
        id: &'static str,
        label: &str,
        engine: &AreEngine,
        component: &LoadedComponent,
    ) -> anyhow::Result<Figure> {
        let args = json!({ "text": SMALL_TEXT });
        let latencies = sample(Budget::fast(self.quick), || async {
            let started = Instant::now();
            let report = component.call(engine, SMALL_TOOL.1, &args, None).await;
            let took = started.elapsed();
            succeeded(&report)?;
            Ok(took)
        })
        .await?;
        Ok(Figure::latency(
            id,
            format!("{label}: {}.{}", SMALL_TOOL.0, SMALL_TOOL.1),
            &latencies,
        ))
    }

    async fn warm_call(&self, component: &LoadedComponent) -> anyhow::Result<Figure> {
        let args = json!({ "text": SMALL_TEXT });
        let limits = component.spec.limits;
        let mut instance = component.instantiate(&self.pooling, &limits).await?;
        let latencies = {
            let instance = &mut instance;
            let mut samples = Vec::new();
            let budget = Budget::fast(self.quick);
            let started = Instant::now();
            let mut runs = 0;
            while samples.len() < budget.max
                && (samples.len() < budget.min || started.elapsed() < budget.time)
            {
                let t = Instant::now();
                let report = instance
                    .call(component, &self.pooling, SMALL_TOOL.1, &args, &limits)
                    .await;
                let took = t.elapsed();
                succeeded(&report)?;
                runs += 1;
                if runs > budget.warmup.min(100) {
                    samples.push(took);
                }
            }
            Latencies::new(samples)
        };
        Ok(Figure::latency(
            "call.warm",
            format!(
                "small JSON call on a warm instance (a session): {}.{}",
                SMALL_TOOL.0, SMALL_TOOL.1
            ),
            &latencies,
        ))
    }

    /// Calls per second with a fresh instance each, one task per CPU.
    async fn throughput(&self, component: &Arc<LoadedComponent>) -> anyhow::Result<Figure> {
        let tasks = std::thread::available_parallelism().map_or(1, |n| n.get());
        let duration = if self.quick {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(3)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let counting = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (component, engine) = (component.clone(), self.pooling.clone());
            let (stop, calls, failed, counting) = (
                stop.clone(),
                calls.clone(),
                failed.clone(),
                counting.clone(),
            );
            handles.push(tokio::spawn(async move {
                let args = json!({ "text": SMALL_TEXT });
                while !stop.load(Ordering::Relaxed) {
                    let report = component.call(&engine, SMALL_TOOL.1, &args, None).await;
                    if counting.load(Ordering::Relaxed) {
                        match succeeded(&report) {
                            Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            }));
        }
        tokio::time::sleep(duration / 5).await;
        counting.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let cpu_before = super::own_cpu();
        tokio::time::sleep(duration).await;
        counting.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let cpu = super::own_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        stop.store(true, Ordering::Relaxed);
        for handle in handles {
            handle.await?;
        }
        let failed = failed.load(Ordering::Relaxed);
        ensure!(failed == 0, "{failed} calls failed while measuring calls/s");
        let calls = calls.load(Ordering::Relaxed);
        let per_s = calls as f64 / elapsed.as_secs_f64();
        let mut figure = Figure::value(
            "call.fresh.throughput",
            format!(
                "calls/s, fresh instance each, pooling, {tasks} task(s) on {tasks} CPU(s): {}.{}",
                SMALL_TOOL.0, SMALL_TOOL.1
            ),
            per_s.round(),
            "calls/s",
        );
        figure.samples = usize::try_from(calls).unwrap_or(usize::MAX);
        if let Some(cpu) = cpu {
            figure.note = Some(format!(
                "{calls} calls in {elapsed:.2?}; CPU {:.0} µs per call",
                cpu.as_secs_f64() * 1e6 / calls.max(1) as f64
            ));
        }
        Ok(figure)
    }

    async fn payload(&self, component: &LoadedComponent) -> anyhow::Result<Figure> {
        // 1 MiB of words: `lorem ipsum …`, valid UTF-8.
        let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
        let text: String = words.repeat((1 << 20) / words.len() + 1)[..1 << 20].to_string();
        let args = json!({ "text": text });
        // Converting the argument takes its text plus a little more host memory, bounded by `max_output`.
        let limits = Limits {
            max_output: 2 << 20,
            ..component.spec.limits
        };
        let budget = if self.quick {
            Budget::slow(true, 3)
        } else {
            Budget {
                max: 200,
                min: 10,
                time: Duration::from_secs(3),
                warmup: 3,
            }
        };
        let latencies = sample(budget, || async {
            let started = Instant::now();
            let report = component
                .call(&self.pooling, SMALL_TOOL.1, &args, Some(limits))
                .await;
            let took = started.elapsed();
            succeeded(&report)?;
            Ok(took)
        })
        .await?;
        Ok(Figure::latency(
            "call.payload_1mib",
            format!(
                "1 MiB string argument, fresh instance, pooling: {}.{}",
                SMALL_TOOL.0, SMALL_TOOL.1
            ),
            &latencies,
        ))
    }

    /// The small fresh call with the audit trail off and on, measured in alternating rounds.
    async fn audit(&self, plain: &LoadedComponent) -> anyhow::Result<Vec<Figure>> {
        let log = Arc::new(
            AuditLog::open(&self.scratch.join("audit.jsonl"), Fsync::Interval)
                .context("cannot open the bench's audit log")?,
        );
        let mut spec = self.spec(SMALL_TOOL.0, Limits::default())?;
        spec.audit = Some(AuditSink {
            log,
            caller: "bench".into(),
        });
        let audited = component::load(&self.pooling, Some(&self.cache), spec)?;
        let args = json!({ "text": SMALL_TEXT });
        let mut off = Vec::new();
        let mut on = Vec::new();
        let rounds = 5;
        let mut budget = Budget::fast(self.quick);
        budget.max /= rounds;
        budget.min = budget.min.div_ceil(rounds);
        budget.time /= rounds as u32;
        for _ in 0..rounds {
            for (component, samples) in [(plain, &mut off), (&audited, &mut on)] {
                let l = sample(budget, || async {
                    let started = Instant::now();
                    let report = component
                        .call(&self.pooling, SMALL_TOOL.1, &args, None)
                        .await;
                    let took = started.elapsed();
                    succeeded(&report)?;
                    Ok(took)
                })
                .await?;
                samples.extend(l.into_samples());
            }
        }
        Ok(vec![
            Figure::latency(
                "audit.off",
                "small JSON call, fresh instance, pooling, no audit trail".into(),
                &Latencies::new(off),
            ),
            Figure::latency(
                "audit.on",
                "the same with the audit trail on (hash-chained JSON line per call, fsync every 100 ms)"
                    .into(),
                &Latencies::new(on),
            ),
        ])
    }

    /// SHA-256 of 16 MiB (1 MiB with --quick) in the guest under each kind of metering, and natively.
    async fn compute(&self) -> anyhow::Result<Vec<Figure>> {
        let times: u32 = if self.quick { 16 } else { 256 };
        let case = native::ComputeCase::new(times);
        let total = case.total_bytes();
        let native::ComputeCase {
            data,
            args,
            limits,
            expected,
            ..
        } = case;
        let size = fmt_bytes(total);
        let budget = Budget::slow(self.quick, 15);
        let mut figures = Vec::new();
        let meterings = [
            Metering {
                name: "no metering",
                id: "compute.wasm.none",
                config: EngineConfig {
                    fuel: false,
                    epochs: false,
                    ..EngineConfig::default()
                },
            },
            Metering {
                name: "epoch interruption only",
                id: "compute.wasm.epoch",
                config: EngineConfig {
                    fuel: false,
                    ..EngineConfig::default()
                },
            },
            Metering {
                name: "fuel + epoch (the default)",
                id: "compute.wasm.fuel_epoch",
                config: EngineConfig::default(),
            },
        ];
        for m in meterings {
            let engine = AreEngine::new(m.config)?;
            let hash = self.load(&engine, "hash", Some(limits))?;
            let mut instance = hash.instantiate(&engine, &limits).await?;
            let latencies = {
                let instance = &mut instance;
                let mut samples = Vec::new();
                for i in 0..budget.warmup + budget.max {
                    let started = Instant::now();
                    let report = instance
                        .call(&hash, &engine, COMPUTE_FUNCTION, &args, &limits)
                        .await;
                    let took = started.elapsed();
                    let out = succeeded(&report)?;
                    ensure!(
                        out == Value::String(expected.clone()),
                        "the guest's digest {out} is not the native one {expected}"
                    );
                    if i >= budget.warmup {
                        samples.push(took);
                    }
                }
                Latencies::new(samples)
            };
            figures.push(Figure::latency(
                m.id,
                format!("SHA-256 of {size} in the guest, warm instance, {}", m.name),
                &latencies,
            ));
        }
        let native = |portable: bool| {
            let data = data.clone();
            let expected = expected.clone();
            move || -> anyhow::Result<Duration> {
                let started = Instant::now();
                let digest = if portable {
                    native::sha256_portable(&data, times)
                } else {
                    native::sha256_sha2(&data, times)
                };
                let took = started.elapsed();
                if hex(&digest) != expected {
                    bail!("native digest mismatch");
                }
                Ok(took)
            }
        };
        for (portable, id, label) in [
            (
                true,
                "compute.native.portable",
                format!(
                    "SHA-256 of {size} natively, the same portable Rust code the guest runs (hmac-sha256)"
                ),
            ),
            (
                false,
                "compute.native.sha2",
                format!(
                    "SHA-256 of {size} natively with the sha2 crate as it runs here ({})",
                    if native::cpu_has_sha_instructions() {
                        "the CPU's SHA instructions"
                    } else {
                        "no SHA instructions on this CPU"
                    }
                ),
            ),
        ] {
            let run = native(portable);
            let latencies = sample(Budget::slow(self.quick, 15), || {
                let run = run.clone();
                async move { tokio::task::spawn_blocking(run).await? }
            })
            .await?;
            figures.push(Figure::latency(id, label, &latencies));
        }
        Ok(figures)
    }

    /// An infinite loop with unlimited fuel, stopped by its timeout: how long after the timeout it ends.
    async fn runaway(&self) -> anyhow::Result<Figure> {
        let timeout = if self.quick {
            RUNAWAY_TIMEOUT_QUICK
        } else {
            RUNAWAY_TIMEOUT
        };
        let limits = Limits {
            fuel: None,
            timeout,
            ..Limits::default()
        };
        let hostile = self.load(&self.on_demand, "hostile-loop", Some(limits))?;
        let budget = if self.quick {
            Budget {
                max: 3,
                min: 3,
                time: Duration::ZERO,
                warmup: 0,
            }
        } else {
            Budget {
                max: 20,
                min: 20,
                time: Duration::ZERO,
                warmup: 1,
            }
        };
        let latencies = sample(budget, || async {
            let started = Instant::now();
            let report = hostile
                .call(&self.on_demand, "spin", &Value::Null, None)
                .await;
            let took = started.elapsed();
            match report.outcome {
                Err(CallError::Timeout { .. }) => Ok(took),
                other => bail!("the runaway loop was not stopped by its timeout: {other:?}"),
            }
        })
        .await?;
        let mut figure = Figure::latency(
            "runaway.stopped",
            format!(
                "infinite loop, fuel unlimited, timeout {}: call start to timed-out result",
                humantime::format_duration(timeout)
            ),
            &latencies,
        );
        figure.note = Some(format!("timeout_us={}", timeout.as_micros()));
        Ok(figure)
    }
}

/// The pool `are serve` sizes for one component with default limits: 16 concurrent calls (the default `max_concurrency`) plus 64 sessions.
fn serve_pool() -> PoolingConfig {
    PoolingConfig {
        max_instances: 16 + 64,
        max_memory: Limits::default().memory,
    }
}

/// The JSON result of a successful call, or why the call failed.
fn succeeded(report: &CallReport) -> anyhow::Result<Value> {
    match &report.outcome {
        Ok(out) if !out.is_err => Ok(out.value.clone()),
        Ok(out) => bail!("the tool returned an error: {}", out.value),
        Err(e) => bail!("the call failed: {e}"),
    }
}
