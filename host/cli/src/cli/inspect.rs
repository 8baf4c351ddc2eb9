//! `are inspect`: what a component exports (as tools, with JSON schemas) and what it imports, by capability; with
//! `--policy`, also its grant report (see [`are_runtime::review`]).

use are_policy::ImportedInterface;
use are_policy::Policy;
use are_policy::common::fmt_bytes;
use are_policy::common::{hex, sha256};
use are_policy::review;
use are_policy::source::Source;
use are_runtime::component::{read_component, read_source, validate, verify_pin};
use are_runtime::describe::ComponentDescription;
use are_runtime::review::Review;
use are_runtime::schema::wit_type_name;
use are_runtime::source::FetchOptions;
use are_runtime::terminal::escape;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect a component: `are inspect text.wasm [--json] [--policy are.toml [--deny-overgrant]]`.
#[derive(clap::Args)]
pub struct Opts {
    /// Component file (`.wasm`, or `.wat` text), `https://…` or `oci://…` reference, or with `--policy` a
    /// component or agent name from the policy.
    component: PathBuf,
    /// Print JSON: world, tools with input and output schemas, imports by capability (and `grant_report`).
    #[arg(long)]
    json: bool,
    /// Read doc comments from this WIT source directory (for components not built by `are build`).
    #[arg(long, value_name = "DIR")]
    wit: Option<PathBuf>,
    /// Also report, capability by capability, what the component imports against what this policy grants it
    /// (the entry named COMPONENT, or whose source is that file; nothing granted when there is none).
    #[arg(long, visible_alias = "config", value_name = "are.toml")]
    policy: Option<PathBuf>,
    /// Exit with code 3 when the policy grants something the component never imports (an over-grant).
    #[arg(long, requires = "policy")]
    deny_overgrant: bool,
    /// Check the component's bytes against this sha256 (needed for an `https://` or `oci://…:tag` COMPONENT
    /// unless `--allow-unpinned`).
    #[arg(long, value_name = "HEX")]
    sha256: Option<are_policy::Sha256Pin>,
}

impl Opts {
    pub fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let policy = self.policy.as_deref().map(Policy::load).transpose()?;
        let entry = policy
            .as_ref()
            .and_then(|p| Some((p, review::find_entry(p, self.component.to_str()?)?)));
        // A name from the policy stands for its source, as in `are call`.
        let path = match entry {
            Some((policy, entry)) => policy.resolve_source(entry.source),
            None => self.component.clone(),
        };
        // The policy entry's `limits.max_component_size`, else the policy's or the built-in default.
        let max_size = entry.map_or_else(
            || {
                let defaults = policy.as_ref().map(|p| p.defaults).unwrap_or_default();
                defaults.resolve().max_component_size
            },
            |(_, e)| e.max_size,
        );
        let bytes = match Source::from_path(&path)? {
            // A local file is inspected as it is; only an explicit --sha256 is checked.
            Source::Local(_) => {
                let bytes = read_component(&path, max_size)?;
                verify_pin(&path, &sha256(&bytes), self.sha256.as_ref())?;
                bytes
            }
            // A remote one is fetched only when pinned, by the policy entry or --sha256.
            remote => {
                let policy_pin = entry.and_then(|(_, e)| e.pin.cloned());
                let pin = super::pin(policy_pin, self.sha256.clone())?;
                let name = entry.map_or_else(|| remote.default_name(), |(_, e)| e.name.to_string());
                let options = FetchOptions {
                    allow_unpinned: globals.allow_unpinned,
                    max_size,
                    ..FetchOptions::default()
                };
                let cache = are_runtime::cache::CompileCache::from_env();
                read_source(&name, &path, pin.as_ref(), cache.dir(), options)?.0
            }
        };
        validate(&path, &bytes)?;
        let desc = ComponentDescription::from_bytes(&bytes, self.wit.as_deref())
            .map_err(|e| anyhow::anyhow!("cannot describe {}: {e}", path.display()))?;
        let sha256 = hex(&sha256(&bytes));
        let review = policy.as_ref().map(|_| {
            Review::of_description(entry.as_ref().map(|(_, e)| e), &path, sha256.clone(), &desc)
        });
        let code = match &review {
            Some(r) if self.deny_overgrant && r.has_over_grant() => {
                eprintln!(
                    "error: over-grant: {} is granted what it never imports (--deny-overgrant)",
                    r.label()
                );
                ExitCode::from(review::OVERGRANT_EXIT_CODE)
            }
            _ => ExitCode::SUCCESS,
        };
        if self.json {
            let mut out = desc.to_json();
            out["component"] = path.display().to_string().into();
            out["sha256"] = sha256.into();
            out["size"] = bytes.len().into();
            if let (Some(review), Some(file)) = (&review, &self.policy) {
                let mut report = serde_json::to_value(review)?;
                report["policy"] = file.display().to_string().into();
                out["grant_report"] = report;
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(code);
        }
        println!("component  {}", path.display());
        println!("sha256     {sha256}");
        println!("size       {}", fmt_bytes(bytes.len() as u64));
        println!("world      {}", desc.world_name());
        println!("docs       {}", desc.docs_source());
        if let Some(docs) = desc.world_docs() {
            println!("           {}", escape(first_line(docs)));
        }
        print_tools(&desc);
        print_imports(desc.imports());
        if let (Some(review), Some(file)) = (&review, &self.policy) {
            println!("\ngrants ({}): {}", file.display(), review.label());
            if let Some(report) = &review.report {
                print!("{}", report.render("  "));
            }
        }
        Ok(code)
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
        // Names and docs come from the component: printed with their control characters escaped.
        println!(
            "  {}",
            escape(&format!(
                "{}({}){result}",
                f.qualified_name(),
                params.join(", ")
            ))
        );
        if let Some(docs) = &f.docs {
            for line in docs.lines() {
                println!("      {}", escape(line));
            }
        }
        if let Some(reason) = &f.unsupported {
            println!("      not callable as a tool: {}", escape(reason));
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
        let key = capability
            .policy_key()
            .map(|k| format!("  [granted by {k}]"))
            .unwrap_or_default();
        println!("  {capability}{key}");
        for import in list {
            let line = format!("{} ({})", import.name, import.functions.join(", "));
            println!("    {}", escape(&line));
        }
    }
}
