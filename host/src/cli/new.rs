//! `are new tool NAME`: a guest crate that builds as it is, with a documented WIT world.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// A tool: a WIT interface of functions plus their Rust implementation.
    Tool {
        /// Crate name: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Where to create it (default: `./NAME`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Cmd::Tool { name, dir } = self;
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.ends_with('-')
            && !name.contains("--");
        anyhow::ensure!(
            valid,
            "invalid tool name {name:?}: use lowercase letters, digits and single `-`, starting with a letter (it becomes a WIT package name)"
        );
        let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
        anyhow::ensure!(
            !dir.exists(),
            "{} already exists; choose another name or --dir",
            dir.display()
        );
        write_tool(&dir, &name)?;
        println!("created tool `{name}` in {}", dir.display());
        println!(
            "next:  are build {0}\n       are call {0}/target/components/{1}.wasm {1}.greet '{{\"name\": \"world\"}}'",
            dir.display(),
            name
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The SDK dependency line: this checkout's `guest-sdk` when it exists, else the published crate.
fn sdk_dependency() -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    match std::fs::canonicalize(local) {
        Ok(path) => format!(
            "are-guest-sdk = {{ path = {:?} }}",
            path.display().to_string()
        ),
        Err(_) => format!("are-guest-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

fn write_tool(dir: &Path, name: &str) -> anyhow::Result<()> {
    let rust_name = name.replace('-', "_");
    let files = [
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
{sdk}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"

# A standalone crate, not part of an enclosing workspace.
[workspace]
"#,
                sdk = sdk_dependency()
            ),
        ),
        (
            "wit/world.wit",
            format!(
                r#"package tools:{name}@0.1.0;

/// {name}: describe here what this tool does. These `///` comments become the tool descriptions and the
/// JSON schema descriptions that `are inspect` and MCP clients show.
interface {name} {{
    /// Greets someone.
    ///
    /// - `name`: who to greet.
    greet: func(name: string) -> string;
}}

world {name}-tool {{
    export {name};
}}
"#
            ),
        ),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` tool. Build with `are build`, try with `are call`.

are_guest_sdk::generate!({{ world: "{name}-tool" }});

struct Tool;

impl exports::tools::{rust_name}::{rust_name}::Guest for Tool {{
    fn greet(name: String) -> String {{
        format!("hello, {{name}}")
    }}
}}

export!(Tool);
"#
            ),
        ),
        (".gitignore", "target/\n".to_string()),
    ];
    for (file, contents) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
