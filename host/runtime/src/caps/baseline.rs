//! Interfaces every component gets without a grant, because they reach nothing outside the instance:
//! `wasi:io` (streams and polling of the guest's own resources), `wasi:clocks`, `wasi:random` and
//! `wasi:cli/exit`.

use crate::sandbox::HostState;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::WasiRandom;

/// WIT interfaces (without version) linked by [`link`].
pub const INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
];

/// Link the baseline interfaces.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_io::add_to_linker_async(linker)?;
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(linker, |s| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(s)
    })?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(linker, |s| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(s)
    })?;
    random::random::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, wasmtime_wasi::cli::WasiCliView::cli)?;
    Ok(())
}
