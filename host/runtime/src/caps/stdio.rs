//! Standard I/O: stdin is empty, stdout and stderr are captured in memory up to `max_output` bytes each.
//!
//! Captured output is never mixed into a call's JSON result; callers get it separately (and `--stats` reports
//! its size). A guest that writes past the cap gets a closed stream, which Rust's `print!` turns into a panic:
//! the call fails with "output limit exceeded" instead of filling the host's memory. It fails the same way when
//! the guest handles the failed write and returns: its output was cut, and the caller must know.

use crate::sandbox::HostState;
use bytes::Bytes;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::p2::bindings::cli;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Link stdin, stdout, stderr and the terminal interfaces (which report "not a terminal"); returns the interfaces
/// linked.
///
/// # Errors
/// When the linker rejects a definition (a bug, not a user error).
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
    fn view(s: &mut HostState) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliView::cli(s)
    }
    cli::stdin::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(linker, view)?;
    Ok(&[
        "wasi:cli/stdin",
        "wasi:cli/stdout",
        "wasi:cli/stderr",
        "wasi:cli/terminal-input",
        "wasi:cli/terminal-output",
        "wasi:cli/terminal-stdin",
        "wasi:cli/terminal-stdout",
        "wasi:cli/terminal-stderr",
    ])
}

/// The captured stdout and stderr of one instance.
#[derive(Debug, Clone)]
pub struct Capture {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    cap: usize,
}

impl Capture {
    /// Capture up to `cap` bytes of each stream, wiring both into `wasi`.
    pub fn install(wasi: &mut WasiCtxBuilder, cap: u64) -> Capture {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        // One byte more than the cap: a pipe that is exactly full reports itself closed, which would fail a guest
        // writing exactly `cap` bytes; and a stream holding more than `cap` bytes tells an overflow from that.
        let capture = Capture {
            stdout: MemoryOutputPipe::new(cap.saturating_add(1)),
            stderr: MemoryOutputPipe::new(cap.saturating_add(1)),
            cap,
        };
        wasi.stdout(capture.stdout.clone());
        wasi.stderr(capture.stderr.clone());
        capture
    }

    /// What the guest wrote to stdout, at most the cap.
    pub fn stdout(&self) -> Bytes {
        self.capped(&self.stdout)
    }

    /// What the guest wrote to stderr, at most the cap.
    pub fn stderr(&self) -> Bytes {
        self.capped(&self.stderr)
    }

    fn capped(&self, pipe: &MemoryOutputPipe) -> Bytes {
        let mut bytes = pipe.contents();
        bytes.truncate(self.cap);
        bytes
    }

    /// How much each stream holds now: pass it to [`Capture::since`] to get what one call wrote.
    pub fn mark(&self) -> (usize, usize) {
        (self.stdout.contents().len(), self.stderr.contents().len())
    }

    /// What the guest wrote to stdout and stderr after `mark`, each at most the cap.
    pub fn since(&self, mark: (usize, usize)) -> (Bytes, Bytes) {
        let (out, err) = (self.stdout(), self.stderr());
        (
            out.slice(mark.0.min(out.len())..),
            err.slice(mark.1.min(err.len())..),
        )
    }

    /// The stream the guest tried to write more than the cap to, if any.
    pub fn overflowed(&self) -> Option<&'static str> {
        if self.stdout.contents().len() > self.cap {
            Some("stdout")
        } else if self.stderr.contents().len() > self.cap {
            Some("stderr")
        } else {
            None
        }
    }
}
