//! Criterion benches of the host's hot paths, on the example guests that `are-tests` builds:
//!
//! - `compile`: Cranelift compiling a component; `load`: loading one from the `.cwasm` cache;
//! - `instantiate`: a new instance and its drop, on-demand and pooling;
//! - `call`: a small JSON call in a fresh instance (on-demand and pooling) and in a warm one, and a 1 MiB
//!   argument;
//! - `compute`: SHA-256 of 16 MiB in the guest with no metering, epoch only, fuel + epoch, and the same Rust
//!   code natively (plus the sha2 crate as it runs natively here; see `are_bench::native`), then each one's
//!   ratio to the native portable run;
//! - `audit`: the small fresh call with the audit trail off and on.
//!
//! `cargo bench -p are-bench --bench runtime` measures; `cargo test` runs each bench once (a debug build hashes
//! 1 MiB instead of 16). `are bench` prints the same figures as one table with ratios and targets.

use are_bench::native;
use are_policy::Fsync;
use are_policy::Limits;
use are_runtime::audit::{AuditLog, AuditSink};
use are_runtime::cache::CompileCache;
use are_runtime::component::{self, ComponentSpec, LoadedComponent};
use are_runtime::engine::{AreEngine, EngineConfig, PoolingConfig};
use are_runtime::invoke::CallReport;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SMALL_ARGS: &str = r#"{"text": "the quick brown fox jumps over the lazy dog"}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn cache() -> CompileCache {
    CompileCache::new(Path::new(env!("CARGO_TARGET_TMPDIR")).join("are-bench-cache"))
}

fn guest(name: &str) -> PathBuf {
    are_tests::guest(name).wasm_path().to_path_buf()
}

fn engine(fuel: bool, epochs: bool, pooling: bool) -> AreEngine {
    AreEngine::new(EngineConfig {
        fuel,
        epochs,
        pooling: pooling.then_some(PoolingConfig {
            max_instances: 16 + 64,
            max_memory: Limits::default().memory,
        }),
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn load(
    engine: &AreEngine,
    name: &str,
    limits: Limits,
    audit: Option<AuditSink>,
) -> LoadedComponent {
    let spec = ComponentSpec {
        name: name.to_string(),
        path: guest(name),
        limits,
        base_dir: std::env::temp_dir(),
        audit,
        ..ComponentSpec::default()
    };
    component::load(engine, Some(&cache()), spec).expect("load")
}

fn ok(report: CallReport) -> Value {
    match report.outcome {
        Ok(out) if !out.is_err => out.value,
        other => panic!("the call failed: {other:?}"),
    }
}

fn compile_and_load(c: &mut Criterion) {
    let on_demand = engine(true, true, false);
    let bytes = std::fs::read(guest("hash")).expect("hash.wasm");
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("hash", |b| {
        b.iter(|| {
            black_box(
                on_demand
                    .engine()
                    .precompile_component(&bytes)
                    .expect("compile"),
            )
        })
    });
    g.finish();
    let mut g = c.benchmark_group("load");
    g.sample_size(20);
    drop(load(&on_demand, "text", Limits::default(), None));
    g.bench_function("cache_hit/text", |b| {
        b.iter(|| black_box(load(&on_demand, "text", Limits::default(), None)))
    });
    g.finish();
}

fn instantiate_and_call(c: &mut Criterion) {
    let rt = runtime();
    let args: Value = serde_json::from_str(SMALL_ARGS).expect("args");
    let engines = [
        ("on_demand", engine(true, true, false)),
        ("pooling", engine(true, true, true)),
    ];
    let mut g = c.benchmark_group("instantiate");
    for (name, engine) in &engines {
        let text = load(engine, "text", Limits::default(), None);
        let limits = text.spec.limits;
        g.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| async {
                drop(
                    text.instantiate(engine, &limits)
                        .await
                        .expect("instantiate"),
                );
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("call");
    for (name, engine) in &engines {
        let text = load(engine, "text", Limits::default(), None);
        g.bench_function(BenchmarkId::new("fresh", name), |b| {
            b.to_async(&rt)
                .iter(|| async { ok(text.call(engine, "word-count", &args, None).await) })
        });
    }
    let (_, pooling) = &engines[1];
    let text = load(pooling, "text", Limits::default(), None);
    let limits = text.spec.limits;
    g.bench_function("warm", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (text, args) = (&text, &args);
            async move {
                let mut instance = text
                    .instantiate(pooling, &limits)
                    .await
                    .expect("instantiate");
                let started = Instant::now();
                for _ in 0..iters {
                    ok(instance
                        .call(text, pooling, "word-count", args, &limits)
                        .await);
                }
                started.elapsed()
            }
        })
    });
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    let big = json!({ "text": words.repeat((1 << 20) / words.len() + 1)[..1 << 20] });
    g.throughput(Throughput::Bytes(1 << 20));
    g.sample_size(20);
    // Converting the argument takes its text plus a little more host memory, bounded by `max_output`.
    let roomy = Limits {
        max_output: 2 << 20,
        ..limits
    };
    g.bench_function("payload_1mib", |b| {
        b.to_async(&rt)
            .iter(|| async { ok(text.call(pooling, "word-count", &big, Some(roomy)).await) })
    });
    g.finish();

    let log = AuditLog::open(
        &std::env::temp_dir().join(format!("are-bench-audit-{}.jsonl", std::process::id())),
        Fsync::Interval,
    )
    .expect("audit log");
    let path = log.path().to_path_buf();
    let audited = load(
        pooling,
        "text",
        Limits::default(),
        Some(AuditSink {
            log: std::sync::Arc::new(log),
            caller: "bench".into(),
        }),
    );
    let mut g = c.benchmark_group("audit");
    for (name, component) in [("off", &text), ("on", &audited)] {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { ok(component.call(pooling, "word-count", &args, None).await) })
        });
    }
    g.finish();
    drop(audited);
    let _ = std::fs::remove_file(path);
}

