//! One sandboxed instance: its `Store` state built from the grants, a memory limiter, fuel and an epoch
//! deadline.

use crate::caps::fs::FsState;
use crate::caps::http::{HttpSetup, HttpState};
use crate::caps::sockets::SocketState;
use crate::caps::stdio::Capture;
use crate::descriptors::Connections;
use crate::engine::AreEngine;
use are_policy::{Grants, Limits};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// The host-side state of one instance (the `T` of its `Store<T>`).
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// The http capability's state: wasi:http's context and the hooks that enforce the grant.
    pub(crate) http: HttpState,
    /// The sockets capability's state: its rules and the permit of each socket the guest holds.
    pub(crate) sockets: SocketState,
    /// The fs capability's state: mount quotas and the files the guest holds open.
    pub(crate) fs: FsState,
    /// Sockets and HTTP connections the guest holds (`limits.connections`), shared by sockets and the HTTP hooks.
    pub(crate) connections: Arc<Connections>,
    limiter: MemoryLimiter,
    capture: Capture,
    /// When the running call must end; see [`arm`].
    deadline: Instant,
    /// Host bytes wasmtime may build when it lifts the running call's result (`limits.max_output`); see [`arm`].
    result_fuel: usize,
    /// Set while the host is lifting what the guest returned, so that running out of hostcall fuel then reads as a
    /// result over `max_output` rather than a trap.
    lifting_result: bool,
    /// State of the embedder that its host functions reach (an agent's context); see [`Self::extension_mut`].
    extension: Option<Box<dyn std::any::Any + Send>>,
    /// Where capability uses and denials are recorded.
    pub(crate) audit: Option<crate::audit::AuditScope>,
}

impl HostState {
    /// The memory accounting of this instance.
    pub fn limiter(&self) -> &MemoryLimiter {
        &self.limiter
    }

    /// The guest's captured stdout and stderr.
    pub fn capture(&self) -> &Capture {
        &self.capture
    }

    /// Whether the host was lifting the guest's returned values when the call stopped (see [`new_store`]).
    pub fn was_lifting_result(&self) -> bool {
        self.lifting_result
    }

    /// The embedder's state of this instance, if it was given one of type `T` (the agent runtime keeps an agent's
    /// context here).
    pub fn extension_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.extension.as_mut()?.downcast_mut()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

/// Collects what each capability contributes to one instance; see [`crate::caps::Provide::prepare`].
pub struct InstanceBuilder {
    /// The WASI context being built.
    pub wasi: WasiCtxBuilder,
    /// Directory that relative policy paths are resolved against.
    pub base_dir: PathBuf,
    /// Where this instance's capability uses are recorded, if anywhere.
    pub audit: Option<crate::audit::AuditScope>,
    /// What the http and secrets capabilities set up: the origins it may reach, the headers the host adds.
    pub http: HttpSetup,
    /// The sockets capability's state.
    pub sockets: SocketState,
    /// The fs capability's state.
    pub fs: FsState,
}

impl InstanceBuilder {
    /// Build the state of one instance from `grants`.
    ///
    /// # Errors
    /// When a grant cannot be applied on this host (e.g. a mounted directory disappeared).
    pub fn build(
        grants: &Grants,
        args: &[String],
        base_dir: PathBuf,
        limits: &Limits,
        extension: Option<Box<dyn std::any::Any + Send>>,
        audit: Option<crate::audit::AuditScope>,
    ) -> Result<HostState, crate::caps::PrepareError> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(args);
        let capture = Capture::install(&mut wasi, limits.max_output);
        let mut builder = InstanceBuilder {
            wasi,
            base_dir,
            audit,
            http: HttpSetup::default(),
            sockets: SocketState::default(),
            fs: FsState::new(limits.open_files as usize),
        };
        crate::caps::prepare(grants, &mut builder)?;
        let connections = Connections::new(limits.connections as usize);
        Ok(HostState {
            wasi: builder.wasi.build(),
            table: ResourceTable::new(),
            http: HttpState::new(builder.http, builder.audit.clone(), connections.clone()),
            sockets: builder.sockets,
            fs: builder.fs,
            connections,
            limiter: MemoryLimiter::new(limits.memory),
            capture,
            deadline: Instant::now() + limits.timeout,
            result_fuel: result_fuel(limits),
            lifting_result: false,
            extension,
            audit: builder.audit,
        })
    }
}

