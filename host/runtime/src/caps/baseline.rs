//! Interfaces every component gets without a grant, because they reach nothing outside the instance:
//! `wasi:io` (streams and polling of the guest's own resources), `wasi:clocks`, `wasi:random` and
//! `wasi:cli/exit`.

use crate::sandbox::HostState;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::WasiRandom;

/// Link `wasi:io` (error, poll, streams) and `wasi:cli/exit`; returns the interfaces linked.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link_io(linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
    wasmtime_wasi_io::add_to_linker_async(linker)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, wasmtime_wasi::cli::WasiCliView::cli)?;
    Ok(&[
        "wasi:io/error",
        "wasi:io/poll",
        "wasi:io/streams",
        "wasi:cli/exit",
    ])
}

/// Link the wall and monotonic clocks; returns the interfaces linked.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link_clocks(linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(linker, |s| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(s)
    })?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(linker, |s| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(s)
    })?;
    Ok(&["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"])
}

/// Link `wasi:random` (random, insecure, insecure-seed); returns the interfaces linked.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link_random(linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
    random::random::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(linker, |s| {
        wasmtime_wasi::random::WasiRandomView::random(s)
    })?;
    Ok(&[
        "wasi:random/random",
        "wasi:random/insecure",
        "wasi:random/insecure-seed",
    ])
}
