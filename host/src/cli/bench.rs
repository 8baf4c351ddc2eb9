//! `are bench`: performance figures, measured by this binary on this machine.
//!
//! One module per kind of figure under `bench/`; today `are bench mcp` (MCP load over stdio and Streamable
//! HTTP). `are bench` alone runs every kind with its defaults and prints one table per kind: the place for the
//! headline table of in-process figures (compile, instantiate, call, metered vs native) when they land.
//!
//! Shared here: latency percentiles, CPU time of processes, the machine description, and duration formatting.

mod mcp;

use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

/// `are bench [mcp …] [--json]`.
#[derive(clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Print one JSON document on stdout instead of tables (progress still goes to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// MCP load: `are serve` as a child process, N concurrent clients calling a small tool over stdio and
    /// Streamable HTTP; calls/s and latency percentiles, optionally with hostile tools spinning alongside.
    Mcp(mcp::Opts),
}

impl Opts {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let mcp = match self.command {
            Some(Cmd::Mcp(opts)) => opts,
            // Every kind of figure with its defaults; only MCP load exists so far.
            None => {
                use clap::{Args as _, FromArgMatches as _};
                let defaults = mcp::Opts::augment_args(clap::Command::new("mcp"))
                    .try_get_matches_from(["mcp"])?;
                mcp::Opts::from_arg_matches(&defaults)?
            }
        };
        let report = mcp.run().await?;
        if self.json {
            let doc = serde_json::json!({
                "machine": Machine::describe(),
                "mcp": report,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            println!("{}", Machine::describe().line());
            print!("{}", report.table());
        }
        Ok(if report.failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Where figures were measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `are` version.
    pub are_version: &'static str,
    /// CPUs this process may use.
    pub cpus: usize,
    /// CPU model, from `/proc/cpuinfo` when there is one.
    pub cpu_model: Option<String>,
    /// `linux-x86_64` and the like.
    pub platform: String,
    /// Whether this binary has optimizations on (a debug build's figures mean little).
    pub release_build: bool,
    /// When, in RFC 3339 (UTC).
    pub date: String,
}

impl Machine {
    /// This machine, now.
    pub fn describe() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            });
        Machine {
            are_version: env!("CARGO_PKG_VERSION"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            release_build: !cfg!(debug_assertions),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// One line for the top of a table.
    pub fn line(&self) -> String {
        let build = if self.release_build {
            "release build"
        } else {
            "DEBUG build: figures are not representative, use `cargo build --release`"
        };
        format!(
            "are {} on {} CPU(s){}, {}, {build}, {}",
            self.are_version,
            self.cpus,
            self.cpu_model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            self.platform,
            self.date
        )
    }
}

/// Latencies of one run, sorted, for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sort `samples`.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    /// The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest sample such that at least
    /// `p` % of the samples are at most it. `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, n) - 1])
    }

    /// p50, p90, p99, max and mean, in microseconds.
    pub fn summary(&self) -> Option<Summary> {
        let max = *self.0.last()?;
        let total: Duration = self.0.iter().sum();
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        Some(Summary {
            p50_us: us(self.percentile(50.0)?),
            p90_us: us(self.percentile(90.0)?),
            p99_us: us(self.percentile(99.0)?),
            max_us: us(max),
            mean_us: us(total / self.0.len() as u32),
        })
    }
}

/// Percentiles of a run, in microseconds (one decimal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// A duration in microseconds, readable: `87µs`, `1.24ms`, `101ms`, `2.50s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (Linux; clock-tick resolution,
/// usually 10 ms).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat, clock_ticks_per_second()?)
}

/// CPU time (user + system) this process has used so far.
pub fn own_cpu() -> Option<Duration> {
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_proc_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_micros(ticks * 1_000_000 / ticks_per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Latencies {
        Latencies::new(v.iter().map(|&m| Duration::from_millis(m)).collect())
    }

    #[test]
    fn nearest_rank_percentiles() {
        let l = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(l.percentile(90.0), Some(Duration::from_millis(90)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(l.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(l.percentile(0.1), Some(Duration::from_millis(1)));

        // Few samples: the p99 of 10 samples is the largest, the median of 4 is the 2nd.
        let l = ms(&[40, 10, 30, 20]);
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(20)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(40)));
        let l = ms(&[7]);
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(7)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(7)));

        assert_eq!(Latencies::default().percentile(50.0), None);
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn summary_in_microseconds() {
        let s = Latencies::new(vec![
            Duration::from_micros(100),
            Duration::from_nanos(200_480),
            Duration::from_micros(300),
        ])
        .summary()
        .unwrap();
        assert_eq!(s.p50_us, 200.5);
        assert_eq!(s.p99_us, 300.0);
        assert_eq!(s.max_us, 300.0);
        assert_eq!(s.mean_us, 200.2);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_us(87.4), "87µs");
        assert_eq!(fmt_us(1_240.0), "1.24ms");
        assert_eq!(fmt_us(101_200.0), "101ms");
        assert_eq!(fmt_us(2_500_000.0), "2.50s");
    }

    #[test]
    fn reads_cpu_time_from_proc_stat() {
        let stat = "1234 (are serve (x)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_proc_stat_cpu(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_proc_stat_cpu("garbage", 100), None);
        // This process exists and has used some CPU.
        assert!(process_cpu(std::process::id()).is_some());
    }
}
