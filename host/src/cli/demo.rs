//! `are demo`: build the example tools, then tell the story in the terminal: inspect a tool, call it, watch a
//! grant allow and deny, and watch hostile components get stopped, each with what it cost.

use super::Host;
use super::call::stats_line;
use anyhow::Context as _;
use are::caps::Grants;
use are::component::{ComponentSpec, LoadedComponent};
use are::guest_build::{build_components, ensure_wasm_target};
use are::invoke::{CallReport, fmt_bytes};
use are::policy::Limits;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Run the demo: `are demo`.
#[derive(clap::Args)]
pub struct Opts {
    /// The example tools workspace.
    #[arg(long, default_value_os_t = repo_path("example-tools"))]
    tools: PathBuf,
    /// Where to build them.
    #[arg(long, default_value_os_t = repo_path("target/guests"))]
    target_dir: PathBuf,
}

/// A path inside the source checkout this binary was built from.
fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

struct Demo {
    host: Host,
    components: BTreeMap<String, PathBuf>,
    scratch: PathBuf,
}

impl Opts {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        println!(
            "are demo: third-party WebAssembly tools, granted nothing but what a policy names\n"
        );
        let started = Instant::now();
        println!("▸ building the example tools (cargo, wasm32-wasip2) …");
        ensure_wasm_target()?;
        let built = build_components(&self.tools.join("Cargo.toml"), &self.target_dir, None)?;
        let mut components = BTreeMap::new();
        for c in &built {
            let (path, _) = super::build::finish(c, &self.target_dir)?;
            components.insert(c.package.clone(), path);
        }
        println!(
            "  {} components in {:.1?}\n",
            components.len(),
            started.elapsed()
        );
        let scratch = std::env::temp_dir().join(format!("are-demo-{}", std::process::id()));
        std::fs::create_dir_all(scratch.join("data"))
            .context("cannot create the demo's scratch directory")?;
        std::fs::write(
            scratch.join("data/notes.txt"),
            "tools see only what they are granted\n",
        )?;
        let demo = Demo {
            host: Host::new()?,
            components,
            scratch: scratch.clone(),
        };
        let result = demo.tell().await;
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
        println!(
            "\ndone in {:.1?}. Next: `are inspect`, `are call --help`, and the README.",
            started.elapsed()
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl Demo {
    fn path(&self, package: &str) -> anyhow::Result<&Path> {
        self.components
            .get(package)
            .map(PathBuf::as_path)
            .with_context(|| format!("the example tools did not produce `{package}`"))
    }

    fn load(
        &self,
        package: &str,
        grants: Grants,
        limits: Limits,
    ) -> anyhow::Result<LoadedComponent> {
        let spec = ComponentSpec {
            name: package.to_string(),
            path: self.path(package)?.to_path_buf(),
            grants,
            limits,
            base_dir: self.scratch.clone(),
            ..ComponentSpec::default()
        };
        self.host.load(spec)
    }

    async fn call(&self, tool: &LoadedComponent, function: &str, args: Value) -> CallReport {
        let report = tool.call(&self.host.engine, function, &args, None).await;
        match &report.outcome {
            Ok(out) if out.is_err => println!("    ✗ tool error: {}", compact(&out.value, 300)),
            Ok(out) => println!("    ✓ {}", compact(&out.value, 300)),
            Err(e) => println!("    ✗ {e}"),
        }
        println!("      {}", stats_line(&report.stats));
        report
    }

    async fn tell(&self) -> anyhow::Result<()> {
        let limits = Limits::default();

        println!("1 · inspect: what does text.wasm offer, and what does it import?");
        let text = self.load("text", Grants::default(), limits)?;
        for f in text.description.tools() {
            let docs = f
                .docs
                .as_deref()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            println!("    {:<18} {docs}", f.qualified_name());
        }
        let caps: Vec<String> = text
            .description
            .capabilities()
            .iter()
            .map(|c| c.to_string())
            .collect();
        println!("    imports: {} (no files, no network)", caps.join(", "));
        println!(
            "    loaded in {:.1?} ({:?})\n",
            text.load_stats.duration, text.load_stats.cache
        );

        println!("2 · call a tool: text.word-count");
        println!(
            "    $ are call text.wasm text.word-count '{{\"text\": \"the quick brown fox\\njumps\"}}'"
        );
        self.call(
            &text,
            "text.word-count",
            json!({"text": "the quick brown fox\njumps"}),
        )
        .await;
        println!();

        println!("3 · grants: fetch.get needs `allow.http`");
        let server = DemoServer::start().await?;
        let url = format!("http://127.0.0.1:{}/hello", server.port);
        println!("    without a grant:");
        let fetch = self.load("fetch", Grants::default(), limits)?;
        self.call(&fetch, "fetch.get", json!({ "url": url })).await;
        let grant: Grants =
            toml::from_str(&format!("http = [\"http://127.0.0.1:{}\"]", server.port))?;
        let fetch = self.load("fetch", grant, limits)?;
        println!(
            "    with allow.http = [\"http://127.0.0.1:{}\"]:",
            server.port
        );
        self.call(&fetch, "fetch.get", json!({ "url": url, "max-bytes": 200 }))
            .await;
        println!(
            "    same grant, another origin (http://127.0.0.1:{}):",
            server.port + 1
        );
        let other = format!("http://127.0.0.1:{}/", server.port + 1);
        self.call(&fetch, "fetch.get", json!({ "url": other }))
            .await;
        println!();

        println!("4 · files stay inside their mount");
        let mount: Grants =
            toml::from_str("fs = [{ host = \"data\", guest = \"/data\", mode = \"ro\" }]")?;
        let files = self.load("files", mount.clone(), limits)?;
        println!("    files.read /data/notes.txt with a read-only mount of ./data at /data:");
        self.call(&files, "files.read", json!({"path": "/data/notes.txt"}))
            .await;
        println!("    files.write /data/new.txt on the same read-only mount:");
        self.call(
            &files,
            "files.write",
            json!({"path": "/data/new.txt", "contents": "x"}),
        )
        .await;
        println!(
            "    a hostile component tries `..`, absolute paths and symlinks out of the mount:"
        );
        let escape = self.load("hostile-fs-escape", mount, limits)?;
        for function in ["attack.dot-dot", "attack.absolute"] {
            let report = escape
                .call(&self.host.engine, function, &Value::Null, None)
                .await;
            summarize_attempts(function, &report);
        }
        println!();

        println!("5 · hostile code is stopped, and the host keeps serving");
        let spin = self.load("hostile-loop", Grants::default(), limits)?;
        println!("    an infinite loop, with 200 000 000 fuel:");
        let fuel = Limits {
            fuel: Some(200_000_000),
            ..limits
        };
        let report = spin
            .call(&self.host.engine, "attack.spin", &Value::Null, Some(fuel))
            .await;
        print_outcome(&report);
        println!("    the same loop with unlimited fuel and a 1 s timeout:");
        let timed = Limits {
            fuel: None,
            timeout: Duration::from_secs(1),
            ..limits
        };
        let report = spin
            .call(&self.host.engine, "attack.spin", &Value::Null, Some(timed))
            .await;
        print_outcome(&report);
        println!("    a memory bomb, with a 32 MiB limit:");
        let bomb = self.load("hostile-memory", Grants::default(), limits)?;
        let small = Limits {
            memory: 32 << 20,
            ..limits
        };
        let report = bomb
            .call(&self.host.engine, "attack.bomb", &Value::Null, Some(small))
            .await;
        match &report.outcome {
            Ok(out) => println!(
                "    ✓ contained: the guest grew to {} and every growth past the limit was refused",
                fmt_bytes(out.value.as_u64().unwrap_or(0))
            ),
            Err(e) => println!("    ✓ stopped: {e}"),
        }
        println!("      {}", stats_line(&report.stats));
        println!("    unbounded recursion:");
        let deep = self.load("hostile-recursion", Grants::default(), limits)?;
        print_outcome(
            &deep
                .call(&self.host.engine, "attack.overflow", &Value::Null, None)
                .await,
        );
        println!(
            "    reading the environment (the host has {} variables):",
            std::env::vars_os().count()
        );
        let snoop = self.load("hostile-env-snoop", Grants::default(), limits)?;
        let report = snoop
            .call(&self.host.engine, "attack.vars", &Value::Null, None)
            .await;
        match &report.outcome {
            Ok(out) => println!(
                "    ✓ contained: the guest sees {} variables",
                out.value.as_array().map_or(0, Vec::len)
            ),
            Err(e) => println!("    ✗ {e}"),
        }
        println!("    and after all that, the first tool still answers:");
        self.call(
            &text,
            "text.slugify",
            json!({"text": "Hostile code stopped, host fine"}),
        )
        .await;
        server.stop();
        Ok(())
    }
}

fn print_outcome(report: &CallReport) {
    match &report.outcome {
        Ok(out) => println!("    ? finished: {}", compact(&out.value, 200)),
        Err(e) => println!("    ✓ stopped: {e}"),
    }
    println!("      {}", stats_line(&report.stats));
}

fn summarize_attempts(function: &str, report: &CallReport) {
    let Ok(out) = &report.outcome else {
        if let Err(e) = &report.outcome {
            println!("    {function}: ✓ stopped: {e}");
        }
        return;
    };
    let attempts = out.value.as_array().cloned().unwrap_or_default();
    let escaped: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["outcome"].get("ok").is_some())
        .collect();
    if escaped.is_empty() {
        println!("    {function}: ✓ all {} attempts refused", attempts.len());
    } else {
        println!(
            "    {function}: ✗ {} of {} attempts got through!",
            escaped.len(),
            attempts.len()
        );
        for a in escaped {
            println!("      {}", compact(a, 200));
        }
    }
}

fn compact(value: &Value, max: usize) -> String {
    let text = value.to_string();
    if text.len() <= max {
        return text;
    }
    let cut = (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}… ({})", &text[..cut], fmt_bytes(text.len() as u64))
}

/// A tiny local HTTP server for the grant demonstration: answers every request with a short greeting.
struct DemoServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DemoServer {
    async fn start() -> anyhow::Result<DemoServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = "hello from the demo server\n";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(DemoServer { port, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}
