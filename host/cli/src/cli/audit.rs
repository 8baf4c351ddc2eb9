//! `are audit`: check the audit trail's hash chain and signed checkpoints, show its records, and print the
//! public key that checks the checkpoints.

use are_policy::Policy;
use are_runtime::audit::{Checkpoint, VerifyOptions, read, read_checkpoints, verify_with};
use are_runtime::terminal::escape;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Check that no record was edited, deleted, inserted or reordered, that every record is in its canonical
    /// form, and that the signed checkpoints (and anchors) hold: name the first bad record.
    Verify {
        /// The audit log (JSON Lines); its checkpoints are read from `<FILE>.checkpoints` when it exists.
        file: PathBuf,
        /// The public key (64 hex digits, as `are audit key` prints it) the checkpoints must be signed with.
        /// Default: that of the key of --policy, else of the default key when it is on this machine.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// A policy whose `[audit] key` names the signing key whose public key to trust.
        #[arg(long = "policy", visible_alias = "config", value_name = "are.toml")]
        config: Option<PathBuf>,
        /// A copy of checkpoints (lines of `<FILE>.checkpoints`) kept elsewhere: the log must hold the records
        /// and head each one signs for (fails on a truncated tail or a rewrite).
        #[arg(long, value_name = "FILE")]
        anchor: Vec<PathBuf>,
        /// A record hash kept elsewhere (the last hash a previous `verify` printed): the log must hold it.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
        /// Fail unless a signed checkpoint covers every record (a log whose writer exited cleanly has one).
        #[arg(long)]
        require_covered: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key (hex) that checks the log's checkpoints, making the signing key when it is missing.
    Key {
        /// A policy whose `[audit] key` names the signing key; default: `audit.key` in the user's config directory.
        #[arg(long = "policy", visible_alias = "config", value_name = "are.toml")]
        config: Option<PathBuf>,
    },
    /// Show records, oldest first.
    Show {
        /// The audit log; default: the `[audit] path` of --policy.
        file: Option<PathBuf>,
        /// A policy whose `[audit] path` names the log.
        #[arg(long = "policy", visible_alias = "config", value_name = "are.toml")]
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
            Cmd::Verify {
                file,
                public_key,
                config,
                anchor,
                head,
                require_covered,
                json,
            } => {
                let options = VerifyOptions {
                    public_key: trusted_key(public_key.as_deref(), config.as_deref())?,
                    checkpoints: None,
                    anchors: read_anchors(&anchor)?,
                    head,
                    require_covered,
                };
                let result = verify_with(&file, &options)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                match (result, json) {
                    (Ok(v), true) => println!(
                        "{}",
                        serde_json::json!({
                            "ok": true,
                            "records": v.records,
                            "last_hash": v.last_hash,
                            "checkpoints": v.checkpoints,
                            "covered": v.covered,
                            "key": v.key,
                            "key_trusted": v.key_trusted,
                        })
                    ),
                    (Ok(v), false) => {
                        println!(
                            "{}: ok, {} records, last hash {} (keep it elsewhere to detect truncation)",
                            file.display(),
                            v.records,
                            v.last_hash
                        );
                        match (&v.key, v.key_trusted) {
                            (None, _) => println!(
                                "  no signed checkpoints: a truncated tail or a rewritten log goes unnoticed \
                                 without --anchor or --head"
                            ),
                            (Some(key), trusted) => println!(
                                "  {} checkpoints signed by {key} ({}), covering {} of {} records",
                                v.checkpoints,
                                if trusted {
                                    "the trusted key"
                                } else {
                                    "the key they name: pass --public-key to trust one"
                                },
                                v.covered,
                                v.records
                            ),
                        }
                    }
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
            Cmd::Key { config } => {
                let path = signing_key_path(config.as_deref())?;
                let key = are_runtime::audit::signing_key(&path, true)?;
                println!(
                    "{}",
                    are_policy::common::hex(key.verifying_key().as_bytes())
                );
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
                        "name the audit log: `are audit show FILE` or `--policy are.toml`"
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
                        !are_policy::grants::matches_pattern(
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
                        // Fields come from guests and from whoever could write the file: escaped.
                        let field =
                            |key: &str| escape(r[key].as_str().unwrap_or_default()).into_owned();
                        println!(
                            "{:>6} {} {:<17} {:<12} {:<22} {:<14} {}",
                            r["seq"].to_string(),
                            field("time"),
                            field("event"),
                            field("component"),
                            field("caller"),
                            field("outcome"),
                            escape(&r["detail"].to_string())
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

/// The signing key of `config`'s `[audit] key`, else the default one.
fn signing_key_path(config: Option<&Path>) -> anyhow::Result<PathBuf> {
    match config {
        Some(c) => {
            let policy = Policy::load(c)?;
            match &policy.audit.key {
                Some(key) => Ok(policy.base_dir.join(key)),
                None => default_key_path(),
            }
        }
        None => default_key_path(),
    }
}

fn default_key_path() -> anyhow::Result<PathBuf> {
    are_runtime::audit::default_key_path().ok_or_else(|| {
        anyhow::anyhow!(
            "there is no user config directory for the audit key: name one with --policy"
        )
    })
}

/// The public key checkpoints must be signed with: `--public-key`, else that of the signing key of `--policy`,
/// else that of the default key when it exists here.
fn trusted_key(
    hex: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<Option<ed25519_dalek::VerifyingKey>> {
    if let Some(hex) = hex {
        return are_runtime::audit::parse_public_key(hex)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--public-key: {e}"));
    }
    if config.is_some() {
        let path = signing_key_path(config)?;
        return Ok(Some(
            are_runtime::audit::signing_key(&path, false)?.verifying_key(),
        ));
    }
    Ok(are_runtime::audit::default_key_path()
        .filter(|p| p.exists())
        .and_then(|p| are_runtime::audit::signing_key(&p, false).ok())
        .map(|k| k.verifying_key()))
}

/// The checkpoints of each `--anchor` file.
fn read_anchors(files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Checkpoint)>> {
    let mut anchors = Vec::new();
    for file in files {
        let list = read_checkpoints(file)
            .map_err(|e| anyhow::anyhow!("--anchor {}: {e}", file.display()))?;
        if list.is_empty() {
            anyhow::bail!("--anchor {}: holds no checkpoint", file.display());
        }
        anchors.extend(list.into_iter().map(|c| (file.clone(), c)));
    }
    Ok(anchors)
}
