//! The one `wasmtime::Engine` of a process: fuel metering, epoch interruption driven by a ticker thread, and an
//! optional pooling allocator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, EngineWeak};

mod stacks;

/// How often the epoch advances while a call is running. A runaway guest is stopped at most one tick after its
/// deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// With the pooling allocator on a kernel with `PAGEMAP_SCAN`: the most bytes of a freed instance's linear
/// memory reset by hand (only pages it wrote) and kept resident; past this, pages are decommitted.
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
/// The same for its tables.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

/// How the engine is configured. Everything that changes compiled code is part of the cache fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Count fuel (needed for `limits.fuel`); costs some speed.
    pub fuel: bool,
    /// Interrupt by epochs (needed for `limits.timeout` of CPU-bound guests).
    pub epochs: bool,
    /// Pre-reserve slots for this many concurrent instances (pooling allocator); `None` allocates on demand.
    pub pooling: Option<PoolingConfig>,
    /// Map each instance's initial memory copy-on-write from an image of the component's data (wasmtime's
    /// default: fast to instantiate, data pages shared until written). Off, the data is copied into each
    /// instance: instantiating a component with much data is slower and its data pages are private, but an
    /// instance allocated on demand takes three memory mappings instead of five, which decides how many
    /// long-lived instances (active agents) fit under Linux's `vm.max_map_count` (see BENCHMARKS.md).
    pub memory_init_cow: bool,
}

/// Sizing of the pooling allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingConfig {
    /// Instances that can exist at once (each call with a fresh instance holds one).
    pub max_instances: u32,
    /// Largest linear memory of one instance, in bytes (the policy's memory limit).
    pub max_memory: u64,
}

impl Default for EngineConfig {
    /// Fuel and epochs on, no pooling, copy-on-write memory images.
    fn default() -> Self {
        EngineConfig {
            fuel: true,
            epochs: true,
            pooling: None,
            memory_init_cow: true,
        }
    }
}

/// A configured engine and its epoch ticker.
#[derive(Clone)]
pub struct AreEngine {
    engine: Engine,
    ticker: Arc<EpochTicker>,
    config: EngineConfig,
}

/// Wasmtime refused the engine configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {0:#}")]
pub struct EngineError(wasmtime::Error);

