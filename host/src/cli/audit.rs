//! `are audit`: check the audit trail's hash chain, and show its records.

use are::audit::{read, verify};
use are::policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Check that no record was edited, deleted, inserted or reordered; name the first bad one.
    Verify {
        /// The audit log (JSON Lines).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show records, oldest first.
    Show {
        /// The audit log; default: the `[audit] path` of --config.
        file: Option<PathBuf>,
        /// A policy whose `[audit] path` names the log.
        #[arg(long, visible_alias = "policy", value_name = "are.toml")]
        config: Option<PathBuf>,
        /// Only records of this component (or agent type).
        #[arg(long)]
        component: Option<String>,
        /// Only events of this kind: `fs.open`, or a pattern ending in `*` such as `socket.*`.
        #[arg(long)]
        event: Option<String>,
        /// Only denials.
        #[arg(long)]
        denied: bool,
        /// Only records at or after this time: RFC 3339 in UTC (e.g. 2026-11-25T10:00:00Z), or a duration back
        /// from now (e.g. 15m, 2h).
        #[arg(long)]
        since: Option<String>,
        /// Print the records as JSON Lines.
        #[arg(long)]
        json: bool,
    },
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Cmd::Verify { file, json } => {
                let result = verify(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                match (result, json) {
                    (Ok(v), true) => println!(
                        "{}",
                        serde_json::json!({ "ok": true, "records": v.records, "last_hash": v.last_hash })
                    ),
                    (Ok(v), false) => println!(
                        "{}: ok, {} records, last hash {} (keep it elsewhere to detect truncation)",
                        file.display(),
                        v.records,
                        v.last_hash
                    ),
                    (Err(t), true) => {
                        println!("{}", serde_json::json!({ "ok": false, "first_bad": t }));
                        return Ok(ExitCode::FAILURE);
                    }
                    (Err(t), false) => {
                        eprintln!("error: {}: tampered: {t}", file.display());
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            Cmd::Show {
                file,
                config,
                component,
                event,
                denied,
                since,
                json,
            } => {
                let file = match (file, config) {
                    (Some(f), _) => f,
                    (None, Some(c)) => {
                        let policy = Policy::load(&c)?;
                        let path = policy.audit.path.as_ref().ok_or_else(|| {
                            anyhow::anyhow!(
                                "{} has no [audit] path: no audit log is kept",
                                c.display()
                            )
                        })?;
                        policy.base_dir.join(path.get_ref())
                    }
                    (None, None) => anyhow::bail!(
                        "name the audit log: `are audit show FILE` or `--config are.toml`"
                    ),
                };
                let since = since.map(|s| parse_since(&s)).transpose()?;
                let records = read(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                for r in records {
                    if component.as_deref().is_some_and(|c| r["component"] != c) {
                        continue;
                    }
                    if event.as_deref().is_some_and(|pattern| {
                        !are::caps::matches_pattern(
                            pattern,
                            r["event"].as_str().unwrap_or_default(),
                        )
                    }) {
                        continue;
                    }
                    if denied && r["outcome"] != "denied" {
                        continue;
                    }
                    if let Some(since) = since {
                        let at = r["time"]
                            .as_str()
                            .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
                        if at.is_none_or(|at| at < since) {
                            continue;
                        }
                    }
                    if json {
                        println!("{r}");
                    } else {
                        println!(
                            "{:>6} {} {:<17} {:<12} {:<22} {:<14} {}",
                            r["seq"].to_string(),
                            r["time"].as_str().unwrap_or_default(),
                            r["event"].as_str().unwrap_or_default(),
                            r["component"].as_str().unwrap_or_default(),
                            r["caller"].as_str().unwrap_or_default(),
                            r["outcome"].as_str().unwrap_or_default(),
                            r["detail"]
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `--since`: an RFC 3339 time, or a duration back from now.
fn parse_since(s: &str) -> anyhow::Result<std::time::SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let ago = humantime::parse_duration(s).map_err(|_| {
        anyhow::anyhow!(
            "--since {s:?}: neither an RFC 3339 time (2026-11-25T10:00:00Z) nor a duration (15m)"
        )
    })?;
    std::time::SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| anyhow::anyhow!("--since {s:?}: too far back"))
}
