//! `are call`: call one exported function with JSON arguments and print the JSON result.

use super::PolicyArgs;
use anyhow::Context as _;
use are_policy::common::fmt_bytes;
use are_runtime::invoke::{CallReport, CallStats};
use serde_json::json;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Call a function: `are call text.wasm word-count '{"text": "hi there"}'`.
#[derive(clap::Args)]
pub struct Opts {
    /// Component file, `https://…` or `oci://…` reference, or a component name from the policy.
    component: String,
    /// Function: `name`, `interface.name`, or `pkg:ns/iface@ver.name`.
    function: String,
    /// Arguments: a JSON object keyed by parameter name, or an array by position; `-` reads stdin, `@FILE`
    /// reads a file. Omit for functions without parameters.
    args: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print fuel, wall time, peak memory and output sizes to stderr (inside the envelope with `--json`).
    #[arg(long)]
    stats: bool,
    /// Print one JSON envelope `{ok, result | error, stats, stdout, stderr}` on stdout.
    #[arg(long)]
    json: bool,
    /// Read WIT docs from this source directory.
    #[arg(long, value_name = "DIR")]
    wit: Option<PathBuf>,
    /// Pin the component's bytes to this sha256 (needed for an `https://` or `oci://…:tag` COMPONENT unless
    /// `--allow-unpinned`).
    #[arg(long, value_name = "HEX")]
    sha256: Option<are_policy::Sha256Pin>,
    /// Call N times in this process (each in a fresh instance) and report the median and minimum wall time of
    /// the warm calls after the first; the result shown is the last call's.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

impl Opts {
    pub async fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let json = self.json;
        match self.execute(globals).await {
            // With --json a script reads stdout: failures before the call get an envelope too.
            Err(e) if json => {
                let kind = if e.is::<are_runtime::component::LoadError>() {
                    "load"
                } else if e.is::<are_policy::PolicyError>() {
                    "policy"
                } else {
                    "usage"
                };
                let envelope =
                    json!({ "ok": false, "error": { "kind": kind, "message": format!("{e:#}") } });
                println!("{}", serde_json::to_string_pretty(&envelope)?);
                Ok(ExitCode::FAILURE)
            }
            other => other,
        }
    }

    async fn execute(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let args = self.read_args()?;
        let policy = self.policy.load_policy()?;
        let mut spec = self.policy.spec(&policy, &self.component, self.wit.clone());
        spec.sha256 = super::pin(spec.sha256, self.sha256.clone())?;
        spec.audit = are_runtime::audit::AuditLog::for_policy(&policy)?.map(|log| {
            are_runtime::audit::AuditSink {
                log,
                caller: "cli".into(),
            }
        });
        let host = globals.host()?;
        let loaded = host.load(spec)?;
        let mut report = loaded
            .call(host.engine(), &self.function, &args, None)
            .await;
        let first = report.stats.wall_time;
        let mut warm = Vec::new();
        for _ in 1..self.repeat {
            report = loaded
                .call(host.engine(), &self.function, &args, None)
                .await;
            warm.push(report.stats.wall_time);
        }
        let load = loaded.load_stats;
        if self.json {
            let mut envelope = match &report.outcome {
                Ok(out) => json!({ "ok": !out.is_err, "result": out.value }),
                Err(e) => {
                    json!({ "ok": false, "error": { "kind": e.kind(), "message": e.to_string() } })
                }
            };
            envelope["stdout"] = String::from_utf8_lossy(&report.stdout).into();
            envelope["stderr"] = String::from_utf8_lossy(&report.stderr).into();
            if self.stats {
                envelope["stats"] = serde_json::to_value(&report.stats)?;
                envelope["load"] = serde_json::to_value(load)?;
                if let Some((median, min)) = median_min(&mut warm) {
                    envelope["warm"] = json!({
                        "calls": warm.len(),
                        "first_us": first.as_micros() as u64,
                        "median_us": median.as_micros() as u64,
                        "min_us": min.as_micros() as u64,
                    });
                }
            }
            println!("{}", serde_json::to_string_pretty(&envelope)?);
        } else {
            forward_guest_output(&report);
            match &report.outcome {
                Ok(out) => println!("{}", serde_json::to_string_pretty(&out.value)?),
                // The message may quote the guest (a panic message): one line, escaped.
                Err(e) => eprintln!("error: {}", are_runtime::terminal::escape(&e.to_string())),
            }
            if self.stats {
                eprintln!("{}", stats_line(&report.stats));
                eprintln!(
                    "load:  {} in {:.1?}",
                    match load.cache {
                        are_runtime::cache::CacheOutcome::Hit => "from cache",
                        are_runtime::cache::CacheOutcome::Miss => "compiled and cached",
                        are_runtime::cache::CacheOutcome::Rebuilt =>
                            "recompiled (cache entry failed its MAC check)",
                        are_runtime::cache::CacheOutcome::Uncached => "compiled (no cache)",
                    },
                    load.duration
                );
                if let Some((median, min)) = median_min(&mut warm) {
                    eprintln!(
                        "warm:  {} more calls, median {median:.2?}, min {min:.2?} (first call {first:.2?})",
                        warm.len()
                    );
                }
            }
        }
        Ok(match &report.outcome {
            Ok(out) if !out.is_err => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        })
    }

    fn read_args(&self) -> anyhow::Result<serde_json::Value> {
        let text = match self.args.as_deref() {
            None => return Ok(serde_json::Value::Null),
            Some("-") => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read arguments from stdin")?;
                s
            }
            Some(a) if a.starts_with('@') => std::fs::read_to_string(&a[1..])
                .with_context(|| format!("cannot read arguments file {}", &a[1..]))?,
            Some(a) => a.to_string(),
        };
        serde_json::from_str(&text).with_context(|| {
            format!("arguments are not valid JSON: {text:.200}\n(write a JSON object keyed by parameter name, e.g. '{{\"text\": \"hi\"}}')")
        })
    }
}

/// Median and minimum of `times`, if there are any.
fn median_min(
    times: &mut [std::time::Duration],
) -> Option<(std::time::Duration, std::time::Duration)> {
    times.sort_unstable();
    Some((*times.get(times.len() / 2)?, *times.first()?))
}

/// One line summarising a call's cost.
pub fn stats_line(s: &CallStats) -> String {
    let fuel = match (s.fuel_consumed, s.fuel_limit) {
        (Some(used), Some(limit)) => format!("{used} of {limit}"),
        (Some(used), None) => format!("{used} (unlimited)"),
        (None, _) => "not metered".to_string(),
    };
    format!(
        "stats: fuel {fuel} · wall {:.2?} (instantiate {:.2?}) · peak memory {} · stdout {} · stderr {} · result {}",
        s.wall_time,
        s.instantiate_time,
        fmt_bytes(s.peak_memory),
        fmt_bytes(s.stdout_bytes as u64),
        fmt_bytes(s.stderr_bytes as u64),
        fmt_bytes(s.result_bytes as u64),
    )
}

/// Show what the guest printed, on stderr, each line marked with its stream and its control characters
/// escaped (it cannot clear the screen, move the cursor or overwrite a line with `\r`).
fn forward_guest_output(report: &CallReport) {
    for (name, bytes) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in String::from_utf8_lossy(bytes).lines().take(200) {
            eprintln!("guest {name} | {}", are_runtime::terminal::escape(line));
        }
    }
}
