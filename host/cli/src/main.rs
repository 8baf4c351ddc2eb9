//! The `are` command line: parses arguments and dispatches to one module per subcommand.

mod cli;

/// mimalloc instead of the system allocator: allocation and freeing were an eighth of `are serve`'s CPU time per
/// call under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away (`are inspect x | head`)
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: called first thing, before any other thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Guests get a share of the descriptors the process may open (see `are_runtime::descriptors`): make it as large as
    // the system allows before anything is opened.
    #[cfg(unix)]
    let _ = are_runtime::descriptors::raise_nofile_limit();
    cli::main()
}