fn compute(c: &mut Criterion) {
    let rt = runtime();
    // A debug build (`cargo test`) runs each bench once: keep that quick.
    let times: u32 = if cfg!(debug_assertions) { 16 } else { 256 };
    let case = native::ComputeCase::new(times);
    let total = case.total_bytes();
    let native::ComputeCase {
        data,
        args,
        limits,
        expected,
        ..
    } = case;
    // Time per iteration of every sample criterion takes (warm-up included), for the ratios printed at the end.
    let per_iter: Mutex<BTreeMap<&str, Vec<f64>>> = Mutex::default();
    let record = |name, elapsed: Duration, iters: u64| {
        per_iter
            .lock()
            .expect("samples")
            .entry(name)
            .or_default()
            .push(elapsed.as_secs_f64() / iters.max(1) as f64);
        elapsed
    };
    let mut g = c.benchmark_group("compute");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(total));
    for (name, fuel, epochs) in [
        ("wasm_none", false, false),
        ("wasm_epoch", false, true),
        ("wasm_fuel_epoch", true, true),
    ] {
        let engine = engine(fuel, epochs, false);
        let hash = load(&engine, "hash", limits, None);
        rt.block_on(async {
            let mut instance = hash
                .instantiate(&engine, &limits)
                .await
                .expect("instantiate");
            let out = ok(instance
                .call(&hash, &engine, "sha256-repeat", &args, &limits)
                .await);
            assert_eq!(
                out,
                Value::String(expected.clone()),
                "the guest's digest is the native one"
            );
        });
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (hash, engine, args, record) = (&hash, &engine, &args, &record);
                async move {
                    let mut instance = hash
                        .instantiate(engine, &limits)
                        .await
                        .expect("instantiate");
                    let started = Instant::now();
                    for _ in 0..iters {
                        ok(instance
                            .call(hash, engine, "sha256-repeat", args, &limits)
                            .await);
                    }
                    record(name, started.elapsed(), iters)
                }
            })
        });
    }
    for (name, hash) in [
        (
            "native_portable",
            native::sha256_portable as fn(&[u8], u32) -> [u8; 32],
        ),
        ("native_sha2", native::sha256_sha2),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(hash(black_box(&data), times));
                }
                record(name, started.elapsed(), iters)
            })
        });
    }
    g.finish();
    print_ratios(&per_iter.into_inner().expect("samples"));
}

/// Each compute bench's median time per iteration over the native portable run's: metering's cost on the
/// same code (and the sha2 crate's gain from CPU instructions).
fn print_ratios(per_iter: &BTreeMap<&str, Vec<f64>>) {
    let median = |name: &str| {
        let mut v = per_iter.get(name)?.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let Some(native) = median("native_portable").filter(|&n| n > 0.0) else {
        return;
    };
    println!(
        "compute: median time per iteration vs native_portable (the same portable code, natively)"
    );
    for name in ["wasm_none", "wasm_epoch", "wasm_fuel_epoch", "native_sha2"] {
        if let Some(m) = median(name) {
            println!("  {name:<16} {:>6.2}×", m / native);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = compile_and_load, instantiate_and_call, compute
}
criterion_main!(benches);
