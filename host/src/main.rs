//! The `are` command line: parses arguments and dispatches to one module per subcommand.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