/// Bytes charged per table element (a pointer-sized slot) against the memory limit.
pub const TABLE_ELEMENT_BYTES: u64 = 8;

/// Caps all linear memories and tables of one instance together, and records the peak and any refusal.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    peak: u64,
    refused: Option<u64>,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes in total.
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit,
            used: 0,
            peak: 0,
            refused: None,
        }
    }

    /// Highest total reached, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The total a refused growth would have reached, if any growth was refused.
    pub fn refused(&self) -> Option<u64> {
        self.refused
    }

    fn grow(&mut self, by: u64) -> bool {
        let total = self.used.saturating_add(by);
        if total > self.limit {
            self.refused = Some(self.refused.map_or(total, |r| r.max(total)));
            return false;
        }
        self.used = total;
        self.peak = self.peak.max(total);
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current) as u64))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current) as u64;
        Ok(self.grow(elements.saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn instances(&self) -> usize {
        1_000
    }

    fn tables(&self) -> usize {
        1_000
    }

    fn memories(&self) -> usize {
        100
    }
}

/// The hostcall fuel for lifting a call's result: `max_output` bytes, as wasmtime counts them.
fn result_fuel(limits: &Limits) -> usize {
    usize::try_from(limits.max_output).unwrap_or(usize::MAX)
}

/// A store for one instance: the memory limiter installed, and an epoch callback that yields to the executor
/// every tick and interrupts the guest once the current call's deadline has passed. Arm it with [`arm`] before
/// each call.
pub fn new_store(engine: &AreEngine, state: HostState) -> Store<HostState> {
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limiter);
    // Wasmtime lifts an export's result into host values before our code sees it, charging hostcall fuel (about
    // `size_of::<Val>()` per value plus string bytes) and trapping when it runs out. The guest returning is the
    // last transition before that lift, so the fuel drops to `max_output` there; entering the host for an import
    // restores wasmtime's default, which the imports' own limits (check-write, payload sizes) sit under.
    let import_fuel = store.hostcall_fuel();
    store.call_hook(move |mut cx, hook| {
        let returned = matches!(hook, CallHook::ReturningFromWasm);
        let fuel = if returned {
            cx.data().result_fuel
        } else {
            import_fuel
        };
        cx.data_mut().lifting_result = returned;
        cx.set_hostcall_fuel(fuel);
        Ok(())
    });
    if engine.config().epochs {
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }
    store
}

/// Prepare `store` for one call under `limits`: refill its fuel, set its deadline, and bring its count of open
/// files up to date (a session instance may have closed some since its last call). Returns the deadline.
///
/// # Errors
/// When fuel cannot be set (a bug: the engine meters fuel whenever this is called with fuel on).
pub fn arm(
    store: &mut Store<HostState>,
    engine: &AreEngine,
    limits: &Limits,
) -> wasmtime::Result<Instant> {
    let deadline = Instant::now() + limits.timeout;
    store.data_mut().deadline = deadline;
    store.data_mut().fs.open_files.forget_closed();
    store.data_mut().result_fuel = result_fuel(limits);
    if engine.config().fuel {
        store.set_fuel(limits.fuel.unwrap_or(u64::MAX))?;
    }
    if engine.config().epochs {
        store.set_epoch_deadline(1);
    }
    Ok(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_memories_and_tables_together() {
        let mut l = MemoryLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        assert!(l.table_growing(0, 1000, None).unwrap());
        assert_eq!(l.peak(), (512 << 10) + 8000);
        assert!(!l.memory_growing(512 << 10, 1 << 20, None).unwrap());
        assert_eq!(l.refused(), Some((1 << 20) + 8000));
        assert_eq!(
            l.peak(),
            (512 << 10) + 8000,
            "a refused growth is not counted"
        );
    }
}
