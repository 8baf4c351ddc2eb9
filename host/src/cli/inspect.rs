//! `are inspect`: what a component exports (as tools, with JSON schemas) and what it imports, by capability.

use are::component::{hex, read_component, sha256, validate};
use are::describe::{ComponentDescription, ImportedInterface};
use are::invoke::fmt_bytes;
use are::schema::wit_type_name;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect a component: `are inspect text.wasm [--json]`.
#[derive(clap::Args)]
pub struct Opts {
    /// Component file (`.wasm`, or `.wat` text).
    component: PathBuf,
    /// Print JSON: world, tools with input and output schemas, imports by capability.
    #[arg(long)]
    json: bool,
    /// Read doc comments from this WIT source directory (for components not built by `are build`).
    #[arg(long, value_name = "DIR")]
    wit: Option<PathBuf>,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bytes = read_component(&self.component)?;
        validate(&self.component, &bytes)?;
        let desc = ComponentDescription::from_bytes(&bytes, self.wit.as_deref())
            .map_err(|e| anyhow::anyhow!("cannot describe {}: {e}", self.component.display()))?;
        let sha256 = hex(&sha256(&bytes));
        if self.json {
            let mut out = desc.to_json();
            out["component"] = self.component.display().to_string().into();
            out["sha256"] = sha256.into();
            out["size"] = bytes.len().into();
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("component  {}", self.component.display());
        println!("sha256     {sha256}");
        println!("size       {}", fmt_bytes(bytes.len() as u64));
        println!("world      {}", desc.world_name());
        println!("docs       {}", desc.docs_source());
        if let Some(docs) = desc.world_docs() {
            println!("           {}", first_line(docs));
        }
        print_tools(&desc);
        print_imports(desc.imports());
        Ok(ExitCode::SUCCESS)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn print_tools(desc: &ComponentDescription) {
    let exports = desc.exports();
    println!(
        "\ntools ({}):",
        exports.iter().filter(|f| f.is_tool()).count()
    );
    for f in exports {
        let params: Vec<String> = f
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {}", wit_type_name(desc.resolve(), ty)))
            .collect();
        let result = f
            .result
            .as_ref()
            .map(|ty| format!(" -> {}", wit_type_name(desc.resolve(), ty)))
            .unwrap_or_default();
        println!("  {}({}){result}", f.qualified_name(), params.join(", "));
        if let Some(docs) = &f.docs {
            for line in docs.lines() {
                println!("      {line}");
            }
        }
        if let Some(reason) = &f.unsupported {
            println!("      not callable as a tool: {reason}");
        }
    }
}

fn print_imports(imports: &[ImportedInterface]) {
    let mut by_capability: BTreeMap<_, Vec<&ImportedInterface>> = BTreeMap::new();
    for import in imports {
        by_capability
            .entry(import.capability)
            .or_default()
            .push(import);
    }
    println!("\nimports by capability:");
    if by_capability.is_empty() {
        println!("  (none)");
    }
    for (capability, list) in by_capability {
        let key = are::caps::denied::policy_key(capability)
            .map(|k| format!("  [granted by {k}]"))
            .unwrap_or_default();
        println!("  {capability}{key}");
        for import in list {
            println!("    {} ({})", import.name, import.functions.join(", "));
        }
    }
}