impl AreEngine {
    /// Build an engine.
    ///
    /// # Errors
    /// When wasmtime rejects the configuration (e.g. a pool too large for the address space).
    pub fn new(config: EngineConfig) -> Result<AreEngine, EngineError> {
        let mut c = Config::new();
        c.consume_fuel(config.fuel);
        c.epoch_interruption(config.epochs);
        c.wasm_component_model(true);
        // A guest's deep recursion must trap cleanly, well inside the host thread's own stack.
        c.max_wasm_stack(1 << 20);
        c.async_stack_size(4 << 20);
        // With the pooling allocator (`are serve`, where the cost of a fresh instance per call matters most),
        // drop wasmtime's support for concurrent (component-model async) calls: with it, every call runs on a
        // worker fiber that the store keeps, and dropping the store resumes that fiber to end it with an error
        // (and a backtrace when RUST_BACKTRACE is set), a third of a small call (see BENCHMARKS.md). Tools are
        // WASI 0.2 components called synchronously; a component using streams or futures then fails to load
        // with "uses a WebAssembly feature this runtime does not enable". Engines allocating on demand (`are
        // call`, `are inspect`, agents) keep it, so that such functions are still described and refused by name.
        if config.pooling.is_some() {
            c.concurrency_support(false);
        }
        c.memory_init_cow(config.memory_init_cow);
        if let Some(pool) = config.pooling {
            let mut p = wasmtime::PoolingAllocationConfig::default();
            p.total_component_instances(pool.max_instances)
                .total_core_instances(pool.max_instances.saturating_mul(4))
                .total_memories(pool.max_instances.saturating_mul(2))
                .total_tables(pool.max_instances.saturating_mul(2))
                .max_memory_size(usize::try_from(pool.max_memory).unwrap_or(usize::MAX))
                .total_stacks(pool.max_instances);
            // Where the kernel can list the pages an instance wrote (PAGEMAP_SCAN, Linux 6.7+), a freed slot
            // gets only those pages reset by hand and stays resident: the next instance in it takes no page
            // faults and no `madvise`. Elsewhere slots are decommitted as before.
            if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
                p.pagemap_scan(wasmtime::Enabled::Yes)
                    .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
                    .table_keep_resident(KEEP_RESIDENT_TABLE);
            }
            c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
        } else {
            // Each long-lived store keeps its fiber stack; one mapping per stack instead of two (engine/stacks.rs).
            c.with_host_stack(Arc::new(stacks::GuardedStacks::new()));
        }
        let engine = Engine::new(&c).map_err(EngineError)?;
        let ticker = EpochTicker::start(&engine);
        Ok(AreEngine {
            engine,
            ticker,
            config,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The configuration it was built with.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Keep the epoch advancing until the returned guard is dropped. Hold one per running call.
    pub fn activate_epochs(&self) -> EpochGuard {
        self.ticker.enter();
        EpochGuard {
            ticker: self.ticker.clone(),
        }
    }

    /// A short stable fingerprint of everything that makes compiled code incompatible: wasmtime version, target
    /// and engine settings. Precompiled components are cached under it.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        use std::hash::Hash;
        struct ShaHasher(sha2::Sha256);
        impl std::hash::Hasher for ShaHasher {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
        }
        let mut h = ShaHasher(sha2::Sha256::new());
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let digest = h.0.finalize();
        are_policy::common::hex(&digest[..8])
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while at least one call is running, and parks otherwise.
struct EpochTicker {
    active: AtomicUsize,
    thread: Mutex<Option<Thread>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Arc<EpochTicker> {
        let ticker = Arc::new(EpochTicker {
            active: AtomicUsize::new(0),
            thread: Mutex::new(None),
        });
        let weak: EngineWeak = engine.weak();
        let state = Arc::downgrade(&ticker);
        let spawned = std::thread::Builder::new()
            .name("are-epoch".into())
            .spawn(move || Self::run(weak, state));
        match spawned {
            Ok(handle) => {
                *ticker.thread.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(handle.thread().clone())
            }
            // Without a ticker timeouts still hold for host waits (tokio); CPU-bound guests fall back to fuel.
            Err(e) => tracing::error!("cannot start the epoch ticker thread: {e}"),
        }
        ticker
    }

    fn run(engine: EngineWeak, state: std::sync::Weak<EpochTicker>) {
        let mut next = Instant::now();
        loop {
            let Some(ticker) = state.upgrade() else {
                return;
            };
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if ticker.active.load(Ordering::Acquire) == 0 {
                drop((ticker, engine));
                std::thread::park_timeout(Duration::from_secs(1));
                next = Instant::now();
                continue;
            }
            engine.increment_epoch();
            drop((ticker, engine));
            next += EPOCH_TICK;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    }

    fn enter(&self) {
        if self.active.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(thread) = &*self.thread.lock().unwrap_or_else(|e| e.into_inner())
        {
            thread.unpark();
        }
    }
}

/// Keeps the epoch ticking while alive; see [`AreEngine::activate_epochs`].
pub struct EpochGuard {
    ticker: Arc<EpochTicker>,
}

impl Drop for EpochGuard {
    fn drop(&mut self) {
        self.ticker.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_copying_engines_build() {
        let pooling = AreEngine::new(EngineConfig {
            pooling: Some(PoolingConfig {
                max_instances: 4,
                max_memory: 1 << 20,
            }),
            ..EngineConfig::default()
        })
        .unwrap();
        let copying = AreEngine::new(EngineConfig {
            memory_init_cow: false,
            ..EngineConfig::default()
        })
        .unwrap();
        assert!(pooling.config().pooling.is_some());
        assert!(!copying.config().memory_init_cow);
    }

    #[test]
    fn fingerprint_is_stable_and_tracks_configuration() {
        let engine = AreEngine::new(EngineConfig::default()).unwrap();
        let same = AreEngine::new(EngineConfig::default()).unwrap();
        assert_eq!(engine.fingerprint(), same.fingerprint());
        let other = AreEngine::new(EngineConfig {
            fuel: false,
            ..EngineConfig::default()
        })
        .unwrap();
        assert_ne!(engine.fingerprint(), other.fingerprint());
    }
}
