//! `are new tool NAME` and `are new agent NAME`: a guest crate that builds as it is, with a documented WIT world
//! (a tool) or the agent world of the guest SDK and a policy to run it (an agent).

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
    /// An agent: a message handler in Rust, plus an `are.toml` that runs it with `are run`.
    Agent {
        /// Crate name and agent type: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Where to create it (default: `./NAME`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (kind, name, dir) = match self {
            Cmd::Tool { name, dir } => ("tool", name, dir),
            Cmd::Agent { name, dir } => ("agent", name, dir),
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.ends_with('-')
            && !name.contains("--");
        anyhow::ensure!(
            valid,
            "invalid {kind} name {name:?}: use lowercase letters, digits and single `-`, starting with a letter \
             (it becomes a {})",
            if kind == "tool" {
                "WIT package name"
            } else {
                "crate name and the agent type"
            }
        );
        let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
        anyhow::ensure!(
            !dir.exists(),
            "{} already exists; choose another name or --dir",
            dir.display()
        );
        let d = dir.display();
        if kind == "tool" {
            write_files(&dir, &tool_files(&name))?;
            println!("created tool `{name}` in {d}");
            println!(
                "next:  are build {d}\n       are call {d}/target/components/{name}.wasm {name}.greet '{{\"name\": \"world\"}}'"
            );
        } else {
            write_files(&dir, &agent_files(&name))?;
            println!("created agent `{name}` in {d}");
            println!(
                "next:  are build {d}\n       are run --policy {d}/are.toml --send {name}/main hello --until-idle\n       \
                 are agents memory {name}/main --policy {d}/are.toml"
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The SDK dependency line: this checkout's `guest-sdk` when it exists, else the published crate.
fn sdk_dependency() -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk");
    match std::fs::canonicalize(local) {
        Ok(path) => format!(
            "are-guest-sdk = {{ path = {:?} }}",
            path.display().to_string()
        ),
        Err(_) => format!("are-guest-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// The `Cargo.toml` of a guest crate.
fn cargo_toml(name: &str) -> String {
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
    )
}

fn tool_files(name: &str) -> Vec<(&'static str, String)> {
    let rust_name = name.replace('-', "_");
    vec![
        ("Cargo.toml", cargo_toml(name)),
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
    ]
}

fn agent_files(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Cargo.toml", cargo_toml(name)),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` agent. Build with `are build`, run with `are run --policy are.toml`.
//!
//! An agent handles one message at a time and reaches the world only through what its policy grants
//! (`are.toml`): its memory, other agents, tools, a model. See `are_guest_sdk::agent` for every helper, and
//! `example-tools/agents/` in the `are` repository for a coordinator, researcher and writer working together.

use are_guest_sdk::agent::{{Agent, identity, log, memory}};

struct Handler;

impl Agent for Handler {{
    fn on_message(from: String, payload: String) -> Result<Option<String>, String> {{
        // Delivery is at least once: after a crash, a message may be handled again, with the same id. Keying
        // side effects by that id makes them happen once.
        let id = identity::current_message().map(|m| m.id).unwrap_or_default();
        let seen = format!("seen/{{id}}");
        let mut count: u64 = memory::get("count").and_then(|c| c.parse().ok()).unwrap_or(0);
        if memory::get(&seen).is_none() {{
            count += 1;
            memory::set("count", &count.to_string())?;
            memory::set(&seen, "")?;
        }}
        log::info(&format!("message {{count}} from {{from}}"));
        // The reply goes back to a sender waiting in `messaging::send` (or to `are run --send`).
        Ok(Some(format!("{{}} got {{payload:?}} from {{from}}: message {{count}}", identity::self_id())))
    }}
}}

are_guest_sdk::export_agent!(Handler);
"#
            ),
        ),
        (
            "are.toml",
            format!(
                r#"# Run the agent:  are run --policy are.toml --send {name}/main hello --until-idle
# Its instances are `{name}/KEY`: each key has its own memory, and handles its messages one at a time.

[agent.{name}]
source = "target/components/{name}.wasm"   # what `are build` writes
allow.memory = {{ quota = "64 KiB" }}
idle_timeout = "30s"                       # deactivated after this long without messages
message_budget = 100                       # sends and publishes per activation
# allow.llm = {{ model = "default", max_tokens = 20000, max_turns = 8 }}   # the model of [llm]
# allow.tools = ["fetch.get"]             # functions of [component.NAME] tables, `component.function`
# allow.messaging = {{ send = ["writer/*"], publish = ["events"], subscribe = ["tasks"] }}

# [component.fetch]
# source = "fetch.wasm"
# allow.http = ["https://example.com"]

# Without a base URL (or $ARE_LLM_BASE_URL), agents talk to a built-in scripted model, offline.
# [llm]
# base_url = "https://api.openai.com/v1"
# model = "gpt-4o-mini"
# api_key_env = "OPENAI_API_KEY"
"#
            ),
        ),
        (".gitignore", "target/\n.are/\n".to_string()),
    ]
}

/// Write `files` under `dir`.
fn write_files(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
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
