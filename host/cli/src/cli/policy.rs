//! `are policy check`: parse and validate a policy, and check every component it names. `are policy review`:
//! the grant report (see [`are_runtime::review`]) of every component and agent type.

use are_policy::Policy;
use are_policy::review;
use are_runtime::component::read_source;
use are_runtime::host::Host;
use are_runtime::review::PolicyReview;
use are_runtime::source::FetchOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Validate a policy: syntax, unknown keys, values, mounts, and each component's and agent type's source and pin.
    Check {
        /// The policy file.
        #[arg(default_value = "are.toml")]
        file: PathBuf,
    },
    /// Report, for every component and agent type, what it imports against what it is granted: imports not
    /// granted (their calls will be denied) and grants never imported (over-grants, to remove). Exit codes: 0,
    /// 1 when an entry cannot be read, 3 with --deny-overgrant when there is an over-grant.
    Review {
        /// The policy file.
        #[arg(default_value = "are.toml")]
        file: PathBuf,
        /// Print JSON: `{policy, over_grant, entries: [{name, kind, source, sha256, capabilities, not_granted,
        /// over_granted} | {name, kind, source, error}]}`.
        #[arg(long)]
        json: bool,
        /// Exit with code 3 when any entry is granted something it never imports.
        #[arg(long)]
        deny_overgrant: bool,
    },
}

impl Cmd {
    pub fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let host = globals.host()?;
        match self {
            Cmd::Check { file } => check(&file, &host),
            Cmd::Review {
                file,
                json,
                deny_overgrant,
            } => review(&file, json, deny_overgrant, &host),
        }
    }
}

fn review(
    file: &std::path::Path,
    json: bool,
    deny_overgrant: bool,
    host: &Host,
) -> anyhow::Result<ExitCode> {
    let policy = Policy::load(file)?;
    let review = PolicyReview::new(&policy, host);
    if json {
        println!("{}", serde_json::to_string_pretty(&review)?);
    } else {
        println!(
            "{}: {} component(s), {} agent type(s)",
            file.display(),
            policy.components.len(),
            policy.agents.len()
        );
        println!(
            "marks: ✓ granted  · no grant needed  ✗ not granted, denied  ∅ not granted, finds nothing  ! over-grant"
        );
        for entry in &review.entries {
            println!("\n{}", entry.heading());
            match (&entry.report, &entry.error) {
                (Some(report), _) => print!("{}", report.render("  ")),
                (None, Some(error)) => println!("  error: {error}"),
                (None, None) => {}
            }
        }
        let over: Vec<String> = review
            .entries
            .iter()
            .filter(|e| e.has_over_grant())
            .map(|e| e.label())
            .collect();
        println!();
        if over.is_empty() {
            println!("{}: no over-grant", file.display());
        } else {
            println!("{}: over-grants in {}", file.display(), over.join(", "));
        }
    }
    let errors = review.errors();
    if errors > 0 {
        eprintln!(
            "{}: {errors} entr(y/ies) could not be reviewed",
            file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    if deny_overgrant && review.over_grant {
        eprintln!(
            "error: {}: over-grants found (--deny-overgrant); remove the grants listed with `!`",
            file.display()
        );
        return Ok(ExitCode::from(review::OVERGRANT_EXIT_CODE));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(file: &std::path::Path, host: &Host) -> anyhow::Result<ExitCode> {
    let policy = Policy::load(file)?;
    let mut problems = 0;
    for entry in review::policy_entries(&policy) {
        // Reads a file, or fetches a remote source (from the cache when pinned), and checks the pin.
        let path = entry.source_path(&policy);
        let options = FetchOptions {
            allow_unpinned: host.allows_unpinned(),
            max_size: entry.max_size,
            ..FetchOptions::default()
        };
        if let Err(e) = read_source(entry.name, &path, entry.pin, host.cache().dir(), options) {
            problems += 1;
            eprintln!("error: {} `{}`: {e}", entry.kind.as_str(), entry.name);
        }
    }
    if problems > 0 {
        eprintln!("{}: {problems} problem(s)", file.display());
        return Ok(ExitCode::FAILURE);
    }
    if policy.agents.is_empty() {
        println!(
            "{}: ok, {} component(s)",
            file.display(),
            policy.components.len()
        );
    } else {
        println!(
            "{}: ok, {} component(s), {} agent type(s)",
            file.display(),
            policy.components.len(),
            policy.agents.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
